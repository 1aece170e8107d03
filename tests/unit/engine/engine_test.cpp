#include "engine/engine.h"

#include <gtest/gtest.h>

#include "engine_test_support.h"

namespace corral::engine {
namespace {

LaunchSpec valid_spec(const testing::TestDir& dir) {
    LaunchSpec spec;
    spec.name = "vm1";
    spec.kernel = "/proc/self/exe";
    spec.run_dir = dir.path("vm1");
    return spec;
}

std::string error_of(const LaunchSpec& spec) {
    auto result = validate_launch_spec(spec);
    return result ? "" : result.error().message();
}

TEST(ValidateLaunchSpec, AcceptsAMinimalSpec) {
    testing::TestDir dir;
    EXPECT_EQ(error_of(valid_spec(dir)), "");
}

TEST(ValidateLaunchSpec, NamesTheField) {
    testing::TestDir dir;
    LaunchSpec spec = valid_spec(dir);
    spec.vcpus = 0;
    EXPECT_EQ(error_of(spec), "vcpus: 0 is out of range (1 to 254)");
    spec = valid_spec(dir);
    spec.memory_mib = 4;
    EXPECT_EQ(error_of(spec), "memory_mib: 4 is out of range (16 to 1048576)");
    spec = valid_spec(dir);
    spec.kernel = "/nonexistent/vmlinuz";
    EXPECT_EQ(error_of(spec), "kernel: /nonexistent/vmlinuz does not exist");
    EXPECT_EQ(validate_launch_spec(spec).error().errno_value(), ENOENT);
    spec = valid_spec(dir);
    spec.disks = {{"/proc/self/exe", "vmdk", false, ""}};
    EXPECT_EQ(error_of(spec), "disks[0].format: 'vmdk' is not raw or qcow2");
    spec.disks = {{"/proc/self/exe", "raw", false, "has,comma"}};
    EXPECT_EQ(error_of(spec),
              "disks[0].serial: 'has,comma' must be up to 20 letters, digits, '.', '_' or '-'");
    spec.disks = {};
    spec.nics = {{"tap0", "52:54:00:zz:34:56"}};
    EXPECT_EQ(error_of(spec),
              "nics[0].mac: '52:54:00:zz:34:56' is not a MAC address like 52:54:00:12:34:56");
    spec.nics = {{"a-tap-name-that-is-too-long", ""}};
    EXPECT_NE(error_of(spec).find("nics[0].tap:"), std::string::npos);
    spec = valid_spec(dir);
    spec.migrate_listen = "http://elsewhere";
    EXPECT_EQ(error_of(spec), "migrate_listen: 'http://elsewhere' is not tcp:HOST:PORT or unix:/PATH");
    spec.migrate_listen = "tcp:127.0.0.1:4444";
    EXPECT_EQ(error_of(spec), "");
    spec.restore_dir = "/snap";
    EXPECT_EQ(error_of(spec), "migrate_listen: a VM comes from a migration or from a snapshot, not both");
    spec = valid_spec(dir);
    spec.run_dir = std::string(120, 'x');
    EXPECT_NE(error_of(spec).find("too long for a unix socket path"), std::string::npos);
}

TEST(EnginePaths, DiscoverFindsTheBuildTreeBinaries) {
    EnginePaths paths = testing::build_tree_paths();
    EXPECT_EQ(paths.corral_shim.filename(), "corral-shim");
    EXPECT_TRUE(paths.corral_shim.is_absolute())
        << "corral-shim not found in the build tree: " << paths.corral_shim;
    EXPECT_EQ(paths.corral_vmm.filename(), "corral-vmm");
    EXPECT_EQ(paths.qemu.filename(), "qemu-system-x86_64");
}

TEST(EnginePaths, MissingBinariesStayBareNames) {
    EnginePaths paths = EnginePaths::discover("/nonexistent/dir/corrald");
    EXPECT_EQ(paths.calibration_guest, "calibrate.elf");
}

TEST(MakeEngine, ByName) {
    EnginePaths paths;
    EXPECT_EQ(make_engine("native", paths)->name(), "native");
    EXPECT_EQ(make_engine("emulated", paths)->name(), "emulated");
    EXPECT_EQ(make_engine("vmware", paths), nullptr);
    EXPECT_STREQ(to_string(RunState::Paused), "paused");
}

}  // namespace
}  // namespace corral::engine
