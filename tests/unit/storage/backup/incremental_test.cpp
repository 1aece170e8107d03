// plan_incremental: which disks an incremental backup may read partly, from a bitmap in the disk
// (a stopped VM's) or in a copy QEMU wrote out of a running VM (`bitmaps_from`), and the reason
// it gives for a full read. qemu-img and qemu-io make the bitmaps, as QEMU does for a VM.
#include "storage/backup/incremental.h"

#include <gtest/gtest.h>

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include "backup_test_util.h"

namespace corral::storage::backup {
namespace {

using namespace testing;

#define REQUIRE_QEMU_TOOLS()       \
    if (!have_qemu_bitmap_tools()) \
    GTEST_SKIP() << "qemu-img (with bitmap) and qemu-io are not installed; they make the bitmaps"

class Incremental : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(Repository::create(dir.path("repo"), {}));
        auto opened = Repository::open(dir.path("repo"), std::nullopt);
        ASSERT_TRUE(opened) << opened.error().describe();
        repo.emplace(std::move(*opened));
        disk = dir.path("root.qcow2");
        make_image(disk, ImageFormat::Qcow2, 64 * k_mib, {{8 * k_mib, random_bytes(4 * k_mib, 1)}});
        auto made =
            create_backup(*repo, BackupRequest{.vm = "web", .disks = {{.name = "root", .path = disk}}}, nullptr);
        ASSERT_TRUE(made) << made.error().describe();
        first = made->id;
    }
    DiskSource planned(const std::string& bitmaps_from = {}) {
        DiskSource source{.name = "root", .path = disk, .format = ImageFormat::Qcow2};
        auto done = plan_incremental(*repo, "web", source, bitmaps_from);
        EXPECT_TRUE(done) << done.error().describe();
        return source;
    }

    TestDir dir;
    std::optional<Repository> repo;
    std::string disk;
    std::string first;
};

TEST_F(Incremental, TheDisksOwnGenerationBitmapGivesAnIncrementalRead) {
    REQUIRE_QEMU_TOOLS();
    SHELL("qemu-img bitmap --add " + disk + " " + generation_bitmap(first));
    SHELL("qemu-io -f qcow2 -c 'write -q -P 0x5a 20M 64k' " + disk);
    DiskSource source = planned();
    ASSERT_TRUE(source.incremental) << source.full_reason;
    EXPECT_EQ(source.incremental->base, first);
    EXPECT_EQ(source.incremental->dirty.dirty_bytes(), 64u << 10);
}

TEST_F(Incremental, ABitmapCopiedOutOfARunningVmIsReadFromItsCopy) {
    REQUIRE_QEMU_TOOLS();
    // The disk itself has no bitmap (QEMU keeps a running VM's in memory); the copy has it.
    const std::string copy = dir.path("copy.qcow2");
    SHELL("qemu-img create -q -f qcow2 " + copy + " 64M");
    SHELL("qemu-img bitmap --add " + copy + " " + generation_bitmap(first));
    SHELL("qemu-io -f qcow2 -c 'write -q 0 64k' -c 'write -q 30M 128k' " + copy);
    EXPECT_EQ(planned().full_reason, "no bitmap");
    DiskSource source = planned(copy);
    ASSERT_TRUE(source.incremental) << source.full_reason;
    EXPECT_EQ(source.incremental->dirty.dirty_bytes(), 192u << 10);

    // A copy of another size (the disk was resized meanwhile) is not trusted.
    SHELL("qemu-img resize -q " + copy + " 128M");
    EXPECT_EQ(planned(copy).full_reason, "the disk's size changed since backup " + first);
}

TEST_F(Incremental, CorralsOwnWriterKeepsTheBitmapAndAResizeMakesItStale) {
    REQUIRE_QEMU_TOOLS();
    SHELL("qemu-img bitmap --add " + disk + " " + generation_bitmap(first));
    // Corral's qcow2 writer (corral-vmm's disks) keeps the bitmap as QEMU does.
    {
        auto opened = open_image(disk, ImageOpenOptions{.access = Access::ReadWrite, .format = ImageFormat::Qcow2});
        ASSERT_TRUE(opened) << opened.error().describe();
        ASSERT_TRUE((*opened)->write_at(20 * k_mib, random_bytes(4096, 2)));
    }
    DiskSource kept = planned();
    ASSERT_TRUE(kept.incremental) << kept.full_reason;
    EXPECT_EQ(kept.incremental->dirty.dirty_bytes(), 64u << 10);

    // A resize keeps none: it clears the autoclear bit.
    {
        auto opened = open_image(disk, ImageOpenOptions{.access = Access::ReadWrite, .format = ImageFormat::Qcow2});
        ASSERT_TRUE(opened) << opened.error().describe();
        ASSERT_TRUE((*opened)->resize(128 * k_mib));
    }
    DiskSource source = planned();
    EXPECT_FALSE(source.incremental);
    EXPECT_EQ(source.full_reason, "the bitmap is stale: a program that keeps no bitmaps wrote the disk since");
}

}  // namespace
}  // namespace corral::storage::backup
