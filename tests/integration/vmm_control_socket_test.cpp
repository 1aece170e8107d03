// The control socket (--control PATH): JSON requests, one per line, served by the VMM thread.
// The echo guest keeps running (it echoes COM1 input), so pausing it shows as echoes that do
// not come until the VM is resumed.

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "vmm_test_support.h"

namespace corral::testing {
namespace {

using namespace std::chrono_literals;

int connect_when_ready(const std::string& path, std::chrono::seconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) return fd;
        ::close(fd);
        std::this_thread::sleep_for(50ms);
    }
    return -1;
}

/// Reads from `fd` until `text` arrived or `limit` passed; returns all that was read.
std::string read_until(int fd, const std::string& text, std::chrono::milliseconds limit) {
    std::string received;
    timeval tick{0, 200 * 1000};
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

/// Sends one request line and parses the one answer line.
nlohmann::json request(int fd, const std::string& line) {
    std::string text = line + "\n";
    if (::send(fd, text.data(), text.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(text.size()))
        return {{"send", "failed"}};
    std::string answer = read_until(fd, "\n", 30s);
    auto document = nlohmann::json::parse(answer, nullptr, false);
    return document.is_discarded() ? nlohmann::json{{"unparsable", answer}} : document;
}

class VmmControlSocket : public ::testing::Test {
protected:
    void SetUp() override {
        std::string base = ::testing::TempDir() + "/corral-ctl-" + std::to_string(::getpid());
        m_console = base + "-console.sock";
        m_control = base + "-control.sock";
        ::unlink(m_console.c_str());
        ::unlink(m_control.c_str());
    }

    std::future<ProcessResult> start(std::vector<std::string> extra = {}) {
        std::vector<std::string> args = {"--kernel", tiny_guest("echo"), "--memory", "64M", "--console",
                                         "socket=" + m_console, "--control", m_control};
        args.insert(args.end(), extra.begin(), extra.end());
        return std::async(std::launch::async, [args] { return run_vmm(args); });
    }

    std::string m_console;
    std::string m_control;
};

TEST_F(VmmControlSocket, StatusPauseResumeCountersStop) {
    CORRAL_REQUIRE_KVM();
    auto vmm = start();
    int console = connect_when_ready(m_console, 60s);
    ASSERT_GE(console, 0) << "corral-vmm never listened on " << m_console;
    ASSERT_NE(read_until(console, "echo ready\n", 60s).find("echo ready"), std::string::npos);
    int control = connect_when_ready(m_control, 10s);
    ASSERT_GE(control, 0) << "corral-vmm never listened on " << m_control;

    auto status = request(control, R"({"action":"status"})");
    EXPECT_EQ(status["ok"], true) << status;
    EXPECT_EQ(status["state"], "running") << status;
    EXPECT_EQ(status["vcpus"], 1) << status;
    EXPECT_TRUE(status["uptime_ms"].is_number()) << status;

    auto pause = request(control, R"({"action":"pause"})");
    EXPECT_EQ(pause["ok"], true) << pause;
    status = request(control, R"({"action":"status"})");
    EXPECT_EQ(status["state"], "paused") << status;
    // A paused guest does not run: what we type is not echoed...
    ASSERT_EQ(::send(console, "xyz", 3, MSG_NOSIGNAL), 3);
    EXPECT_EQ(read_until(console, "xyz", 1500ms), "") << "the paused guest echoed";

    auto resume = request(control, R"({"action":"resume"})");
    EXPECT_EQ(resume["ok"], true) << resume;
    // ...until it is resumed.
    EXPECT_NE(read_until(console, "xyz", 30s).find("xyz"), std::string::npos);
    status = request(control, R"({"action":"status"})");
    EXPECT_EQ(status["state"], "running") << status;

    auto counters = request(control, R"({"action":"counters"})");
    EXPECT_EQ(counters["ok"], true) << counters;
    EXPECT_TRUE(counters["devices"].is_array()) << counters;

    auto bad = request(control, "{not json");
    EXPECT_EQ(bad["ok"], false) << bad;
    auto unknown = request(control, R"({"action":"fly"})");
    EXPECT_EQ(unknown["ok"], false) << unknown;
    auto reset = request(control, R"({"action":"reset"})");
    EXPECT_EQ(reset["ok"], false) << reset;
    EXPECT_NE(reset.value("error", "").find("not supported"), std::string::npos) << reset;

    auto stop = request(control, R"({"action":"stop"})");
    EXPECT_EQ(stop["ok"], true) << stop;
    ::close(control);
    ::close(console);
    ProcessResult result = vmm.get();
    EXPECT_TRUE(result.exited_with(0)) << result.describe();
    EXPECT_NE(::access(m_control.c_str(), F_OK), 0) << "the control socket is removed at exit";
}

TEST_F(VmmControlSocket, ResetRebootsUnderOnRebootRestart) {
    CORRAL_REQUIRE_KVM();
    auto vmm = start({"--on-reboot", "restart"});
    int console = connect_when_ready(m_console, 60s);
    ASSERT_GE(console, 0);
    ASSERT_NE(read_until(console, "echo ready\n", 60s).find("echo ready"), std::string::npos);
    ::close(console);
    int control = connect_when_ready(m_control, 10s);
    ASSERT_GE(control, 0);
    auto reset = request(control, R"({"action":"reset"})");
    EXPECT_EQ(reset["ok"], true) << reset;
    // The same control connection serves the rebooted VM; its console prints the banner again.
    std::this_thread::sleep_for(500ms);
    console = connect_when_ready(m_console, 60s);
    ASSERT_GE(console, 0);
    EXPECT_NE(read_until(console, "echo ready\n", 60s).find("echo ready"), std::string::npos);
    auto status = request(control, R"({"action":"status"})");
    EXPECT_EQ(status["state"], "running") << status;
    EXPECT_EQ(request(control, R"({"action":"stop"})")["ok"], true);
    ::close(control);
    ::close(console);
    ProcessResult result = vmm.get();
    EXPECT_TRUE(result.exited_with(0)) << result.describe();
    EXPECT_NE(result.err.find("resetting the VM (control request)"), std::string::npos) << result.describe();
}

TEST_F(VmmControlSocket, ShutdownIsCtrlAltDelThenTheTimeout) {
    CORRAL_REQUIRE_KVM();
    // The echo guest ignores Ctrl-Alt-Del (no keyboard driver), so the timeout ends it.
    auto vmm = start({"--shutdown-timeout", "1"});
    int control = connect_when_ready(m_control, 60s);
    ASSERT_GE(control, 0);
    EXPECT_EQ(request(control, R"({"action":"shutdown"})")["ok"], true);
    ::close(control);
    ProcessResult result = vmm.get();
    EXPECT_TRUE(result.exited_with(0)) << result.describe();
    EXPECT_NE(result.err.find("did not shut down within 1 s"), std::string::npos) << result.describe();
}

TEST_F(VmmControlSocket, PausesEveryVcpuIncludingHaltedOnes) {
    CORRAL_REQUIRE_KVM();
    // The echo guest starts no APs: three of the four vCPUs wait for a SIPI inside KVM_RUN,
    // so the kick must get them out too before pause is acknowledged.
    auto vmm = start({"--cpus", "4"});
    int control = connect_when_ready(m_control, 60s);
    ASSERT_GE(control, 0);
    auto status = request(control, R"({"action":"status"})");
    EXPECT_EQ(status["vcpus"], 4) << status;
    for (int round = 0; round < 3; ++round) {
        auto pause = request(control, R"({"action":"pause"})");
        EXPECT_EQ(pause["ok"], true) << pause;
        EXPECT_EQ(request(control, R"({"action":"status"})")["state"], "paused");
        EXPECT_EQ(request(control, R"({"action":"resume"})")["ok"], true);
    }
    EXPECT_EQ(request(control, R"({"action":"stop"})")["ok"], true);
    ::close(control);
    ProcessResult result = vmm.get();
    EXPECT_TRUE(result.exited_with(0)) << result.describe();
}

}  // namespace
}  // namespace corral::testing
