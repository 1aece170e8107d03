// corral-shim, run as a real process: the files it leaves in RUN_DIR.
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "engine/process.h"
#include "engine_test_support.h"

namespace corral::engine {
namespace {

using namespace std::chrono_literals;

/// Runs corral-shim in the foreground and returns its exit code.
int run_shim(const std::filesystem::path& run_dir, const std::vector<std::string>& command) {
    std::vector<std::string> argv = {testing::build_tree_paths().corral_shim.string(),
                                     run_dir.string(), "--"};
    argv.insert(argv.end(), command.begin(), command.end());
    auto run = run_capture(argv, 30s);
    EXPECT_TRUE(run) << run.error().describe();
    return run ? run->exit_code : -1;
}

nlohmann::json exit_json(const std::filesystem::path& run_dir) {
    auto text = read_text_file(run_dir / "exit.json");
    EXPECT_TRUE(text) << "no exit.json";
    return text ? nlohmann::json::parse(*text) : nlohmann::json();
}

TEST(Shim, RecordsTheExitCodeAndThePids) {
    testing::TestDir dir;
    ASSERT_TRUE(std::filesystem::exists(testing::build_tree_paths().corral_shim))
        << "corral-shim not built at " << testing::build_tree_paths().corral_shim;
    EXPECT_EQ(run_shim(dir.dir(), {"sh", "-c", "echo out; echo err >&2; exit 3"}), 0);
    EXPECT_EQ(exit_json(dir.dir()), (nlohmann::json{{"exit_code", 3}, {"signal", 0}}));
    EXPECT_EQ(read_text_file(dir.path("monitor.log")).value_or(""), "out\nerr\n");
    auto vm_pid = read_pid_file(dir.path("vm.pid"));
    auto shim_pid = read_pid_file(dir.path("shim.pid"));
    ASSERT_TRUE(vm_pid);
    ASSERT_TRUE(shim_pid);
    EXPECT_NE(*vm_pid, *shim_pid);
    // Nothing half-written is left behind.
    for (const auto& entry : std::filesystem::directory_iterator(dir.dir()))
        EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << entry.path();
}

TEST(Shim, RecordsTheKillingSignal) {
    testing::TestDir dir;
    EXPECT_EQ(run_shim(dir.dir(), {"sh", "-c", "kill -9 $$"}), 0);
    EXPECT_EQ(exit_json(dir.dir()), (nlohmann::json{{"exit_code", -1}, {"signal", 9}}));
}

TEST(Shim, AMissingCommandIsExitCode127WithTheReasonInTheLog) {
    testing::TestDir dir;
    EXPECT_EQ(run_shim(dir.dir(), {"/nonexistent/qemu"}), 0);
    EXPECT_EQ(exit_json(dir.dir()), (nlohmann::json{{"exit_code", 127}, {"signal", 0}}));
    EXPECT_EQ(read_text_file(dir.path("monitor.log")).value_or(""),
              "corral-shim: cannot execute /nonexistent/qemu: No such file or directory\n");
}

TEST(Shim, ReplacesAStaleExitFileAndAppendsToTheLog) {
    testing::TestDir dir;
    ASSERT_TRUE(write_file_atomic(dir.path("exit.json"), R"({"exit_code":7,"signal":0})"));
    ASSERT_TRUE(write_file_atomic(dir.path("monitor.log"), "earlier\n"));
    EXPECT_EQ(run_shim(dir.dir(), {"sh", "-c", "echo now"}), 0);
    EXPECT_EQ(exit_json(dir.dir()), (nlohmann::json{{"exit_code", 0}, {"signal", 0}}));
    EXPECT_EQ(read_text_file(dir.path("monitor.log")).value_or(""), "earlier\nnow\n");
}

TEST(Shim, ForwardsSigtermToTheCommand) {
    testing::TestDir dir;
    std::string shim = testing::build_tree_paths().corral_shim.string();
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::execl(shim.c_str(), shim.c_str(), dir.dir().c_str(), "--", "sleep", "60", nullptr);
        _exit(127);
    }
    // Wait for the command to run, then ask the shim to stop.
    for (int i = 0; i < 500 && !std::filesystem::exists(dir.path("vm.pid")); ++i)
        std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(std::filesystem::exists(dir.path("vm.pid")));
    ::kill(pid, SIGTERM);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_EQ(exit_json(dir.dir()), (nlohmann::json{{"exit_code", -1}, {"signal", 15}}));
}

TEST(Shim, UsageErrorIsExitCode2) {
    auto run = run_capture({testing::build_tree_paths().corral_shim.string(), "/tmp"}, 10s);
    ASSERT_TRUE(run);
    EXPECT_EQ(run->exit_code, 2);
    EXPECT_EQ(run->output,
              "usage: corral-shim RUN_DIR [--fds N] [--user UID:GID] -- COMMAND [ARGS...]\n");
    // A "switch" to root is no switch: refused like any bad option.
    auto to_root = run_capture(
        {testing::build_tree_paths().corral_shim.string(), "/tmp", "--user", "0:0", "--", "true"},
        10s);
    ASSERT_TRUE(to_root);
    EXPECT_EQ(to_root->exit_code, 2);
}

}  // namespace
}  // namespace corral::engine
