#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "base/result.h"

namespace corral::engine {

/// A guest's console log (the emulated engine's RUN_DIR/console.log, written by QEMU) is kept
/// bounded: past this size it is rotated to console.log.1 (one rotated file), so a guest that
/// prints forever uses at most twice this much of the host disk.
inline constexpr uint64_t k_console_log_max_bytes = 2 * 1024 * 1024;

/// Creates an empty console log, mode 0600 (guest output is private), not following a symlink.
/// The writer must open it with O_APPEND (QEMU's logappend=on) so that rotation can truncate it.
Result<void> create_console_log(const std::filesystem::path& log);

/// The log's last `max_bytes` bytes, taking the start from console.log.1 when the current file
/// holds fewer. Reads only that much, whatever the files' sizes; "" when there is no log.
std::string read_console_log_tail(const std::filesystem::path& log, size_t max_bytes);

/// When `log` is larger than `max_bytes`: copies its last `max_bytes` to LOG.1 (replacing it,
/// through a fresh temporary file) and truncates it. The writer's O_APPEND makes its next write
/// land at 0. Bytes the writer appends between the copy and the truncation are lost (a few at
/// most). Returns whether it rotated.
Result<bool> rotate_console_log(const std::filesystem::path& log,
                                uint64_t max_bytes = k_console_log_max_bytes);

}  // namespace corral::engine
