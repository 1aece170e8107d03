// The native engine with the real corral-vmm: its command line is one corral-vmm accepts, and
// (where /dev/kvm opens: here or in tools/lab) a tiny guest runs under it, console both ways.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "base/unique_fd.h"
#include "engine/native_engine.h"
#include "engine/process.h"
#include "kill_at_end.h"

namespace corral::engine {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

bool kvm_opens() {
    int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return false;
    ::close(fd);
    return true;
}

EnginePaths paths() {
    EnginePaths paths;
    const char* vmm = std::getenv("CORRAL_VMM");  // a prebuilt monitor, to skip building one
    paths.corral_vmm = vmm ? vmm : CORRAL_VMM_PATH;
    paths.corral_shim = CORRAL_SHIM_PATH;
    return paths;
}

TEST(NativeEngine, CorralVmmAcceptsTheCommandLine) {
    LaunchSpec spec;
    spec.name = "vm1";
    spec.vcpus = 2;
    spec.memory_mib = 256;
    spec.kernel = CORRAL_TINY_GUEST_DIR "/echo.elf";
    spec.initrd = CORRAL_TINY_GUEST_DIR "/hello.elf";
    spec.cmdline = "console=ttyS0";
    spec.disks = {{"/proc/self/exe", "raw", true, "seed"}};
    spec.nics = {{"tap0", "52:54:00:12:34:56"}};
    spec.run_dir = "/run/corral/vms/vm1";
    auto args = vmm_command_line(spec, paths().corral_vmm);
    args.push_back("--print-config");
    auto run = run_capture(args, 30s);
    ASSERT_TRUE(run) << run.error().describe();
    ASSERT_EQ(run->exit_code, 0) << run->output;
    auto config = nlohmann::json::parse(run->output);
    EXPECT_EQ(config["cpus"], 2);
    EXPECT_EQ(config["console"], "socket=/run/corral/vms/vm1/console.sock");
    EXPECT_EQ(config["on_reboot"], "restart");
    // --control is not part of the VM config: it is in the command line.
    EXPECT_NE(std::find(args.begin(), args.end(), "--control"), args.end());
    EXPECT_EQ(config["rng"], true);
    EXPECT_EQ(config["disks"][0]["readonly"], true);
    EXPECT_EQ(config["disks"][0]["serial"], "seed");
    EXPECT_EQ(config["nets"][0]["mac"], "52:54:00:12:34:56");
}

/// Reads from the console socket until `needle` appeared `times` times in `text`.
bool wait_for(int fd, std::string& text, const std::string& needle, size_t times,
              std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto count = [&] {
        size_t n = 0;
        for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
            ++n;
        return n;
    };
    while (count() < times) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return false;
        pollfd pfd{fd, POLLIN, 0};
        if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0)
            continue;
        char chunk[1024];
        ssize_t n = ::read(fd, chunk, sizeof(chunk));
        if (n <= 0)
            return false;
        text.append(chunk, static_cast<size_t>(n));
    }
    return true;
}

