// The emulated engine end to end: a real QEMU (TCG) under a real corral-shim boots the
// project's guest kernel + initramfs; the test drives it the way corrald does.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "base/unique_fd.h"
#include "engine/engine.h"
#include "kill_at_end.h"

namespace corral::engine {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/// TCG boots take 5-15 s on an idle 2-core machine; these machines are shared and loaded.
constexpr auto k_boot_timeout = 240s;

struct GuestFiles {
    fs::path kernel;
    fs::path initrd;
    std::string missing;  ///< why they are not usable, empty when they are
};

GuestFiles guest_files() {
    GuestFiles files;
    const char* kernel = std::getenv("CORRAL_GUEST_KERNEL");
    const char* initrd = std::getenv("CORRAL_GUEST_INITRD");
    fs::path cache;
    if (const char* root = std::getenv("CORRAL_CACHE")) {
        cache = fs::path(root) / "guest" / "amd64";
    } else if (const char* home = std::getenv("HOME")) {
        cache = fs::path(home) / ".cache" / "corral" / "guest" / "amd64";
    }
    files.kernel = kernel ? fs::path(kernel) : cache / "vmlinuz";
    files.initrd = initrd ? fs::path(initrd) : cache / "initrd.img";
    for (const auto& path : {files.kernel, files.initrd}) {
        if (!fs::is_regular_file(path))
            files.missing = "guest artifact " + path.string() +
                            " is missing (run tools/guest-image, or set "
                            "CORRAL_GUEST_KERNEL/CORRAL_GUEST_INITRD)";
    }
    return files;
}

EnginePaths test_paths() {
    EnginePaths paths = EnginePaths::discover(fs::read_symlink("/proc/self/exe"));
    paths.corral_shim = CORRAL_SHIM_PATH;
    return paths;
}

class TestDir {
public:
    TestDir() {
        char pattern[] = "/tmp/corral-engine-it-XXXXXX";
        m_path = ::mkdtemp(pattern);
    }
    ~TestDir() {
        std::error_code ec;
        fs::remove_all(m_path, ec);
    }
    const fs::path& dir() const { return m_path; }

private:
    fs::path m_path;
};

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

size_t count(const std::string& haystack, const std::string& needle) {
    size_t n = 0;
    for (size_t at = haystack.find(needle); at != std::string::npos;
         at = haystack.find(needle, at + 1))
        ++n;
    return n;
}

/// A client of the VM's console socket, reading everything into `text`.
class Console {
public:
    explicit Console(const fs::path& socket) {
        m_fd = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket.c_str());
        if (::connect(m_fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
            m_fd.reset();
    }
    bool connected() const { return m_fd.valid(); }
    /// Reads until `text` has appeared `times` times in all output so far, or the timeout.
    bool wait_for(const std::string& needle, size_t times, std::chrono::seconds timeout) {
        auto deadline = Clock::now() + timeout;
        while (count(m_text, needle) < times) {
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now())
                    .count();
            if (left <= 0)
                return false;
            pollfd pfd{m_fd.get(), POLLIN, 0};
            if (::poll(&pfd, 1, static_cast<int>(left)) <= 0)
                continue;
            char chunk[4096];
            ssize_t n = ::read(m_fd.get(), chunk, sizeof(chunk));
            if (n <= 0)
                return false;
            m_text.append(chunk, static_cast<size_t>(n));
        }
        return true;
    }
    void send(const std::string& bytes) {
        ASSERT_EQ(::write(m_fd.get(), bytes.data(), bytes.size()),
                  static_cast<ssize_t>(bytes.size()));
    }
    const std::string& text() const { return m_text; }

private:
    UniqueFd m_fd;
    std::string m_text;
};

class EmulatedVm : public ::testing::Test {
protected:
    void SetUp() override {
        m_guest = guest_files();
        if (!m_guest.missing.empty())
            GTEST_SKIP() << m_guest.missing;
        m_engine = make_emulated_engine(test_paths());
        Availability availability = m_engine->availability();
        if (!availability.available)
            GTEST_SKIP() << "emulated engine unavailable: " << availability.reason;
        std::printf("using %s, kernel %s\n", availability.reason.c_str(), m_guest.kernel.c_str());
    }

