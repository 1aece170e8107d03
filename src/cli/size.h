#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/size.h"

namespace corral::cli {

// The size parser is the project's one (base/size.h).
using corral::BareUnit;
using corral::parse_size;

/// Parses a memory size into whole MiB (`1G` -> 1024); errors when it is not a whole MiB.
Result<std::uint64_t> parse_size_mib(std::string_view text);

/// Formats bytes for people: `512M`, `1G`, `1.5G`, `10.2T`, `0`, `900` (bytes below 1 KiB).
std::string format_size(std::uint64_t bytes);

}  // namespace corral::cli
