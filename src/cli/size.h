#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace corral::cli {

/// The unit a bare number (no suffix) is counted in: `--memory 512` means MiB, `--size 4096` bytes.
enum class BareUnit : std::uint64_t { Bytes = 1, MiB = 1024 * 1024 };

/// Parses a size such as `512M`, `1G`, `10GiB`, `1.5G` or `4096` into bytes. Suffixes are binary
/// (K=1024); `B`, `iB` and lower case are accepted. A fraction must give a whole number of bytes.
Result<std::uint64_t> parse_size(std::string_view text, BareUnit bare = BareUnit::Bytes);

/// Parses a memory size into whole MiB (`1G` -> 1024); errors when it is not a whole MiB.
Result<std::uint64_t> parse_size_mib(std::string_view text);

/// Formats bytes for people: `512M`, `1G`, `1.5G`, `10.2T`, `0`, `900` (bytes below 1 KiB).
std::string format_size(std::uint64_t bytes);

}  // namespace corral::cli
