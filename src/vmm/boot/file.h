#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace corral::vmm {

/// Reads a whole regular file of at most `max_size` bytes (a kernel, an initrd). `what` names
/// it in errors: "cannot open kernel /x: No such file or directory", "initrd /y is a directory",
/// "kernel /z is 300 MiB, larger than the 256 MiB limit".
Result<std::vector<uint8_t>> read_file(const std::string& path, uint64_t max_size,
                                       std::string_view what = "file");

}  // namespace corral::vmm
