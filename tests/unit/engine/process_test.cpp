#include "engine/process.h"

#include <gtest/gtest.h>

#include "engine_test_support.h"

namespace corral::engine {
namespace {

using namespace std::chrono_literals;

TEST(RunCapture, OutputExitCodeAndLines) {
    std::vector<std::string> lines;
    auto run = run_capture({"sh", "-c", "echo one; echo two >&2; printf three; exit 4"}, 10s,
                           [&](std::string_view line) { lines.emplace_back(line); });
    ASSERT_TRUE(run) << run.error().describe();
    EXPECT_EQ(run->exit_code, 4);
    EXPECT_FALSE(run->timed_out);
    EXPECT_EQ(run->output, "one\ntwo\nthree");
    EXPECT_EQ(lines, (std::vector<std::string>{"one", "two", "three"}));
}

TEST(RunCapture, TimeoutKills) {
    auto started = std::chrono::steady_clock::now();
    auto run = run_capture({"sleep", "30"}, 200ms);
    ASSERT_TRUE(run);
    EXPECT_TRUE(run->timed_out);
    EXPECT_EQ(run->signal, 9);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
}

TEST(RunCapture, MissingProgramIsNotFound) {
    auto run = run_capture({"corral-no-such-program"}, 1s);
    ASSERT_FALSE(run);
    EXPECT_EQ(run.error().errno_value(), ENOENT);
}

TEST(Files, AtomicWriteTailAndPid) {
    testing::TestDir dir;
    ASSERT_TRUE(write_file_atomic(dir.path("f"), "1\n\n2\r\n3\n4\n"));
    EXPECT_EQ(read_text_file(dir.path("f")).value(), "1\n\n2\r\n3\n4\n");
    EXPECT_EQ(tail_lines(dir.path("f"), 2), "3\n4");
    EXPECT_EQ(tail_lines(dir.path("f"), 10), "1\n2\n3\n4");
    EXPECT_EQ(tail_lines(dir.path("missing"), 3), "");
    ASSERT_TRUE(write_file_atomic(dir.path("pid"), "1234\n"));
    EXPECT_EQ(read_pid_file(dir.path("pid")).value(), 1234);
    EXPECT_EQ(read_pid_file(dir.path("f")).value(), 1);  // a leading number is read
    EXPECT_EQ(read_pid_file(dir.path("missing")).error().errno_value(), ENOENT);
    EXPECT_EQ(signal_name(9), "SIGKILL");
}

}  // namespace
}  // namespace corral::engine
