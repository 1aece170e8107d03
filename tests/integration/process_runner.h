#pragma once

#include <chrono>
#include <string>
#include <vector>

/// Runs a program as a child process and captures what a user would see of it.
namespace corral::testing {

/// How a child process ended, with everything it wrote.
struct ProcessResult {
  enum class Ending {
    Exited,        ///< exit_code is valid
    Signaled,      ///< term_signal is valid
    TimedOut,      ///< killed (SIGKILL) by the runner when the timeout expired
    FailedToStart  ///< fork/exec failed; start_error says why
  };
  Ending ending = Ending::FailedToStart;
  int exit_code = -1;
  int term_signal = 0;
  std::string start_error;
  std::string out;  ///< everything written to stdout (capped, see k_output_cap)
  std::string err;  ///< everything written to stderr (capped)
  std::chrono::milliseconds elapsed{0};

  bool exited_with(int code) const { return ending == Ending::Exited && exit_code == code; }
  /// One paragraph for test failure messages: the ending, the time, stdout and stderr.
  std::string describe() const;
};

/// Each captured stream keeps at most this many bytes (a runaway guest must not eat the host).
inline constexpr size_t k_output_cap = 8 * 1024 * 1024;

/// Runs `program` with `args` (argv[0] is `program`), stdin from /dev/null, stdout and stderr
/// captured through pipes. Kills the child (by its pid) when `timeout` expires.
ProcessResult run_process(const std::string& program, const std::vector<std::string>& args,
                          std::chrono::milliseconds timeout);

}  // namespace corral::testing
