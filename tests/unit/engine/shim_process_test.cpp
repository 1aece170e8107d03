#include "engine/shim_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "engine/process.h"
#include "engine/vm_user.h"
#include "engine_test_support.h"

namespace corral::engine {
namespace {

using namespace std::chrono_literals;

std::string describe(int exit_code, const std::string& tail) {
    return fmt::format("code {}: {}", exit_code, tail);
}

pid_t parent_of(pid_t pid) {
    auto stat = read_text_file(fmt::format("/proc/{}/stat", pid));
    if (!stat)
        return -1;
    int ppid = -1;
    char state;
    std::sscanf(stat->c_str() + stat->rfind(')') + 1, " %c %d", &state, &ppid);
    return ppid;
}

TEST(ShimProcess, DetachedSupervisorKillAndExitInfo) {
    testing::TestDir dir;
    auto shim = testing::build_tree_paths().corral_shim;
    auto process = ShimProcess::spawn(shim, dir.path("vm"), {"sleep", "60"}, describe);
    ASSERT_TRUE(process) << process.error().describe();
    EXPECT_GT(process->vm_pid(), 0);
    // Detached: the shim is not our child (a daemon that dies leaves it running), the VM
    // process is the shim's.
    EXPECT_NE(parent_of(process->shim_pid()), ::getpid());
    EXPECT_EQ(parent_of(process->vm_pid()), process->shim_pid());
    EXPECT_FALSE(process->exited());
    auto still_running = process->exit_info();
    ASSERT_FALSE(still_running);
    EXPECT_EQ(still_running.error().errno_value(), EBUSY);

    // Another ShimProcess (a restarted daemon) attaches from the files alone.
    auto attached = ShimProcess::attach(dir.path("vm"), describe);
    ASSERT_TRUE(attached) << attached.error().describe();
    EXPECT_EQ(attached->shim_pid(), process->shim_pid());
    EXPECT_EQ(attached->vm_pid(), process->vm_pid());

    ASSERT_TRUE(attached->signal_vm(SIGKILL));
    pollfd pfd{process->pidfd(), POLLIN, 0};
    ASSERT_EQ(::poll(&pfd, 1, 10000), 1);
    auto info = process->exit_info();
    ASSERT_TRUE(info) << info.error().describe();
    EXPECT_EQ(info->signal, 9);
    EXPECT_EQ(info->exit_code, -1);
    EXPECT_EQ(info->reason, "killed by signal 9 (SIGKILL)");

    auto again = process->signal_vm(SIGKILL);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().errno_value(), ENOENT);
    auto gone = ShimProcess::attach(dir.path("vm"), describe);
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().errno_value(), ENOENT);
    EXPECT_NE(gone.error().message().find("is not running: it ended: killed by signal 9 (SIGKILL)"),
              std::string::npos)
        << gone.error().message();
}

TEST(ShimProcess, ExitCodeReasonCarriesTheLogTail) {
    testing::TestDir dir;
    auto process = ShimProcess::spawn(
        testing::build_tree_paths().corral_shim, dir.dir(),
        {"sh", "-c", "echo first; echo 'bad option -foo' >&2; exit 2"}, describe);
    if (!process) {
        // It may end before vm.pid is seen; then the error carries the reason.
        EXPECT_NE(process.error().message().find("code 2: first\nbad option -foo"),
                  std::string::npos)
            << process.error().message();
        return;
    }
    ASSERT_TRUE(process->wait_exit(10s));
    auto info = process->exit_info();
    ASSERT_TRUE(info);
    EXPECT_EQ(info->exit_code, 2);
    EXPECT_EQ(info->reason, "code 2: first\nbad option -foo");
}

TEST(ShimProcess, AMissingCommandSaysItCouldNotBeExecuted) {
    testing::TestDir dir;
    auto process = ShimProcess::spawn(testing::build_tree_paths().corral_shim, dir.dir(),
                                      {"/nonexistent/vmm"}, describe);
    std::string reason;
    if (process) {
        ASSERT_TRUE(process->wait_exit(10s));
        reason = process->exit_info().value().reason;
    } else {
        reason = process.error().message();
    }
    EXPECT_NE(reason.find("could not execute the VM process: corral-shim: cannot execute "
                          "/nonexistent/vmm: No such "
                          "file or directory"),
              std::string::npos)
        << reason;
}

