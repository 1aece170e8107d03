#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace corral::engine {

/// pidfd_open(2): an fd that becomes readable when `pid` ends (child or not).
Result<UniqueFd> open_pidfd(pid_t pid);
/// True when the process behind `pidfd` has ended (poll with no wait).
bool pidfd_ended(int pidfd);
/// Reaps the process behind `pidfd` if it is our child and ended; harmless otherwise.
void reap_if_child(int pidfd);

/// The whole file, or ENOENT/... as an Error.
Result<std::string> read_text_file(const std::filesystem::path& path);
/// Writes `text` to `path` through a temporary file and rename(2), so readers see all or nothing.
Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view text);
/// The last `max_lines` non-empty lines of a file (at most its last 64 KiB), joined by "\n";
/// empty when the file is missing.
std::string tail_lines(const std::filesystem::path& path, size_t max_lines);
/// Reads a decimal pid from a file (ENOENT when missing).
Result<pid_t> read_pid_file(const std::filesystem::path& path);
/// "SIGKILL" for 9 etc.
std::string signal_name(int signal);

/// The result of run_capture().
struct CapturedRun {
    int exit_code = -1;  ///< -1 when killed by a signal
    int signal = 0;
    bool timed_out = false;
    std::string output;  ///< stdout and stderr, interleaved
};

/// Runs `argv` (argv[0] a path or a name looked up on PATH) with stdin from /dev/null and
/// stdout+stderr captured; kills it with SIGKILL after `timeout`. `on_line` (optional) sees
/// each complete output line as it arrives (the calibration times them).
Result<CapturedRun> run_capture(const std::vector<std::string>& argv,
                                std::chrono::milliseconds timeout,
                                const std::function<void(std::string_view line)>& on_line = {});

/// Looks `program` up on PATH; an empty path when it is not there. A name with a '/' is
/// returned as is when it is executable.
std::filesystem::path find_on_path(const std::string& program);
/// True when `path` is a regular file we may execute.
bool is_executable(const std::filesystem::path& path);

}  // namespace corral::engine