    LaunchSpec spec(const std::string& name, const std::string& then) {
        LaunchSpec spec;
        spec.name = name;
        spec.vcpus = 1;
        spec.memory_mib = 256;
        spec.kernel = m_guest.kernel;
        spec.initrd = m_guest.initrd;
        spec.cmdline = "console=ttyS0 corral.then=" + then + " corral.marker=" + name;
        spec.run_dir = m_dir.dir() / name;
        return spec;
    }

    GuestFiles m_guest;
    std::unique_ptr<Engine> m_engine;
    TestDir m_dir;
};

TEST_F(EmulatedVm, BootConsolePauseResumeRebootAdoptKill) {
    LaunchSpec vm_spec = spec("engine-it", "shell");
    // A raw disk, so there are block counters to read.
    fs::path disk = m_dir.dir() / "data.raw";
    fs::resize_file((std::ofstream(disk), disk), 8 << 20);
    vm_spec.disks = {{disk, "raw", false, "data"}};

    auto started = Clock::now();
    auto launched = m_engine->launch(vm_spec);
    ASSERT_TRUE(launched) << launched.error().describe();
    std::unique_ptr<Instance> vm = std::move(*launched);
    pid_t pid = vm->pid();
    EXPECT_GT(pid, 0);
    EXPECT_EQ(vm->console_socket(), vm_spec.run_dir / "console.sock");
    EXPECT_EQ(vm->console_log(), vm_spec.run_dir / "console.log");

    // The console socket carries the boot, from right after launch.
    Console console(vm->console_socket());
    ASSERT_TRUE(console.connected());
    ASSERT_TRUE(console.wait_for("CORRAL-MARKER: engine-it", 1,
                                 std::chrono::duration_cast<std::chrono::seconds>(k_boot_timeout)))
        << "no marker; console so far:\n"
        << console.text() << "\nmonitor.log:\n"
        << read_file(vm_spec.run_dir / "monitor.log");
    std::printf("marker after %.1f s\n",
                std::chrono::duration<double>(Clock::now() - started).count());
    // QEMU writes the log right after the socket: give it a moment.
    bool logged = false;
    for (int i = 0; i < 50 && !logged; ++i) {
        logged = read_file(vm->console_log()).find("CORRAL-MARKER: engine-it") != std::string::npos;
        if (!logged)
            std::this_thread::sleep_for(100ms);
    }
    EXPECT_TRUE(logged) << "console.log:\n" << read_file(vm->console_log());

    // Input goes the other way: the guest's shell runs what we type.
    std::this_thread::sleep_for(2s);  // let the shell print its prompt
    console.send("echo sum-$((40+2))\n");
    EXPECT_TRUE(console.wait_for("sum-42", 1, 60s)) << console.text();

    auto state = vm->query();
    ASSERT_TRUE(state) << state.error().describe();
    EXPECT_EQ(*state, RunState::Running);

    auto counters = vm->counters();
    ASSERT_TRUE(counters) << counters.error().describe();
    ASSERT_EQ(counters->size(), 1u);
    EXPECT_EQ((*counters)[0].device, "disk0");
    EXPECT_GT((*counters)[0].read_ops, 0u) << "the guest's virtio_blk reads the partition table";
    EXPECT_GT((*counters)[0].read_bytes, 0u);

    ASSERT_TRUE(vm->pause());
    state = vm->query();
    ASSERT_TRUE(state);
    EXPECT_EQ(*state, RunState::Paused);
    ASSERT_TRUE(vm->resume());
    state = vm->query();
    ASSERT_TRUE(state);
    EXPECT_EQ(*state, RunState::Running);

    // A daemon restart: the Instance goes away, the VM does not; adopt() takes it back.
    fs::path run_dir = vm->run_dir();
    vm.reset();
    EXPECT_EQ(::kill(pid, 0), 0) << "destroying the Instance must not stop the VM";
    auto adopted = m_engine->adopt(run_dir);
    ASSERT_TRUE(adopted) << adopted.error().describe();
    vm = std::move(*adopted);
    EXPECT_EQ(vm->pid(), pid);
    state = vm->query();
    ASSERT_TRUE(state) << state.error().describe();
    EXPECT_EQ(*state, RunState::Running);

    // Reset: the guest boots again and prints its marker a second time.
    ASSERT_TRUE(vm->reset());
    EXPECT_TRUE(console.wait_for("CORRAL-MARKER: engine-it", 2,
                                 std::chrono::duration_cast<std::chrono::seconds>(k_boot_timeout)))
        << console.text();
    EXPECT_EQ(vm->pid(), pid) << "a reset keeps the same QEMU process";

    ASSERT_TRUE(vm->kill());
    pollfd pfd{vm->exit_fd(), POLLIN, 0};
    ASSERT_EQ(::poll(&pfd, 1, 30000), 1) << "exit_fd not readable 30 s after kill";
    auto info = vm->exit_info();
    ASSERT_TRUE(info) << info.error().describe();
    EXPECT_EQ(info->signal, 9);
    EXPECT_EQ(info->reason, "killed by signal 9 (SIGKILL)");

    auto after = vm->pause();
    ASSERT_FALSE(after);
    EXPECT_EQ(after.error().errno_value(), ENOENT);
    auto gone = m_engine->adopt(run_dir);
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().errno_value(), ENOENT);
    std::printf("adopt after kill: %s\n", gone.error().message().c_str());
}