TEST(NativeEngine, RunsATinyGuestWithItsConsoleOnTheSocket) {
    if (!kvm_opens()) {
        if (std::getenv("CORRAL_TEST_REQUIRE_KVM"))
            FAIL() << "/dev/kvm cannot be opened";
        GTEST_SKIP() << "/dev/kvm cannot be opened here (ctest's integration.engine.kvm.lab runs "
                        "this in tools/lab)";
    }
    char pattern[] = "/tmp/corral-native-it-XXXXXX";
    fs::path dir = ::mkdtemp(pattern);
    auto engine = make_native_engine(paths());
    Availability availability = engine->availability();
    ASSERT_TRUE(availability.available) << availability.reason;

    LaunchSpec spec;
    spec.name = "echo";
    spec.memory_mib = 64;
    spec.kernel = CORRAL_TINY_GUEST_DIR "/echo.elf";
    spec.run_dir = dir / "echo";
    auto launched = engine->launch(spec);
    ASSERT_TRUE(launched) << launched.error().describe();
    Instance& vm = **launched;
    // A failed ASSERT must not leave the guest running: this one ignores shutdown requests, and
    // the engine gives corral-vmm an hour to honour one.
    testing::KillAtEnd kill_at_end{vm};

    auto connect_console = [&] {
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", vm.console_socket().c_str());
        if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
            fd.reset();
        return fd;
    };
    UniqueFd console = connect_console();
    ASSERT_TRUE(console.valid());
    std::string text;
    // corral-vmm replays what the guest printed before we connected.
    ASSERT_TRUE(wait_for(console.get(), text, "echo ready", 1, 60s)) << text;
    ASSERT_EQ(::write(console.get(), "xyz", 3), 3);
    EXPECT_TRUE(wait_for(console.get(), text, "xyz", 1, 60s)) << text;
    // 'q' makes the guest reset; --on-reboot restart boots it again in the same process.
    // corral-vmm may hang up the console on the restart: then a client connects again.
    ASSERT_EQ(::write(console.get(), "q", 1), 1);
    // Connects again until the banner shows up, for at most `budget` in all: a guest that
    // never boots again must fail the test, not hang it.
    auto reconnect_until_ready = [&](std::chrono::seconds budget, std::string& seen) {
        auto deadline = std::chrono::steady_clock::now() + budget;
        while (std::chrono::steady_clock::now() < deadline && !vm.exited()) {
            std::this_thread::sleep_for(200ms);
            console = connect_console();
            if (!console.valid())
                continue;
            auto left = std::chrono::duration_cast<std::chrono::seconds>(
                deadline - std::chrono::steady_clock::now());
            if (wait_for(console.get(), seen, "echo ready", 1, std::clamp(left, 1s, 10s)))
                return true;
        }
        return false;
    };
    bool rebooted = wait_for(console.get(), text, "echo ready", 2, 60s);
    if (!rebooted) {
        std::string after_restart;
        rebooted = reconnect_until_ready(60s, after_restart);
        std::printf("the console socket was reopened on restart; got:\n%s\n", after_restart.c_str());
    }
    EXPECT_TRUE(rebooted) << text;
    EXPECT_FALSE(vm.exited()) << (vm.exited() ? vm.exit_info().value().reason : "");

    // Pause and resume through corral-vmm's control socket: a paused guest echoes nothing.
    auto state = vm.query();
    ASSERT_TRUE(state) << state.error().describe();
    EXPECT_EQ(*state, RunState::Running);
    auto pause = vm.pause();
    ASSERT_TRUE(pause) << pause.error().describe();
    state = vm.query();
    ASSERT_TRUE(state) << state.error().describe();
    EXPECT_EQ(*state, RunState::Paused);
    std::string while_paused;
    ASSERT_EQ(::write(console.get(), "abc", 3), 3);
    EXPECT_FALSE(wait_for(console.get(), while_paused, "abc", 1, 2s)) << while_paused;
    auto resume = vm.resume();
    ASSERT_TRUE(resume) << resume.error().describe();
    EXPECT_TRUE(wait_for(console.get(), while_paused, "abc", 1, 60s)) << while_paused;
    state = vm.query();
    ASSERT_TRUE(state) << state.error().describe();
    EXPECT_EQ(*state, RunState::Running);
    auto counters = vm.counters();
    ASSERT_TRUE(counters) << counters.error().describe();
    EXPECT_TRUE(counters->empty());  // no disks
    // corrald's graceful reboot: a shutdown request (Ctrl-Alt-Del, which this tiny guest does
    // not answer), and a reset through the control socket when the guest did not go in time.
    // The reset replaces the pending shutdown: the guest boots again in the same process, and
    // corral-vmm's own shutdown deadline (passed by the engine) does not end the VM meanwhile.
    auto asked = vm.request_shutdown();
    ASSERT_TRUE(asked) << asked.error().describe();
    std::this_thread::sleep_for(1s);
    auto reset = vm.reset();
    ASSERT_TRUE(reset) << reset.error().describe();
    std::string after_reset;
    bool booted_again = reconnect_until_ready(60s, after_reset);
    EXPECT_TRUE(booted_again) << after_reset;
    EXPECT_FALSE(vm.exited()) << (vm.exited() ? vm.exit_info().value().reason : "");

    // Adopted by a "restarted daemon", then killed.
    auto adopted = engine->adopt(spec.run_dir);
    ASSERT_TRUE(adopted) << adopted.error().describe();
    EXPECT_EQ((*adopted)->pid(), vm.pid());
    ASSERT_TRUE((*adopted)->kill());
    pollfd pfd{vm.exit_fd(), POLLIN, 0};
    ASSERT_EQ(::poll(&pfd, 1, 30000), 1);
    auto info = vm.exit_info();
    ASSERT_TRUE(info) << info.error().describe();
    EXPECT_EQ(info->reason, "killed by signal 9 (SIGKILL)");
    std::error_code ec;
    fs::remove_all(dir, ec);
}

