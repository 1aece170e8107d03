#pragma once

#include <cstdint>
#include <string_view>

#include "base/result.h"

namespace corral {

/// The unit a bare number (no suffix) is counted in: `--memory 512` means MiB, `--size 4096` bytes.
enum class BareUnit : std::uint64_t { Bytes = 1, MiB = 1024 * 1024 };

/// Parses a size such as `512M`, `1G`, `10GiB`, `64k`, `1.5G` or `4096` into bytes: decimal
/// digits, an optional fraction (at most 6 digits, and it must come to a whole number of bytes),
/// and an optional binary suffix K, M, G, T or P (1K = 1024; any case; `B` or `iB` may follow;
/// `B` alone means bytes). Nothing else: no sign, spaces, exponent or hex. The one size parser of
/// the API, corrald's options, the CLI and corral-img. Errors (kind Invalid) quote the text and
/// show examples; a size beyond 2^64 - 1 bytes says it is too large.
Result<std::uint64_t> parse_size(std::string_view text, BareUnit bare = BareUnit::Bytes);

}  // namespace corral