TEST_F(EmulatedVm, GuestPowerOffIsANormalExit) {
    auto launched = m_engine->launch(spec("engine-off", "poweroff"));
    ASSERT_TRUE(launched) << launched.error().describe();
    Instance& vm = **launched;
    pollfd pfd{vm.exit_fd(), POLLIN, 0};
    ASSERT_EQ(::poll(&pfd, 1,
                     std::chrono::duration_cast<std::chrono::milliseconds>(k_boot_timeout).count()),
              1)
        << read_file(vm.console_log());
    EXPECT_NE(read_file(vm.console_log()).find("CORRAL-MARKER: engine-off"), std::string::npos);
    auto info = vm.exit_info();
    ASSERT_TRUE(info) << info.error().describe();
    EXPECT_EQ(info->exit_code, 0);
    EXPECT_EQ(info->signal, 0);
    EXPECT_EQ(info->reason, "QEMU exited normally (the guest powered off or was shut down)");
}

TEST_F(EmulatedVm, RequestShutdownPressesTheAcpiPowerButton) {
    LaunchSpec vm_spec = spec("engine-acpi", "halt");
    vm_spec.cmdline += " corral.shutdown=graceful";
    auto launched = m_engine->launch(vm_spec);
    ASSERT_TRUE(launched) << launched.error().describe();
    Instance& vm = **launched;
    Console console(vm.console_socket());
    ASSERT_TRUE(console.connected());
    ASSERT_TRUE(console.wait_for("CORRAL-INIT: halt", 1,
                                 std::chrono::duration_cast<std::chrono::seconds>(k_boot_timeout)))
        << console.text();
    std::this_thread::sleep_for(1s);  // acpid is up before the marker; let it settle
    ASSERT_TRUE(vm.request_shutdown());
    EXPECT_TRUE(console.wait_for("CORRAL-INIT: shutdown requested", 1, 120s)) << console.text();
    pollfd pfd{vm.exit_fd(), POLLIN, 0};
    ASSERT_EQ(::poll(&pfd, 1, 120000), 1) << "the guest did not power off after the power button:\n"
                                          << console.text();
    auto info = vm.exit_info();
    ASSERT_TRUE(info) << info.error().describe();
    EXPECT_EQ(info->exit_code, 0);
    EXPECT_EQ(info->reason, "QEMU exited normally (the guest powered off or was shut down)");
}

