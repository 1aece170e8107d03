#include "vmm/config/restore_config.h"

#include <gtest/gtest.h>

namespace corral::vmm {
namespace {

VmConfig snapshot_config() {
    VmConfig config;
    config.kernel_path = "/boot/vmlinuz";
    config.memory_bytes = 512ull << 20;
    config.cpus = 2;
    DiskConfig disk;
    disk.path = "/srv/a.qcow2";
    config.disks.push_back(disk);
    return config;
}

TEST(RestoreConfig, FlagsThatAgreeOrMayChangeAreApplied) {
    VmConfig saved = snapshot_config();
    VmConfig given;
    given.memory_bytes = 512ull << 20;
    given.cpus = 2;
    DiskConfig overlay;
    overlay.path = "/srv/revert.qcow2";
    given.disks.push_back(overlay);
    given.shutdown_timeout_seconds = 3;
    std::vector<std::string> flags = {"--memory", "--cpus", "--disk", "--shutdown-timeout"};
    ASSERT_TRUE(apply_restore_flags(saved, given, flags));
    EXPECT_EQ(saved.disks[0].path, "/srv/revert.qcow2");
    EXPECT_EQ(saved.shutdown_timeout_seconds, 3u);
    EXPECT_EQ(saved.kernel_path, "/boot/vmlinuz");
}

TEST(RestoreConfig, ADisplayIsRefusedWithTheReason) {
    VmConfig saved = snapshot_config();
    VmConfig given;
    given.display_width = 1024;
    given.display_height = 768;
    std::vector<std::string> flags = {"--display"};
    auto result = apply_restore_flags(saved, given, flags);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("--display: snapshots of VMs with a display are not supported yet"),
              std::string::npos)
        << result.error().message();
}

TEST(RestoreConfig, EveryMismatchIsNamed) {
    VmConfig saved = snapshot_config();
    VmConfig given;
    given.memory_bytes = 1ull << 30;
    given.cpus = 4;
    given.rng = true;
    std::vector<std::string> flags = {"--memory", "--cpus", "--rng", "--disk", "--config"};
    auto refused = apply_restore_flags(saved, given, flags);
    ASSERT_FALSE(refused);
    const std::string& message = refused.error().message();
    for (const char* part : {"--memory: the snapshot has 512 MiB, 1024 MiB given", "--cpus: the snapshot has 2, 4 given",
                             "--rng", "--disk: the snapshot has 1 disks, 0 given", "--config"})
        EXPECT_NE(message.find(part), std::string::npos) << part << "\n" << message;
    EXPECT_EQ(saved.memory_bytes, 512ull << 20) << "a refusal changes nothing";
}

}  // namespace
}  // namespace corral::vmm