TEST(NativeEngine, MigratesTheCounterGuestToAnIncomingInstance) {
    if (!kvm_opens()) {
        if (std::getenv("CORRAL_TEST_REQUIRE_KVM"))
            FAIL() << "/dev/kvm cannot be opened";
        GTEST_SKIP() << "/dev/kvm cannot be opened here (ctest's integration.engine.kvm.lab runs "
                        "this in tools/lab)";
    }
    char pattern[] = "/tmp/corral-native-mig-XXXXXX";
    fs::path dir = ::mkdtemp(pattern);
    // Declared first, so it goes last: after the VMs are killed.
    struct RemoveAtEnd {
        fs::path dir;
        ~RemoveAtEnd() {
            std::error_code ec;
            fs::remove_all(dir, ec);
        }
    } remove_at_end{dir};
    auto engine = make_native_engine(paths());
    LaunchSpec spec;
    spec.name = "counter";
    spec.memory_mib = 64;
    spec.kernel = CORRAL_TINY_GUEST_DIR "/counter.elf";
    spec.run_dir = dir / "source";
    auto launched = engine->launch(spec);
    ASSERT_TRUE(launched) << launched.error().describe();
    std::unique_ptr<Instance> source = std::move(*launched);
    LaunchSpec incoming_spec = spec;
    incoming_spec.run_dir = dir / "destination";
    incoming_spec.migrate_listen = "unix:" + (dir / "in.sock").string();
    auto incoming = engine->launch(incoming_spec);
    ASSERT_TRUE(incoming) << incoming.error().describe();
    std::unique_ptr<Instance> destination = std::move(*incoming);
    testing::KillAtEnd kill_source{*source}, kill_destination{*destination};

    auto connect_console = [](const fs::path& socket) {
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket.c_str());
        if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) fd.reset();
        return fd;
    };
    UniqueFd console = connect_console(source->console_socket());
    ASSERT_TRUE(console.valid());
    std::string text;
    ASSERT_TRUE(wait_for(console.get(), text, " ok\n", 2, 60s)) << text;

    auto report = source->migrate({.to = incoming_spec.migrate_listen, .downtime_ms = 300, .timeout_s = 120});
    ASSERT_TRUE(report) << report.error().describe();
    std::printf("native migration: %llu rounds, %llu bytes, %llu ms in all, %llu ms downtime\n",
                static_cast<unsigned long long>(report->rounds), static_cast<unsigned long long>(report->bytes_sent),
                static_cast<unsigned long long>(report->total_ms),
                static_cast<unsigned long long>(report->downtime_ms));
    EXPECT_GE(report->rounds, 1u);
    EXPECT_GT(report->bytes_sent, 0u);
    auto state = destination->query();
    ASSERT_TRUE(state) << state.error().describe();
    EXPECT_EQ(*state, RunState::Running);
    UniqueFd moved = connect_console(destination->console_socket());
    ASSERT_TRUE(moved.valid());
    std::string after;
    EXPECT_TRUE(wait_for(moved.get(), after, " ok\n", 2, 60s)) << after;
    EXPECT_EQ(after.find("BAD"), std::string::npos) << after;
    for (int i = 0; i < 100 && !source->exited(); ++i) std::this_thread::sleep_for(100ms);
    EXPECT_TRUE(source->exited()) << "the source monitor ends once the VM runs at the destination";
}

}  // namespace
}  // namespace corral::engine
