// The serial console on a unix socket (--console socket=PATH): what a parent such as corrald
// attaches to. The echo guest prints a banner, echoes what it receives, and resets on 'q'.

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <string>
#include <thread>

#include "vmm_test_support.h"

namespace corral::testing {
namespace {

TEST(VmmConsoleSocket, GuestOutputAndInputGoThroughTheSocket) {
    CORRAL_REQUIRE_KVM();
    std::string path = ::testing::TempDir() + "/corral-console-" + std::to_string(::getpid()) + ".sock";
    ::unlink(path.c_str());
    auto vmm = std::async(std::launch::async, [&] {
        return run_vmm({"--kernel", tiny_guest("echo"), "--memory", "64M", "--console", "socket=" + path});
    });
    int fd = connect_when_ready(path, std::chrono::seconds(60));
    ASSERT_GE(fd, 0) << "corral-vmm never listened on " << path;
    // The banner was printed before we connected: it comes from the scrollback.
    EXPECT_NE(read_until(fd, "echo ready\n", std::chrono::seconds(60)).find("echo ready"), std::string::npos);
    const std::string typed = "typed through the socket";
    ASSERT_EQ(::send(fd, typed.data(), typed.size(), 0), static_cast<ssize_t>(typed.size()));
    EXPECT_NE(read_until(fd, typed, std::chrono::seconds(60)).find(typed), std::string::npos);
    ASSERT_EQ(::send(fd, "q", 1, 0), 1);
    EXPECT_NE(read_until(fd, "echo done", std::chrono::seconds(60)).find("echo done"), std::string::npos);
    ::close(fd);
    ProcessResult result = vmm.get();
    EXPECT_TRUE(result.exited_with(0)) << result.describe();
    EXPECT_EQ(result.out, "") << "nothing goes to stdout with a socket console";
    EXPECT_NE(::access(path.c_str(), F_OK), 0) << "the socket is removed when the monitor exits";
}

TEST(VmmConsoleSocket, BadConsoleValueNamesTheOption) {
    ProcessResult result = run_vmm({"--kernel", tiny_guest("hello"), "--console", "socket="});
    EXPECT_TRUE(result.exited_with(2)) << result.describe();
    EXPECT_NE(result.err.find("--console must be 'stdio', 'none' or 'socket=PATH'"), std::string::npos)
        << result.describe();
}

}  // namespace
}  // namespace corral::testing
