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

/// Connects to `path`, retrying while the monitor has not created it yet.
int connect_when_ready(const std::string& path, std::chrono::seconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) return fd;
        ::close(fd);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
}

/// Reads from `fd` until `text` has arrived (or the time is up); returns all that was read.
std::string read_until(int fd, const std::string& text, std::chrono::seconds limit) {
    std::string received;
    timeval tick{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick);
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (received.find(text) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
        char buffer[256];
        ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n == 0) break;
        if (n > 0) received.append(buffer, static_cast<size_t>(n));
    }
    return received;
}

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