TEST_F(EmulatedVm, QemuRejectingItsArgumentsFailsTheLaunchWithItsMessage) {
    LaunchSpec bad = spec("engine-bad", "halt");
    // 1 TiB of guest memory (the most a spec allows): QEMU cannot set it up and exits.
    bad.memory_mib = 1024 * 1024;
    auto started = Clock::now();
    auto launched = m_engine->launch(bad);
    ASSERT_FALSE(launched) << "QEMU set up 1 TiB of guest memory";
    std::string message = launched.error().message();
    std::printf("launch error: %s (after %.1f s)\n", message.c_str(),
                std::chrono::duration<double>(Clock::now() - started).count());
    EXPECT_TRUE(message.starts_with("cannot start engine-bad: ")) << message;
    EXPECT_NE(message.find("QEMU exited with code 1"), std::string::npos) << message;
    EXPECT_NE(message.find("guest memory"), std::string::npos) << message;
}

TEST_F(EmulatedVm, ADiskThatIsNotItsFormatIsRefusedNamingIt) {
    LaunchSpec bad = spec("engine-bad", "halt");
    // A "qcow2" disk that is not one: corrald reads its header (to hand QEMU the backing chain)
    // and refuses before QEMU starts.
    fs::path disk = m_dir.dir() / "not-qcow2.img";
    fs::resize_file((std::ofstream(disk), disk), 1 << 20);
    bad.disks = {{disk, "qcow2", false, ""}};
    auto launched = m_engine->launch(bad);
    ASSERT_FALSE(launched) << "a raw file was accepted as qcow2";
    std::string message = launched.error().message();
    EXPECT_TRUE(message.starts_with("cannot start engine-bad: disks[0]: ")) << message;
    EXPECT_NE(message.find("not a qcow2 image"), std::string::npos) << message;
}

/// A TCP port on 127.0.0.1 that nobody listened on a moment ago.
uint16_t free_tcp_port() {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address);
    socklen_t length = sizeof address;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length);
    return ntohs(address.sin_port);
}