TEST(ShimProcess, AMissingShimIsNotFound) {
    testing::TestDir dir;
    auto process = ShimProcess::spawn("/nonexistent/corral-shim", dir.dir(), {"true"}, describe);
    ASSERT_FALSE(process);
    EXPECT_EQ(process.error().errno_value(), ENOENT);
    EXPECT_NE(process.error().message().find("corral-shim not found at /nonexistent/corral-shim"),
              std::string::npos);
}

/// The value of a "Key:\tvalue" line of /proc/PID/status text.
std::string status_field(const std::string& status, const std::string& key) {
    size_t at = status.find("\n" + key + ":");
    if (at == std::string::npos)
        return "";
    size_t start = status.find_first_not_of(" \t", at + key.size() + 2);
    return status.substr(start, status.find('\n', start) - start);
}

// The VM process gets the handed descriptor as fd 3 and nothing more, runs in its run folder,
// with no_new_privs and no capability (as root not even in the bounding set, so a later exec as
// uid 0 gains none), and as the VM uid when the test runs as root. Passes as any user.
TEST(ShimProcess, TheVmProcessIsConfined) {
    testing::TestDir dir;
    int pipe_fds[2];
    ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
    UniqueFd read_end(pipe_fds[0]);
    UniqueFd write_end(pipe_fds[1]);
    SpawnOptions options;
    options.fds = {write_end.get()};
    auto user = choose_vm_user();
    ASSERT_TRUE(user) << user.error().describe();
    options.switch_user = user->switch_user;
    options.uid = user->uid;
    options.gid = user->gid;
    auto process = ShimProcess::spawn(
        testing::build_tree_paths().corral_shim, dir.dir(),
        // It stays up (sleep) so that spawn() sees it running; fd 3 closed is our EOF.
        {"sh", "-c",
         "cat /proc/self/status >&3; pwd >&3; ls /proc/self/fd >&3; echo END >&3; exec 3>&-; "
         "exec sleep 60"},
        describe, options);
    ASSERT_TRUE(process) << process.error().describe();
    write_end.reset();
    std::string output;
    char chunk[4096];
    for (ssize_t n; (n = ::read(read_end.get(), chunk, sizeof(chunk))) > 0;)
        output.append(chunk, static_cast<size_t>(n));
    ASSERT_NE(output.find("END"), std::string::npos) << output;
    EXPECT_EQ(status_field(output, "NoNewPrivs"), "1");
    EXPECT_EQ(status_field(output, "CapEff"), "0000000000000000");
    EXPECT_EQ(status_field(output, "CapPrm"), "0000000000000000");
    EXPECT_EQ(status_field(output, "CapInh"), "0000000000000000");
    if (::geteuid() == 0) {
        // Only root can empty the bounding set; for anyone else no_new_privs already keeps
        // exec from granting file capabilities.
        EXPECT_EQ(status_field(output, "CapBnd").find_first_not_of('0'), std::string::npos)
            << status_field(output, "CapBnd");
        std::string id = std::to_string(user->uid);
        EXPECT_EQ(status_field(output, "Uid"), fmt::format("{}\t{}\t{}\t{}", id, id, id, id));
        EXPECT_EQ(status_field(output, "Gid"), fmt::format("{}\t{}\t{}\t{}", id, id, id, id));
        EXPECT_EQ(status_field(output, "Groups"), "");
    }
    // fmt rather than "\n" + string: GCC 12 at -O3 warns falsely (-Wrestrict, GCC bug 105329).
    EXPECT_NE(output.find(fmt::format("\n{}\n", dir.dir().string())), std::string::npos) << output;
    // ls lists 0, 1, 2, 3 and its own directory fd: nothing else of corrald's.
    size_t listing = output.find(dir.dir().string() + "\n") + dir.dir().string().size() + 1;
    std::string fds = output.substr(listing, output.find("END") - listing);
    EXPECT_EQ(fds, "0\n1\n2\n3\n4\n") << fds;
    ASSERT_TRUE(process->signal_vm(SIGKILL));
    ASSERT_TRUE(process->wait_exit(10s));
}

TEST(ShimProcess, AttachRefusesAPidThatIsNotItsShim) {
    testing::TestDir dir;
    // A live process that is not a corral-shim for this run_dir: ourselves.
    ASSERT_TRUE(write_file_atomic(dir.path("shim.pid"), fmt::format("{}\n", ::getpid())));
    auto attached = ShimProcess::attach(dir.dir(), describe);
    ASSERT_FALSE(attached);
    EXPECT_EQ(attached.error().errno_value(), ENOENT);
    EXPECT_NE(attached.error().message().find("is no longer its corral-shim"), std::string::npos)
        << attached.error().message();
}

}  // namespace
}  // namespace corral::engine
