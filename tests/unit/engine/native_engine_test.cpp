#include "engine/native_engine.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "base/unique_fd.h"
#include "engine_test_support.h"

namespace corral::engine {
namespace {

using Args = std::vector<std::string>;

Args values_of(const Args& args, const std::string& flag) {
    Args values;
    for (size_t i = 0; i + 1 < args.size(); ++i)
        if (args[i] == flag)
            values.push_back(args[i + 1]);
    return values;
}

bool has(const Args& args, const std::string& arg) {
    return std::find(args.begin(), args.end(), arg) != args.end();
}

TEST(VmmCommandLine, MatchesCorralVmmFlags) {
    LaunchSpec spec;
    spec.name = "web1";
    spec.vcpus = 2;
    spec.memory_mib = 512;
    spec.kernel = "/img/vmlinuz";
    spec.initrd = "/img/initrd.img";
    spec.cmdline = "console=ttyS0 panic=1";
    spec.disks = {{"/pool/root.qcow2", "qcow2", false, "root"},
                  {"/pool/seed.raw", "raw", true, ""}};
    spec.nics = {{"tap0", "52:54:00:12:34:56"}, {"tap1", ""}};
    spec.run_dir = "/run/corral/vms/web1";
    Args args = vmm_command_line(spec, "/usr/lib/corral/corral-vmm");
    EXPECT_EQ(args[0], "/usr/lib/corral/corral-vmm");
    EXPECT_EQ(values_of(args, "--kernel"), Args{"/img/vmlinuz"});
    EXPECT_EQ(values_of(args, "--initrd"), Args{"/img/initrd.img"});
    EXPECT_EQ(values_of(args, "--cmdline"), Args{"console=ttyS0 panic=1"});
    EXPECT_EQ(values_of(args, "--memory"), Args{"512M"});
    EXPECT_EQ(values_of(args, "--cpus"), Args{"2"});
    EXPECT_EQ(values_of(args, "--disk"),
              (Args{"path=/pool/root.qcow2,readonly=off,format=qcow2,serial=root",
                    "path=/pool/seed.raw,readonly=on,format=raw"}));
    EXPECT_EQ(values_of(args, "--net"), (Args{"tap=tap0,mac=52:54:00:12:34:56", "tap=tap1"}));
    EXPECT_TRUE(has(args, "--rng"));
    EXPECT_TRUE(has(args, "--balloon"));
    EXPECT_EQ(values_of(args, "--console"), Args{"socket=/run/corral/vms/web1/console.sock"});
    EXPECT_EQ(values_of(args, "--on-reboot"), Args{"restart"});
    EXPECT_EQ(values_of(args, "--control"), Args{"/run/corral/vms/web1/control.sock"});
}

TEST(VmmCommandLine, ADisplayAndItsVncSocket) {
    LaunchSpec spec;
    spec.kernel = "/img/vmlinuz";
    spec.run_dir = "/run/corral/vms/desk";
    EXPECT_FALSE(has(vmm_command_line(spec, "corral-vmm"), "--display"));
    EXPECT_FALSE(has(vmm_command_line(spec, "corral-vmm"), "--vnc"));
    spec.display_width = 1280;
    spec.display_height = 720;
    Args args = vmm_command_line(spec, "corral-vmm");
    EXPECT_EQ(values_of(args, "--display"), Args{"1280x720"});
    EXPECT_EQ(values_of(args, "--vnc"), Args{"unix:/run/corral/vms/desk/vnc.sock"});
    // No balloon beside a display yet (native_engine.cpp says why).
    EXPECT_FALSE(has(args, "--balloon"));
}

TEST(VmmCommandLine, NoInitrd) {
    LaunchSpec spec;
    spec.kernel = "/img/vmlinuz";
    spec.run_dir = "/run/x";
    Args args = vmm_command_line(spec, "corral-vmm");
    EXPECT_FALSE(has(args, "--initrd"));
    EXPECT_FALSE(has(args, "--disk"));
}

TEST(VmmCommandLine, RateLimitsGoOnEveryDiskAndNicAtBootAndRestore) {
    LaunchSpec spec;
    spec.kernel = "/img/vmlinuz";
    spec.memory_mib = 64;
    spec.disks = {{"/pool/root.qcow2", "qcow2", false, ""}, {"/pool/seed.raw", "raw", true, ""}};
    spec.nics = {{"tap0", ""}};
    spec.run_dir = "/run/x";
    spec.io_limits = {.disk_bytes_per_s = 1048576, .disk_ops_per_s = 100, .nic_bytes_per_s = 65536};
    for (const char* restore : {"", "/state/snap"}) {
        spec.restore_dir = restore;
        Args args = vmm_command_line(spec, "corral-vmm");
        EXPECT_EQ(values_of(args, "--disk"), (Args{"path=/pool/root.qcow2,readonly=off,format=qcow2,bps=1048576,iops=100",
                                                   "path=/pool/seed.raw,readonly=on,format=raw,bps=1048576,iops=100"}))
            << "restore '" << restore << "'";
        EXPECT_EQ(values_of(args, "--net"), Args{"tap=tap0,bps=65536"}) << "restore '" << restore << "'";
    }
}

TEST(VmmCommandLine, RestoreGivesOnlyWhatANewProcessNeeds) {
    LaunchSpec spec;
    spec.kernel = "/img/vmlinuz";
    spec.cmdline = "console=ttyS0";
    spec.memory_mib = 64;
    spec.disks = {{"/pool/root.qcow2", "qcow2", false, "root"}};
    spec.nics = {{"tap0", "52:54:00:12:34:56"}};
    spec.run_dir = "/run/x";
    spec.restore_dir = "/state/snapshots/web1/s1/state";
    Args args = vmm_command_line(spec, "corral-vmm");
    EXPECT_EQ(values_of(args, "--restore"), Args{"/state/snapshots/web1/s1/state"});
    // The snapshot has kernel, command line, memory and CPUs: giving them again only adds checks.
    for (const char* flag : {"--kernel", "--cmdline", "--memory", "--cpus", "--rng", "--balloon"})
        EXPECT_FALSE(has(args, flag)) << flag;
    // How the monitor behaves is corrald's to say, whatever the snapshot's monitor was told: a
    // guest reset boots again, and corrald's stop deadline decides, not corral-vmm's default.
    EXPECT_EQ(values_of(args, "--on-reboot"), Args{"restart"});
    EXPECT_EQ(values_of(args, "--shutdown-timeout"), Args{"3600"});
    EXPECT_EQ(values_of(args, "--disk"), Args{"path=/pool/root.qcow2,readonly=off,format=qcow2,serial=root"});
    EXPECT_EQ(values_of(args, "--net"), Args{"tap=tap0,mac=52:54:00:12:34:56"});
    EXPECT_EQ(values_of(args, "--console"), Args{"socket=/run/x/console.sock"});
    EXPECT_EQ(values_of(args, "--control"), Args{"/run/x/control.sock"});
}

TEST(VmmCommandLine, AnIncomingMigrationListensAndGivesOnlyWhatANewProcessNeeds) {
    LaunchSpec spec;
    spec.kernel = "/img/vmlinuz";
    spec.memory_mib = 64;
    spec.disks = {{"/pool/root.qcow2", "qcow2", false, "root"}};
    spec.nics = {{"tap1", "52:54:00:12:34:56"}};
    spec.run_dir = "/run/x";
    spec.migrate_listen = "unix:/run/x/migrate.sock";
    Args args = vmm_command_line(spec, "corral-vmm");
    EXPECT_EQ(values_of(args, "--migrate-listen"), Args{"unix:/run/x/migrate.sock"});
    // The stream brings kernel, command line, memory and CPUs, as a snapshot does.
    for (const char* flag : {"--restore", "--kernel", "--cmdline", "--memory", "--cpus", "--rng", "--balloon"})
        EXPECT_FALSE(has(args, flag)) << flag;
    // How the monitor behaves is corrald's to say, as for a restore.
    EXPECT_EQ(values_of(args, "--on-reboot"), Args{"restart"});
    EXPECT_EQ(values_of(args, "--net"), Args{"tap=tap1,mac=52:54:00:12:34:56"});
    EXPECT_EQ(values_of(args, "--control"), Args{"/run/x/control.sock"});
}

TEST(NativeEngine, AvailabilityNamesWhatIsMissing) {
    EnginePaths paths = testing::build_tree_paths();
    paths.corral_vmm = "/nonexistent/corral-vmm";
    auto engine = make_native_engine(paths);
    EXPECT_EQ(engine->name(), "native");
    Availability availability = engine->availability();
    EXPECT_FALSE(availability.available);
    int kvm = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        EXPECT_EQ(availability.reason, "no /dev/kvm on this host");
    } else {
        ::close(kvm);
        EXPECT_EQ(availability.reason, "corral-vmm not found at /nonexistent/corral-vmm");
    }
}

TEST(NativeEngine, LaunchWithAMissingMonitorFailsClearly) {
    testing::TestDir dir;
    EnginePaths paths = testing::build_tree_paths();
    paths.corral_vmm = "/nonexistent/corral-vmm";
    LaunchSpec spec;
    spec.name = "vm1";
    spec.kernel = "/proc/self/exe";
    spec.run_dir = dir.path("vm1");
    auto instance = make_native_engine(paths)->launch(spec);
    ASSERT_FALSE(instance);
    EXPECT_EQ(instance.error().errno_value(), ENOENT);
    EXPECT_EQ(instance.error().message(),
              "cannot start vm1: corral-vmm not found at /nonexistent/corral-vmm");
}

/// A stand-in for corral-vmm's control socket: answers each connection's one request line
/// with `answers[action]` and records the actions.
class FakeControlSocket {
public:
    FakeControlSocket(const std::filesystem::path& path, std::map<std::string, std::string> answers)
        : m_answers(std::move(answers)) {
        m_listen.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
        EXPECT_EQ(::bind(m_listen.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
        EXPECT_EQ(::listen(m_listen.get(), 4), 0);
        m_thread = std::thread([this] { serve(); });
    }
    ~FakeControlSocket() {
        m_stop = true;
        m_thread.join();
    }
    std::vector<std::string> actions() {
        std::lock_guard lock(m_mutex);
        return m_actions;
    }

private:
    void serve() {
        while (!m_stop) {
            pollfd entry{m_listen.get(), POLLIN, 0};
            if (::poll(&entry, 1, 50) != 1)
                continue;
            UniqueFd client(::accept4(m_listen.get(), nullptr, nullptr, SOCK_CLOEXEC));
            std::string line;
            char c;
            while (::recv(client.get(), &c, 1, 0) == 1 && c != '\n')
                line += c;
            std::string action = nlohmann::json::parse(line)["action"];
            {
                std::lock_guard lock(m_mutex);
                m_actions.push_back(action);
            }
            auto answer = m_answers.find(action);
            if (answer == m_answers.end())
                continue;  // no answer: the client times out or sees the close
            std::string text = answer->second + "\n";
            ::send(client.get(), text.data(), text.size(), MSG_NOSIGNAL);
        }
    }

    UniqueFd m_listen;
    std::map<std::string, std::string> m_answers;
    std::atomic<bool> m_stop{false};
    std::mutex m_mutex;
    std::vector<std::string> m_actions;
    std::thread m_thread;
};

/// The operations on a real process under the shim: a stand-in "monitor" (sleep) that ends on
/// SIGTERM like corral-vmm does, and a fake control socket in its run_dir.
TEST(NativeEngine, OperationsGoThroughTheControlSocketAndSignalsWork) {
    testing::TestDir dir;
    EnginePaths paths = testing::build_tree_paths();
    // A fake corral-vmm: creates its console socket file, answers the launch's readiness probe
    // (`status`) on its control socket, then closes that socket and sleeps; SIGTERM ends it
    // (signal 15).
    std::filesystem::path fake = dir.path("corral-vmm");
    {
        FILE* f = std::fopen(fake.c_str(), "w");
        ASSERT_NE(f, nullptr);
        std::fputs(
            "#!/usr/bin/env python3\n"
            "import os, socket, sys, time\n"
            "args = sys.argv[1:]\n"
            "control = args[args.index('--control') + 1]\n"
            "open(args[args.index('--console') + 1].removeprefix('socket='), 'w').close()\n"
            "server = socket.socket(socket.AF_UNIX)\n"
            "server.bind(control)\n"
            "server.listen()\n"
            "client, _ = server.accept()\n"
            "client.recv(4096)\n"
            "os.unlink(control)\n"  // gone before the answer arrives: no race with the test
            "client.sendall(b'{\"ok\":true,\"state\":\"running\"}\\n')\n"
            "client.close(); server.close()\n"
            "time.sleep(60)\n",
            f);
        std::fclose(f);
        ::chmod(fake.c_str(), 0755);
    }
    paths.corral_vmm = fake;
    LaunchSpec spec;
    spec.name = "vm1";
    spec.kernel = "/proc/self/exe";
    spec.run_dir = dir.path("vm1");
    auto instance = make_native_engine(paths)->launch(spec);
    ASSERT_TRUE(instance) << instance.error().describe();
    Instance& vm = **instance;

    // No control socket (any more): the operations say the monitor does not answer.
    auto unreachable = vm.pause();
    ASSERT_FALSE(unreachable);
    EXPECT_EQ(unreachable.error().errno_value(), ENOENT);
    EXPECT_NE(unreachable.error().message().find("control socket"), std::string::npos)
        << unreachable.error().message();
    {
        FakeControlSocket control(
            spec.run_dir / "control.sock",
            {{"pause", R"({"ok":true,"state":"paused"})"},
             {"resume", R"({"ok":true,"state":"running"})"},
             {"status", R"({"ok":true,"state":"paused","vcpus":1,"uptime_ms":5})"},
             {"reset", R"({"ok":false,"error":"reset is not supported without --on-reboot restart"})"},
             {"counters",
              R"({"ok":true,"devices":[{"device":"rng0","type":"rng","requests":1},)"
              R"({"device":"block0","type":"block","bytes_read":4096,"bytes_written":512,)"
              R"("read_ops":2,"write_ops":1,"read_time_ns":3000000,"write_time_ns":40000000},)"
              R"({"device":"block1","type":"block","bytes_read":7,"bytes_written":0}]})"}});
        EXPECT_TRUE(vm.pause());
        EXPECT_TRUE(vm.resume());
        auto state = vm.query();
        ASSERT_TRUE(state) << state.error().describe();
        EXPECT_EQ(*state, RunState::Paused);
        auto reboot = vm.reset();
        ASSERT_FALSE(reboot);
        EXPECT_EQ(reboot.error().errno_value(), ENOTSUP);
        EXPECT_EQ(reboot.error().message(),
                  "corral-vmm refused 'reset': reset is not supported without --on-reboot restart");
        auto counters = vm.counters();
        ASSERT_TRUE(counters) << counters.error().describe();
        ASSERT_EQ(counters->size(), 2u);
        EXPECT_EQ((*counters)[0].device, "disk0");
        EXPECT_EQ((*counters)[0].read_bytes, 4096u);
        EXPECT_EQ((*counters)[0].write_bytes, 512u);
        // Operations and service time: the history's disk latency (time / operations).
        EXPECT_EQ((*counters)[0].read_ops, 2u);
        EXPECT_EQ((*counters)[0].write_ops, 1u);
        EXPECT_EQ((*counters)[0].read_time_ns, 3'000'000u);
        EXPECT_EQ((*counters)[0].write_time_ns, 40'000'000u);
        EXPECT_EQ((*counters)[1].device, "disk1");
        EXPECT_EQ((*counters)[1].read_bytes, 7u);
        EXPECT_EQ(control.actions(), (Args{"pause", "resume", "status", "reset", "counters"}));
    }
    EXPECT_TRUE(vm.console_log().empty());
    EXPECT_EQ(vm.console_socket(), spec.run_dir / "console.sock");

    ASSERT_TRUE(vm.request_shutdown());
    pollfd pfd{vm.exit_fd(), POLLIN, 0};
    ASSERT_EQ(::poll(&pfd, 1, 10000), 1) << "the VM process did not end on SIGTERM";
    auto info = vm.exit_info();
    ASSERT_TRUE(info) << info.error().describe();
    EXPECT_EQ(info->signal, 15);
    EXPECT_EQ(info->reason, "killed by signal 15 (SIGTERM)");
    auto after = vm.query();
    ASSERT_FALSE(after);
    EXPECT_EQ(after.error().errno_value(), ENOENT);
}

}  // namespace
}  // namespace corral::engine