TEST_F(EmulatedVm, MigratesLiveToAnIncomingQemuAndTheShellGoesOnThere) {
    LaunchSpec source_spec = spec("engine-mig-src", "shell");
    auto launched = m_engine->launch(source_spec);
    ASSERT_TRUE(launched) << launched.error().describe();
    std::unique_ptr<Instance> source = std::move(*launched);
    testing::KillAtEnd kill_source{*source};
    Console source_console(source->console_socket());
    ASSERT_TRUE(source_console.wait_for("CORRAL-MARKER: engine-mig-src", 1,
                                        std::chrono::duration_cast<std::chrono::seconds>(k_boot_timeout)))
        << source_console.text();
    // A shell loop whose counter lives in guest memory: it goes on only if the memory arrived.
    source_console.send("i=0; while :; do i=$((i+1)); echo TICK-$i-; sleep 0.3; done\n");
    ASSERT_TRUE(source_console.wait_for("TICK-3-", 1, 120s)) << source_console.text();

    LaunchSpec destination_spec = spec("engine-mig-dst", "shell");
    destination_spec.cmdline = source_spec.cmdline;
    destination_spec.migrate_listen = "tcp:127.0.0.1:" + std::to_string(free_tcp_port());
    auto incoming = m_engine->launch(destination_spec);
    ASSERT_TRUE(incoming) << incoming.error().describe();
    std::unique_ptr<Instance> destination = std::move(*incoming);
    testing::KillAtEnd kill_destination{*destination};
    auto waiting = destination->query();
    ASSERT_TRUE(waiting) << waiting.error().describe();
    EXPECT_EQ(*waiting, RunState::Paused) << "the destination waits for the stream";
    Console destination_console(destination->console_socket());
    ASSERT_TRUE(destination_console.connected());

    auto report = source->migrate({.to = destination_spec.migrate_listen, .downtime_ms = 300, .timeout_s = 300});
    ASSERT_TRUE(report) << report.error().describe();
    std::printf("emulated migration: %llu rounds, %llu bytes, %llu ms in all, %llu ms downtime\n",
                static_cast<unsigned long long>(report->rounds), static_cast<unsigned long long>(report->bytes_sent),
                static_cast<unsigned long long>(report->total_ms),
                static_cast<unsigned long long>(report->downtime_ms));
    EXPECT_GE(report->rounds, 1u);
    EXPECT_GT(report->bytes_sent, 0u);
    EXPECT_GT(report->total_ms, 0u);

    // The destination waits paused (-S) until it is told to run (corrald confirms the switch
    // first); a `cont` while it still loads runs it once loaded.
    auto resumed = destination->resume();
    ASSERT_TRUE(resumed) << resumed.error().describe();
    Result<RunState> running = RunState::Paused;
    for (int i = 0; i < 600 && running && *running != RunState::Running; ++i) {
        std::this_thread::sleep_for(50ms);
        running = destination->query();
    }
    ASSERT_TRUE(running) << running.error().describe();
    EXPECT_EQ(*running, RunState::Running);
    // The loop goes on at the destination from where it was.
    // All the source printed until its QEMU quit (the console closes then).
    source_console.wait_for("never printed by the guest", 1, 30s);
    std::string before = source_console.text();
    size_t last = before.rfind("TICK-");
    ASSERT_NE(last, std::string::npos);
    int last_tick = std::atoi(before.c_str() + last + 5);
    ASSERT_TRUE(destination_console.wait_for("TICK-" + std::to_string(last_tick + 3) + "-", 1, 60s))
        << "source ended at TICK-" << last_tick << "; destination console:\n"
        << destination_console.text();
    EXPECT_EQ(destination_console.text().find("TICK-" + std::to_string(last_tick) + "-"), std::string::npos)
        << "a tick printed at the source came again from the destination";
    // The source QEMU quit once the VM ran there.
    for (int i = 0; i < 100 && !source->exited(); ++i) std::this_thread::sleep_for(100ms);
    ASSERT_TRUE(source->exited());
    auto info = source->exit_info();
    ASSERT_TRUE(info);
    EXPECT_EQ(info->exit_code, 0) << info->reason;
    ASSERT_TRUE(destination->kill());
}

TEST_F(EmulatedVm, AMigrationToNobodyFailsAndTheVmRunsOn) {
    LaunchSpec source_spec = spec("engine-mig-none", "shell");
    auto launched = m_engine->launch(source_spec);
    ASSERT_TRUE(launched) << launched.error().describe();
    std::unique_ptr<Instance> source = std::move(*launched);
    testing::KillAtEnd kill_source{*source};
    auto report = source->migrate({.to = "tcp:127.0.0.1:" + std::to_string(free_tcp_port()), .downtime_ms = 300, .timeout_s = 60});
    ASSERT_FALSE(report) << "nobody listens there";
    EXPECT_NE(report.error().message().find("the VM runs on here"), std::string::npos) << report.error().message();
    auto state = source->query();
    ASSERT_TRUE(state) << state.error().describe();
    EXPECT_EQ(*state, RunState::Running);
    ASSERT_TRUE(source->kill());
}

TEST_F(EmulatedVm, AMissingQemuBinaryFailsTheLaunchClearly) {
    EnginePaths paths = test_paths();
    paths.qemu = "/nonexistent/bin/qemu-system-x86_64";
    auto engine = make_emulated_engine(paths);
    auto launched = engine->launch(spec("engine-noqemu", "halt"));
    ASSERT_FALSE(launched);
    EXPECT_EQ(launched.error().errno_value(), ENOENT);
    EXPECT_EQ(launched.error().message(),
              "cannot start engine-noqemu: QEMU binary /nonexistent/bin/qemu-system-x86_64 not "
              "found (install "
              "qemu-system-x86)");
}

}  // namespace
}  // namespace corral::engine
