// The read-only view of an internal qcow2 snapshot (ImageOpenOptions::snapshot), against images
// that qemu-img and qemu-io made and changed: what a live backup reads while QEMU writes on.
#include <gtest/gtest.h>

// Designated initializers that leave the other options at their defaults are the point here.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <string>
#include <vector>

#include "shell_run.h"
#include "storage/image.h"
#include "test_dir.h"

namespace corral::storage {
namespace {

using testing::run;
using testing::succeeds;
using testing::TestDir;
constexpr uint64_t k_mib = 1u << 20;

bool have_qemu_tools() {
    return succeeds("qemu-img --version") && succeeds("qemu-io --version");
}

/// Every byte of [offset, offset + length) is `value`.
void expect_bytes(BlockDevice& dev, uint64_t offset, uint64_t length, uint8_t value) {
    std::vector<uint8_t> got(length);
    auto read = dev.read_at(offset, got);
    ASSERT_TRUE(read) << read.error().describe();
    EXPECT_EQ(got, std::vector<uint8_t>(length, value)) << "at offset " << offset;
}

std::unique_ptr<BlockDevice> open_view(const std::string& path, const std::string& snapshot) {
    auto dev = open_image(path, ImageOpenOptions{.access = Access::ReadOnly, .snapshot = snapshot});
    EXPECT_TRUE(dev) << dev.error().describe();
    return dev ? std::move(*dev) : nullptr;
}

TEST(Qcow2SnapshotView, ReadsWhatTheSnapshotHeldWhileTheActiveLayerMovesOn) {
    if (!have_qemu_tools()) GTEST_SKIP() << "qemu-img and qemu-io (qemu-utils) are not installed; they make the images";
    TestDir dir;
    const std::string base = dir.path("base.qcow2"), top = dir.path("top.qcow2");
    SHELL("qemu-img create -q -f qcow2 " + base + " 4M");
    SHELL("qemu-io -f qcow2 -c 'write -q -P 0x11 0 1M' " + base);
    SHELL("qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 " + top + " 4M");
    SHELL("qemu-io -f qcow2 -c 'write -q -P 0xaa 1M 1M' " + top);
    SHELL("qemu-img snapshot -c backup-1 " + top);
    // After the snapshot: overwrite what it holds, write where it had nothing, grow the disk.
    SHELL("qemu-io -f qcow2 -c 'write -q -P 0xbb 0 2M' -c 'write -q -P 0xcc 3M 64k' " + top);
    SHELL("qemu-img resize -q " + top + " 8M");

    auto view = open_view(top, "backup-1");
    ASSERT_TRUE(view);
    EXPECT_TRUE(view->read_only());
    EXPECT_EQ(view->size(), 4 * k_mib) << "the size the disk had when the snapshot was taken";
    expect_bytes(*view, 0, k_mib, 0x11);  // through to the backing file, as then
    expect_bytes(*view, k_mib, k_mib, 0xaa);
    expect_bytes(*view, 2 * k_mib, 2 * k_mib, 0);
    auto status = view->block_status(3 * k_mib, k_mib);
    ASSERT_TRUE(status) << status.error().describe();
    EXPECT_NE(status->kind, ExtentKind::Data) << "written after the snapshot: not in the view";

    // The snapshot's id names it too; the active layer still reads the new data.
    auto by_id = open_view(top, "1");
    ASSERT_TRUE(by_id);
    expect_bytes(*by_id, k_mib, k_mib, 0xaa);
    auto active = open_image(top, ImageOpenOptions{});
    ASSERT_TRUE(active);
    EXPECT_EQ((*active)->size(), 8 * k_mib);
    expect_bytes(**active, 0, 2 * k_mib, 0xbb);
    expect_bytes(**active, 3 * k_mib, 64 << 10, 0xcc);

    // Reading the view changed nothing: qemu-img finds the image clean, the snapshot still listed.
    view.reset();
    by_id.reset();
    SHELL("qemu-img check -q " + top);
    auto [listed, list] = run("qemu-img snapshot -l " + top);
    EXPECT_EQ(listed, 0);
    EXPECT_NE(list.find("backup-1"), std::string::npos) << list;
}

TEST(Qcow2SnapshotView, RefusalsNameTheSnapshotAndTheReason) {
    if (!have_qemu_tools()) GTEST_SKIP() << "qemu-img and qemu-io (qemu-utils) are not installed; they make the images";
    TestDir dir;
    const std::string image = dir.path("d.qcow2"), raw = dir.path("d.raw");
    SHELL("qemu-img create -q -f qcow2 " + image + " 1M");
    SHELL("qemu-img snapshot -c one " + image);
    SHELL("qemu-img create -q -f raw " + raw + " 1M");

    auto missing = open_image(image, ImageOpenOptions{.snapshot = "two"});
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().message(), "'" + image + "' has no snapshot named 'two'");

    auto writable = open_image(image, ImageOpenOptions{.access = Access::ReadWrite, .snapshot = "one"});
    ASSERT_FALSE(writable);
    EXPECT_EQ(writable.error().message(),
              "'" + image + "': a view of snapshot 'one' is read-only; open it with read-only access");

    auto of_raw = open_image(raw, ImageOpenOptions{.snapshot = "one"});
    ASSERT_FALSE(of_raw);
    EXPECT_EQ(of_raw.error().message(),
              "'" + raw + "' is a raw image, which cannot hold snapshots (snapshot 'one' was asked for)");
}

}  // namespace
}  // namespace corral::storage
