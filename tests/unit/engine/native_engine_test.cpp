#include "engine/native_engine.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <gtest/gtest.h>

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
    EXPECT_EQ(values_of(args, "--console"), Args{"socket=/run/corral/vms/web1/console.sock"});
    EXPECT_EQ(values_of(args, "--on-reboot"), Args{"restart"});
}

TEST(VmmCommandLine, NoInitrd) {
    LaunchSpec spec;
    spec.kernel = "/img/vmlinuz";
    spec.run_dir = "/run/x";
    Args args = vmm_command_line(spec, "corral-vmm");
    EXPECT_FALSE(has(args, "--initrd"));
    EXPECT_FALSE(has(args, "--disk"));
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

/// The unsupported operations, on a real process under the shim: a stand-in "monitor" (sleep)
/// that ends on SIGTERM like corral-vmm does.
TEST(NativeEngine, UnsupportedOperationsSaySoAndSignalsWork) {
    testing::TestDir dir;
    EnginePaths paths = testing::build_tree_paths();
    // A fake corral-vmm: creates its console socket file, sleeps; SIGTERM ends it (signal 15).
    std::filesystem::path fake = dir.path("corral-vmm");
    {
        FILE* f = std::fopen(fake.c_str(), "w");
        ASSERT_NE(f, nullptr);
        std::fputs(
            "#!/bin/sh\n"
            "while [ $# -gt 0 ]; do case \"$1\" in --console) touch \"${2#socket=}\";; esac; "
            "shift; done\n"
            "exec sleep 60\n",
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
    for (auto result : {vm.pause(), vm.resume(), vm.reboot()}) {
        ASSERT_FALSE(result);
        EXPECT_EQ(result.error().errno_value(), ENOTSUP);
        EXPECT_NE(result.error().message().find(
                      "not supported by the native engine yet (corral-vmm has no control "
                      "socket)"),
                  std::string::npos)
            << result.error().message();
    }
    EXPECT_EQ(vm.pause().error().message(),
              "pause is not supported by the native engine yet (corral-vmm has no control socket)");
    auto state = vm.query();
    ASSERT_TRUE(state) << state.error().describe();
    EXPECT_EQ(*state, RunState::Running);
    EXPECT_TRUE(vm.console_log().empty());
    EXPECT_EQ(vm.console_socket(), spec.run_dir / "console.sock");
    auto counters = vm.counters();
    ASSERT_TRUE(counters);
    EXPECT_TRUE(counters->empty());

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
