#pragma once

#include <string>
#include <string_view>

namespace corral {

/// True when `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
/// above U+10FFFF).
bool is_valid_utf8(std::string_view text);

/// `text` with every ill-formed sequence replaced by U+FFFD (one per maximal invalid subpart,
/// as Unicode §3.9 and WHATWG decoders do); valid multibyte characters are kept. For bytes
/// from outside (guest consoles, URL paths, headers) before they reach JSON or a log: JSON
/// serialization throws on invalid UTF-8.
std::string sanitize_utf8(std::string_view text);

}  // namespace corral
