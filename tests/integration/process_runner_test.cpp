// The runner the integration tests rely on: exit codes, signals, both streams, timeouts.
#include "process_runner.h"

#include <gtest/gtest.h>

#include <csignal>

namespace corral::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(ProcessRunner, CapturesBothStreamsAndTheExitCode) {
  auto result = run_process("/bin/sh", {"-c", "printf out; printf err >&2; exit 3"}, seconds(10));
  ASSERT_EQ(result.ending, ProcessResult::Ending::Exited) << result.describe();
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(result.out, "out");
  EXPECT_EQ(result.err, "err");
}

TEST(ProcessRunner, CapturesLargeOutputOnBothStreams) {
  // More than a pipe buffer on each stream, interleaved: needs poll, not sequential reads.
  auto result = run_process(
      "/bin/sh", {"-c", "i=0; while [ $i -lt 2000 ]; do echo 0123456789012345678901234567890123456789; "
                        "echo abcdefghijabcdefghijabcdefghijabcdefghij >&2; i=$((i+1)); done"},
      seconds(30));
  ASSERT_TRUE(result.exited_with(0)) << result.describe();
  EXPECT_EQ(result.out.size(), 2000u * 41);
  EXPECT_EQ(result.err.size(), 2000u * 41);
}

TEST(ProcessRunner, ReportsTheSignalThatKilledTheChild) {
  auto result = run_process("/bin/sh", {"-c", "kill -TERM $$"}, seconds(10));
  ASSERT_EQ(result.ending, ProcessResult::Ending::Signaled) << result.describe();
  EXPECT_EQ(result.term_signal, SIGTERM);
}

TEST(ProcessRunner, KillsTheChildWhenTheTimeoutExpires) {
  // Generous: under the lab's emulated CPU a shell takes a while to print its first line.
  auto result = run_process("/bin/sh", {"-c", "echo started; exec sleep 600"}, seconds(5));
  ASSERT_EQ(result.ending, ProcessResult::Ending::TimedOut) << result.describe();
  EXPECT_EQ(result.out, "started\n");
  EXPECT_LT(result.elapsed, seconds(60));
}

TEST(ProcessRunner, ReportsAProgramThatCannotStart) {
  auto result = run_process("/nonexistent/program", {}, seconds(10));
  ASSERT_EQ(result.ending, ProcessResult::Ending::FailedToStart);
  EXPECT_NE(result.start_error.find("/nonexistent/program"), std::string::npos) << result.start_error;
}

}  // namespace
}  // namespace corral::testing
