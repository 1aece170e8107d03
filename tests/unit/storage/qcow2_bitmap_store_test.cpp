// Corral's qcow2 writer keeps QEMU's persistent dirty bitmaps (qcow2_bitmap_store.cpp): what
// corral-vmm writes into a disk is in its backup generation bitmap, as if QEMU had run it.
// qemu-img and qemu-io are the oracle: the same writes through QEMU set the same bits.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "shell_run.h"
#include "storage/endian.h"
#include "storage/file.h"
#include "storage/image.h"
#include "storage/qcow2/qcow2_bitmaps.h"
#include "storage/qcow2/qcow2_image.h"
#include "test_dir.h"

namespace corral::storage::qcow2 {
namespace {

using testing::have_qemu_bitmap_tools;
using testing::run;
using testing::TestDir;
constexpr uint64_t k_kib = 1u << 10;
constexpr uint64_t k_mib = 1u << 20;

#define REQUIRE_QEMU_TOOLS()       \
    if (!have_qemu_bitmap_tools()) \
    GTEST_SKIP() << "qemu-img (with bitmap) and qemu-io are not installed; they are the oracle"

/// name -> the flags qemu-img lists for it ("auto", "in-use"), as `qemu-img info` sees the image.
std::string qemu_flags(const std::string& image, const std::string& name) {
    auto [status, out] =
        run("qemu-img info -U --output=json " + image +
            " | python3 -c 'import json,sys; j=json.load(sys.stdin); "
            "print(\" \".join(next(b[\"flags\"] for b in j[\"format-specific\"][\"data\"][\"bitmaps\"] "
            "if b[\"name\"] == \"" +
            name + "\")))'");
    EXPECT_EQ(status, 0) << out;
    if (!out.empty() && out.back() == '\n')
        out.pop_back();
    return out;
}

/// {corruptions, leaks} as `qemu-img check --output=json` counts them (it omits zeroes).
std::pair<uint64_t, uint64_t> qemu_img_check(const std::string& image) {
    auto [status, out] = run("qemu-img check --output=json " + image + " 2>/dev/null" +
                             " | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j.get(\"corruptions\",0), "
                             "j.get(\"leaks\",0))'");
    uint64_t corruptions = 99, leaks = 99;
    EXPECT_EQ(std::sscanf(out.c_str(), "%lu %lu", &corruptions, &leaks), 2) << out;
    return {corruptions, leaks};
}

std::unique_ptr<BlockDevice> open_qcow2(const std::string& path, Access access = Access::ReadOnly) {
    auto dev = open_image(path, ImageOpenOptions{.access = access});
    EXPECT_TRUE(dev) << dev.error().describe();
    return dev ? std::move(*dev) : nullptr;
}

/// The set bits of bitmap `name` of `image`, read with our reader; {} and a failure if unreadable.
std::vector<uint64_t> bits_of(const std::string& image, const std::string& name) {
    auto dev = open_qcow2(image);
    if (!dev)
        return {};
    auto& q = dynamic_cast<Qcow2Image&>(*dev);
    auto bitmaps = read_bitmaps(q);
    EXPECT_TRUE(bitmaps) << bitmaps.error().describe();
    if (!bitmaps)
        return {};
    EXPECT_TRUE(bitmaps->consistent) << image;
    for (const auto& b : bitmaps->bitmaps) {
        if (b.name != name)
            continue;
        auto map = read_bitmap(q, b);
        EXPECT_TRUE(map) << map.error().describe();
        if (!map)
            return {};
        std::vector<uint64_t> out;
        for (uint64_t i = 0; i * map->granularity < map->disk_size; ++i)
            if (map->bit(i))
                out.push_back(i);
        return out;
    }
    ADD_FAILURE() << image << " has no bitmap " << name;
    return {};
}

/// Two 40 MiB images with the same history: data written before any bitmap, a bitmap `frozen`
/// that saw one write and was disabled, then the enabled bitmaps `gen-1` (64 KiB granules) and
/// `coarse` (1 MiB).
void make_twins(const std::string& a, const std::string& b) {
    for (const auto& image : {a, b}) {
        SHELL("qemu-img create -q -f qcow2 " + image + " 40M");
        SHELL("qemu-io -f qcow2 -c 'write -q -P 0x11 0 8M' " + image);
        SHELL("qemu-img bitmap --add " + image + " frozen");
        SHELL("qemu-io -f qcow2 -c 'write -q -P 0x22 5M 1' " + image);
        SHELL("qemu-img bitmap --disable " + image + " frozen");
        SHELL("qemu-img bitmap --add " + image + " gen-1");
        SHELL("qemu-img bitmap --add -g 1M " + image + " coarse");
    }
}

TEST(Qcow2BitmapStore, WritesSetTheSameBitsAsQemusAndTheImageStaysClean) {
    REQUIRE_QEMU_TOOLS();
    TestDir dir;
    const std::string ours = dir.path("ours.qcow2"), qemus = dir.path("qemus.qcow2");
    make_twins(ours, qemus);
    // One byte in granule 160; 100 KiB over 320-321; zeroes over 480-481 (1 MiB 30); a discard of
    // 576 (over data: 2 MiB 36 was not written, so a discard of nothing); the disk's last byte.
    SHELL(
        "qemu-io -f qcow2 -c 'write -q -P 0x5a 10M 1' -c 'write -q -P 0x5b 20M 100k' -c 'write -q -z 30M 128k' "
        "-c 'discard -q 36M 64k' -c 'write -q -P 0x5c 41943039 1' " +
        qemus);
    {
        auto dev = open_qcow2(ours, Access::ReadWrite);
        ASSERT_TRUE(dev);
        ASSERT_TRUE(dev->write_at(10 * k_mib, std::vector<uint8_t>(1, 0x5a)));
        ASSERT_TRUE(dev->write_at(20 * k_mib, std::vector<uint8_t>(100 * k_kib, 0x5b)));
        ASSERT_TRUE(dev->write_zeroes(30 * k_mib, 128 * k_kib));
        ASSERT_TRUE(dev->discard(36 * k_mib, 64 * k_kib));
        ASSERT_TRUE(dev->write_at(40 * k_mib - 1, std::vector<uint8_t>(1, 0x5c)));
        // While the image is open, its enabled bitmaps are in use on disk; the disabled one is not.
        EXPECT_EQ(qemu_flags(ours, "gen-1"), "in-use auto");
        EXPECT_EQ(qemu_flags(ours, "coarse"), "in-use auto");
        EXPECT_EQ(qemu_flags(ours, "frozen"), "");
    }
    EXPECT_EQ(qemu_flags(ours, "gen-1"), "auto") << "a clean close clears in-use";
    EXPECT_EQ(qemu_flags(ours, "coarse"), "auto");
    EXPECT_EQ(qemu_img_check(ours), std::make_pair(uint64_t{0}, uint64_t{0}));
    SHELL("qemu-img compare -q " + ours + " " + qemus);

    const std::vector<uint64_t> fine = bits_of(ours, "gen-1");
    EXPECT_EQ(fine, (std::vector<uint64_t>{160, 320, 321, 480, 481, 576, 639}));
    EXPECT_EQ(fine, bits_of(qemus, "gen-1"));
    EXPECT_EQ(bits_of(ours, "coarse"), (std::vector<uint64_t>{10, 20, 30, 36, 39}));
    EXPECT_EQ(bits_of(ours, "coarse"), bits_of(qemus, "coarse"));
    EXPECT_EQ(bits_of(ours, "frozen"), (std::vector<uint64_t>{80})) << "a disabled bitmap does not change";

    // A second session adds to the bits (the old clusters freed: still no leak), and QEMU takes
    // the bitmap over from there.
    {
        auto dev = open_qcow2(ours, Access::ReadWrite);
        ASSERT_TRUE(dev);
        ASSERT_TRUE(dev->write_at(2 * k_mib, std::vector<uint8_t>(4096, 0x5d)));
    }
    EXPECT_EQ(qemu_img_check(ours), std::make_pair(uint64_t{0}, uint64_t{0}));
    SHELL("qemu-io -f qcow2 -c 'write -q 3M 4k' " + ours);
    EXPECT_EQ(bits_of(ours, "gen-1"), (std::vector<uint64_t>{32, 48, 160, 320, 321, 480, 481, 576, 639}));
    EXPECT_EQ(qemu_img_check(ours), std::make_pair(uint64_t{0}, uint64_t{0}));

    // A bitmap whose bits all clear again (qemu-img bitmap --clear) stores as zero entries.
    SHELL("qemu-img bitmap --clear " + ours + " gen-1");
    {
        auto dev = open_qcow2(ours, Access::ReadWrite);
        ASSERT_TRUE(dev);
    }
    EXPECT_EQ(bits_of(ours, "gen-1"), std::vector<uint64_t>{});
    EXPECT_EQ(qemu_img_check(ours), std::make_pair(uint64_t{0}, uint64_t{0}));
}

TEST(Qcow2BitmapStore, BitsSpanningSeveralClustersAreStoredWhole) {
    REQUIRE_QEMU_TOOLS();
    TestDir dir;
    // 4 KiB clusters and 512-byte granules: 81920 bits of a 40 MiB disk fill three data clusters.
    const std::string ours = dir.path("ours.qcow2"), qemus = dir.path("qemus.qcow2");
    for (const auto& image : {ours, qemus}) {
        SHELL("qemu-img create -q -f qcow2 -o cluster_size=4k " + image + " 40M");
        SHELL("qemu-img bitmap --add -g 512 " + image + " fine");
    }
    SHELL("qemu-io -f qcow2 -c 'write -q 1k 1k' -c 'write -q 17M 3k' -c 'write -q 40959k 1k' " + qemus);
    {
        auto dev = open_qcow2(ours, Access::ReadWrite);
        ASSERT_TRUE(dev);
        ASSERT_TRUE(dev->write_at(k_kib, std::vector<uint8_t>(k_kib, 0xcd)));
        ASSERT_TRUE(dev->write_at(17 * k_mib, std::vector<uint8_t>(3 * k_kib, 0xcd)));
        ASSERT_TRUE(dev->write_at(40959 * k_kib, std::vector<uint8_t>(k_kib, 0xcd)));
    }
    const std::vector<uint64_t> bits = bits_of(ours, "fine");
    EXPECT_EQ(bits, (std::vector<uint64_t>{2, 3, 34816, 34817, 34818, 34819, 34820, 34821, 81918, 81919}));
    EXPECT_EQ(bits, bits_of(qemus, "fine"));
    EXPECT_EQ(qemu_img_check(ours), std::make_pair(uint64_t{0}, uint64_t{0}));
    EXPECT_EQ(qemu_flags(ours, "fine"), "auto");
}

TEST(Qcow2BitmapStore, ABitmapTooLargeToHoldNeverStopsTheDisk) {
    REQUIRE_QEMU_TOOLS();
    TestDir dir;
    const std::string image = dir.path("d.qcow2");
    SHELL("qemu-img create -q -f qcow2 " + image + " 4T");
    SHELL("qemu-img bitmap --add " + image + " gen-1");
    uint64_t dir_offset = 0;
    {
        auto dev = open_qcow2(image);
        ASSERT_TRUE(dev);
        for (const auto& e : dynamic_cast<Qcow2Image&>(*dev).header().other_extensions)
            if (e.type == k_ext_bitmaps)
                dir_offset = load_be64(e.data.data() + 16);
    }
    ASSERT_NE(dir_offset, 0u);
    {
        // A crafted entry: 512-byte granules over 4 TiB (1 GiB of bits, QEMU's bound is 512 MiB),
        // with a table of the size that needs, inside the (grown) file.
        auto file = File::open(image, Access::ReadWrite);
        ASSERT_TRUE(file);
        uint8_t table_size[4], granularity_bits[1] = {9};
        store_be32(table_size, 16384);
        ASSERT_TRUE(file->write_all(dir_offset + 8, table_size));
        ASSERT_TRUE(file->write_all(dir_offset + 17, granularity_bits));
        ASSERT_TRUE(file->truncate(*file->size() + 2 * k_mib));
    }
    {
        auto dev = open_qcow2(image);
        ASSERT_TRUE(dev);
        auto& q = dynamic_cast<Qcow2Image&>(*dev);
        auto bitmaps = read_bitmaps(q);
        ASSERT_TRUE(bitmaps);
        auto map = read_bitmap(q, bitmaps->bitmaps.at(0));
        ASSERT_FALSE(map);
        EXPECT_EQ(map.error().message(),
                  "bitmap 'gen-1': 1073741824 bytes of bits for a 4398046511104-byte disk at 512-byte granules (at "
                  "most 536870912)");
    }
    // A writer opens the disk all the same; the bitmaps become stale.
    {
        auto dev = open_qcow2(image, Access::ReadWrite);
        ASSERT_TRUE(dev);
        EXPECT_FALSE(dynamic_cast<Qcow2Image&>(*dev).keeps_bitmaps());
        ASSERT_TRUE(dev->write_at(0, std::vector<uint8_t>(512, 1)));
    }
    auto dev = open_qcow2(image);
    ASSERT_TRUE(dev);
    auto bitmaps = read_bitmaps(dynamic_cast<Qcow2Image&>(*dev));
    ASSERT_TRUE(bitmaps);
    EXPECT_FALSE(bitmaps->consistent);
}

TEST(Qcow2BitmapStore, AWriterThatDiesLeavesTheBitmapInUse) {
    REQUIRE_QEMU_TOOLS();
    TestDir dir;
    const std::string image = dir.path("d.qcow2");
    SHELL("qemu-img create -q -f qcow2 " + image + " 8M");
    SHELL("qemu-img bitmap --add " + image + " gen-1");
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        // A crash: the write reaches the file, the close never runs.
        auto dev = open_image(image, ImageOpenOptions{.access = Access::ReadWrite});
        bool ok = dev && (*dev)->write_at(k_mib, std::vector<uint8_t>(4096, 7)) && (*dev)->flush();
        ::_exit(ok ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_EQ(qemu_flags(image, "gen-1"), "in-use auto");
    EXPECT_EQ(qemu_img_check(image).first, 0u);

    // The next writer leaves it as it is: its bits say nothing of what the dead one wrote.
    {
        auto dev = open_qcow2(image, Access::ReadWrite);
        ASSERT_TRUE(dev);
        ASSERT_TRUE(dev->write_at(2 * k_mib, std::vector<uint8_t>(4096, 8)));
    }
    EXPECT_EQ(qemu_flags(image, "gen-1"), "in-use auto");
    auto dev = open_qcow2(image);
    ASSERT_TRUE(dev);
    auto bitmaps = read_bitmaps(dynamic_cast<Qcow2Image&>(*dev));
    ASSERT_TRUE(bitmaps);
    EXPECT_TRUE(bitmaps->consistent);
    EXPECT_TRUE(bitmaps->bitmaps.at(0).in_use());
}

TEST(Qcow2BitmapStore, AWriterThatHandsTheDiskOverWritesNoBitmapAtItsClose) {
    REQUIRE_QEMU_TOOLS();
    TestDir dir;
    const std::string image = dir.path("d.qcow2");
    SHELL("qemu-img create -q -f qcow2 " + image + " 8M");
    SHELL("qemu-img bitmap --add " + image + " gen-1");
    // A migration's source and destination on one shared file: the source hands the disk over
    // (paused, flushed), the destination opens it while the source still has it open.
    auto source = open_qcow2(image, Access::ReadWrite);
    ASSERT_TRUE(source);
    ASSERT_TRUE(source->write_at(k_mib, std::vector<uint8_t>(4096, 1)));
    ASSERT_TRUE(source->flush());
    dynamic_cast<Qcow2Image&>(*source).abandon_bitmaps();
    {
        auto destination = open_qcow2(image, Access::ReadWrite);
        ASSERT_TRUE(destination);
        EXPECT_TRUE(dynamic_cast<Qcow2Image&>(*destination).keeps_bitmaps()) << "the bitmaps bit stays set";
        ASSERT_TRUE(destination->write_at(2 * k_mib, std::vector<uint8_t>(4096, 2)));
        source.reset();  // the source ends while the destination runs: it writes no bitmap
        ASSERT_TRUE(destination->write_at(3 * k_mib, std::vector<uint8_t>(4096, 3)));
    }
    EXPECT_EQ(qemu_flags(image, "gen-1"), "in-use auto") << "neither could vouch for every write";
    EXPECT_EQ(qemu_img_check(image), std::make_pair(uint64_t{0}, uint64_t{0}));
    SHELL("qemu-io -f qcow2 -c 'read -q -P 1 1M 4k' -c 'read -q -P 2 2M 4k' -c 'read -q -P 3 3M 4k' " + image);
}

TEST(Qcow2BitmapStore, AResizeOrARevertMakesTheBitmapsStale) {
    REQUIRE_QEMU_TOOLS();
    TestDir dir;
    const std::string image = dir.path("d.qcow2");
    SHELL("qemu-img create -q -f qcow2 " + image + " 8M");
    SHELL("qemu-img snapshot -c before " + image);
    SHELL("qemu-img bitmap --add " + image + " gen-1");
    auto stale_after = [&](auto change) {
        {
            auto dev = open_qcow2(image, Access::ReadWrite);
            ASSERT_TRUE(dev);
            auto& q = dynamic_cast<Qcow2Image&>(*dev);
            EXPECT_TRUE(q.keeps_bitmaps());
            ASSERT_TRUE(dev->write_at(0, std::vector<uint8_t>(512, 1)));
            change(q);
            EXPECT_FALSE(q.keeps_bitmaps());
        }
        auto dev = open_qcow2(image);
        ASSERT_TRUE(dev);
        auto bitmaps = read_bitmaps(dynamic_cast<Qcow2Image&>(*dev));
        ASSERT_TRUE(bitmaps);
        EXPECT_FALSE(bitmaps->consistent);
        EXPECT_EQ(qemu_img_check(image).first, 0u);
    };
    stale_after([](Qcow2Image& q) { ASSERT_TRUE(q.revert_snapshot("before")); });
    // QEMU drops stale bitmaps when it writes; a fresh one is kept again until the resize.
    SHELL("qemu-io -f qcow2 -c 'write -q 0 4k' " + image);
    SHELL("qemu-img bitmap --add " + image + " gen-2");
    stale_after([](Qcow2Image& q) { ASSERT_TRUE(q.resize(16 * k_mib)); });
}

}  // namespace
}  // namespace corral::storage::qcow2
