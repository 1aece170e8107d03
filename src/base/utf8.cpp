#include "base/utf8.h"

#include <cstdint>

namespace corral {
namespace {

constexpr std::string_view k_replacement = "\xEF\xBF\xBD";  // U+FFFD

/// The length of the valid UTF-8 character at text[at], or 0 when the bytes there are not
/// one; then `invalid_length` is the length of the maximal invalid subpart (the lead byte and
/// the continuation bytes that were still allowed, at least 1).
size_t character_length(std::string_view text, size_t at, size_t& invalid_length) {
    const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
    const uint8_t lead = byte(at);
    invalid_length = 1;
    if (lead < 0x80) return 1;
    size_t length = 0;
    // The allowed range of the second byte narrows for E0, ED, F0 and F4 (Unicode Table 3-7):
    // that is what rules out overlong forms, surrogates and code points above U+10FFFF.
    uint8_t low = 0x80, high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        if (lead == 0xE0) low = 0xA0;
        if (lead == 0xED) high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        if (lead == 0xF0) low = 0x90;
        if (lead == 0xF4) high = 0x8F;
    } else {
        return 0;  // 80..C1 and F5..FF never start a character
    }
    for (size_t i = 1; i < length; ++i) {
        if (at + i >= text.size()) return 0;
        const uint8_t next = byte(at + i);
        const uint8_t min = i == 1 ? low : 0x80;
        const uint8_t max = i == 1 ? high : 0xBF;
        if (next < min || next > max) return 0;
        invalid_length = i + 1;
    }
    return length;
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
    size_t invalid = 0;
    for (size_t at = 0; at < text.size();) {
        const size_t length = character_length(text, at, invalid);
        if (length == 0) return false;
        at += length;
    }
    return true;
}

std::string sanitize_utf8(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    size_t invalid = 0;
    for (size_t at = 0; at < text.size();) {
        const size_t length = character_length(text, at, invalid);
        if (length == 0) {
            out += k_replacement;
            // Only the bytes that formed a valid prefix go: the byte that broke it may start
            // the next character.
            at += invalid;
        } else {
            out.append(text.substr(at, length));
            at += length;
        }
    }
    return out;
}

}  // namespace corral
