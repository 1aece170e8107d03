// The reader of qcow2's persistent dirty bitmaps, against images that qemu-img made and qemu-io
// wrote: what an incremental backup of a stopped VM's disk reads.
#include "storage/qcow2/qcow2_bitmaps.h"

#include <gtest/gtest.h>

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <string>
#include <vector>

#include "shell_run.h"
#include "storage/endian.h"
#include "storage/file.h"
#include "storage/image.h"
#include "storage/qcow2/qcow2_image.h"
#include "test_dir.h"

namespace corral::storage::qcow2 {
namespace {

using testing::have_qemu_bitmap_tools;
using testing::run;
using testing::TestDir;
constexpr uint64_t k_kib = 1u << 10;
constexpr uint64_t k_mib = 1u << 20;

std::unique_ptr<BlockDevice> open_qcow2(const std::string& path, Access access = Access::ReadOnly) {
    auto dev = open_image(path, ImageOpenOptions{.access = access});
    EXPECT_TRUE(dev) << dev.error().describe();
    return dev ? std::move(*dev) : nullptr;
}

const BitmapEntry* find(const ImageBitmaps& bitmaps, const std::string& name) {
    for (const auto& b : bitmaps.bitmaps)
        if (b.name == name) return &b;
    return nullptr;
}

/// The indices of the set bits of `map`.
std::vector<uint64_t> set_bits(const DirtyMap& map) {
    std::vector<uint64_t> out;
    for (uint64_t i = 0; i * map.granularity < map.disk_size; ++i)
        if (map.bit(i)) out.push_back(i);
    return out;
}

TEST(Qcow2Bitmaps, AnImageWithoutBitmapsHasNone) {
    if (!have_qemu_bitmap_tools())
        GTEST_SKIP() << "qemu-img (with bitmap) and qemu-io are not installed; they make the images";
    TestDir dir;
    const std::string image = dir.path("d.qcow2");
    SHELL("qemu-img create -q -f qcow2 " + image + " 4M");
    auto dev = open_qcow2(image);
    ASSERT_TRUE(dev);
    auto bitmaps = read_bitmaps(dynamic_cast<Qcow2Image&>(*dev));
    ASSERT_TRUE(bitmaps) << bitmaps.error().describe();
    EXPECT_TRUE(bitmaps->bitmaps.empty());
}

TEST(Qcow2Bitmaps, ReadsTheGranulesQemuMarkedAfterTheBitmapWasAdded) {
    if (!have_qemu_bitmap_tools())
        GTEST_SKIP() << "qemu-img (with bitmap) and qemu-io are not installed; they make the images";
    TestDir dir;
    const std::string image = dir.path("d.qcow2");
    SHELL("qemu-img create -q -f qcow2 " + image + " 40M");
    SHELL("qemu-io -f qcow2 -c 'write -q -P 0x11 0 8M' " + image);  // before: not in the bitmaps
    SHELL("qemu-img bitmap --add " + image + " gen-1");
    SHELL("qemu-img bitmap --add -g 1M " + image + " coarse");
    // One byte in granule 160 (10 MiB / 64 KiB); 100 KiB across granules 320 and 321; the last byte.
    SHELL("qemu-io -f qcow2 -c 'write -q -P 0x5a 10M 1' -c 'write -q -P 0x5a 20M 100k' -c 'write -q -P 0x5a "
          "41943039 1' " + image);

    auto dev = open_qcow2(image);
    ASSERT_TRUE(dev);
    auto& q = dynamic_cast<Qcow2Image&>(*dev);
    auto bitmaps = read_bitmaps(q);
    ASSERT_TRUE(bitmaps) << bitmaps.error().describe();
    EXPECT_TRUE(bitmaps->consistent);
    ASSERT_EQ(bitmaps->bitmaps.size(), 2u);
    const BitmapEntry* fine = find(*bitmaps, "gen-1");
    ASSERT_TRUE(fine);
    EXPECT_EQ(fine->granularity(), 64 * k_kib) << "qemu-img's default: the cluster size";
    EXPECT_TRUE(fine->enabled());
    EXPECT_FALSE(fine->in_use()) << "qemu-io closed the image cleanly";

    auto map = read_bitmap(q, *fine);
    ASSERT_TRUE(map) << map.error().describe();
    EXPECT_EQ(map->disk_size, 40 * k_mib);
    EXPECT_EQ(set_bits(*map), (std::vector<uint64_t>{160, 320, 321, 639}));
    EXPECT_EQ(map->dirty_bytes(), 4 * 64 * k_kib);
    EXPECT_TRUE(map->any(8 * k_mib, 4 * k_mib));
    EXPECT_FALSE(map->any(0, 8 * k_mib)) << "written before the bitmap existed";

    auto coarse = read_bitmap(q, *find(*bitmaps, "coarse"));
    ASSERT_TRUE(coarse) << coarse.error().describe();
    EXPECT_EQ(coarse->granularity, k_mib);
    EXPECT_EQ(set_bits(*coarse), (std::vector<uint64_t>{10, 20, 39}));
}

TEST(Qcow2Bitmaps, TellsAnInUseBitmapAndAWriterThatKeepsNoBitmaps) {
    if (!have_qemu_bitmap_tools())
        GTEST_SKIP() << "qemu-img (with bitmap) and qemu-io are not installed; they make the images";
    TestDir dir;
    const std::string image = dir.path("d.qcow2");
    SHELL("qemu-img create -q -f qcow2 " + image + " 4M");
    SHELL("qemu-img bitmap --add " + image + " gen-1");
    {
        auto dev = open_qcow2(image);
        ASSERT_TRUE(dev);
        auto bitmaps = read_bitmaps(dynamic_cast<Qcow2Image&>(*dev));
        ASSERT_TRUE(bitmaps);
        ASSERT_EQ(bitmaps->bitmaps.size(), 1u);
        // Set in_use in the directory entry, as a QEMU that crashed with the image open leaves it.
        const auto& ext = dynamic_cast<Qcow2Image&>(*dev).header().other_extensions;
        uint64_t dir_offset = 0;
        for (const auto& e : ext)
            if (e.type == k_ext_bitmaps) dir_offset = load_be64(e.data.data() + 16);
        ASSERT_NE(dir_offset, 0u);
        auto file = File::open(image, Access::ReadWrite);
        ASSERT_TRUE(file);
        uint8_t flags[4];
        store_be32(flags, bitmaps->bitmaps[0].flags | k_bitmap_in_use);
        ASSERT_TRUE(file->write_all(dir_offset + 12, flags));
    }
    {
        auto dev = open_qcow2(image);
        ASSERT_TRUE(dev);
        auto bitmaps = read_bitmaps(dynamic_cast<Qcow2Image&>(*dev));
        ASSERT_TRUE(bitmaps);
        EXPECT_TRUE(bitmaps->bitmaps.at(0).in_use());
        auto [status, info] = run("qemu-img info " + image);
        EXPECT_NE(info.find("in-use"), std::string::npos) << "qemu-img agrees:\n" << info;
    }
    // Our writer leaves a bitmap found in use as it is (and the bitmaps bit set)...
    {
        auto dev = open_qcow2(image, Access::ReadWrite);
        ASSERT_TRUE(dev);
        ASSERT_TRUE(dev->write_at(0, std::vector<uint8_t>(4096, 1)));
    }
    {
        auto dev = open_qcow2(image);
        ASSERT_TRUE(dev);
        auto bitmaps = read_bitmaps(dynamic_cast<Qcow2Image&>(*dev));
        ASSERT_TRUE(bitmaps);
        EXPECT_TRUE(bitmaps->consistent);
        EXPECT_TRUE(bitmaps->bitmaps.at(0).in_use()) << "a bitmap in use at open stays so";
    }
    // ... and a resize, which keeps no bitmaps, clears the autoclear bit.
    {
        auto dev = open_qcow2(image, Access::ReadWrite);
        ASSERT_TRUE(dev);
        ASSERT_TRUE(dev->resize(8 * k_mib));
    }
    auto dev = open_qcow2(image);
    ASSERT_TRUE(dev);
    auto bitmaps = read_bitmaps(dynamic_cast<Qcow2Image&>(*dev));
    ASSERT_TRUE(bitmaps);
    EXPECT_FALSE(bitmaps->consistent);
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

TEST(Qcow2Bitmaps, CheckCountsTheBitmapsClustersAsQemuImgCheckDoes) {
    if (!have_qemu_bitmap_tools())
        GTEST_SKIP() << "qemu-img (with bitmap) and qemu-io are not installed; they make the images";
    TestDir dir;
    const std::string image = dir.path("d.qcow2");
    SHELL("qemu-img create -q -f qcow2 " + image + " 40M");
    SHELL("qemu-img bitmap --add " + image + " corral-gen-a");
    SHELL("qemu-img bitmap --add -g 512 " + image + " fine");  // 10 KiB of bits: a data cluster when dirty
    SHELL("qemu-io -f qcow2 -c 'write -q -P 0x11 0 1M' -c 'write -q -P 0x22 30M 64k' " + image);
    {
        auto dev = open_qcow2(image);
        ASSERT_TRUE(dev);
        auto r = dynamic_cast<Qcow2Image&>(*dev).check(Repair::No);
        ASSERT_TRUE(r) << r.error().describe();
        EXPECT_EQ(r->corruptions, 0u);
        EXPECT_EQ(r->leaks, 0u) << "the directory, tables and bitmap data clusters are referenced";
        EXPECT_EQ(r->check_errors, 0u);
        EXPECT_EQ(qemu_img_check(image), std::make_pair(uint64_t{0}, uint64_t{0}));
    }
    // A resize leaves them stale (autoclear bit clear): QEMU no longer reads them, and both
    // checks count their clusters as the same leaks.
    {
        auto dev = open_qcow2(image, Access::ReadWrite);
        ASSERT_TRUE(dev);
        ASSERT_TRUE(dev->resize(80 * k_mib));
    }
    auto dev = open_qcow2(image);
    ASSERT_TRUE(dev);
    auto r = dynamic_cast<Qcow2Image&>(*dev).check(Repair::No);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->corruptions, 0u);
    EXPECT_GT(r->leaks, 0u);
    EXPECT_EQ(qemu_img_check(image), std::make_pair(uint64_t{0}, r->leaks));
}

TEST(Qcow2Bitmaps, MalformedDirectoriesAreRefusedNamingTheEntry) {
    std::vector<uint8_t> dir(24, 0);
    auto no_name = parse_bitmap_directory(dir, 1);
    ASSERT_FALSE(no_name);
    EXPECT_EQ(no_name.error().message(), "bitmap directory entry 0: name_size 0 (allowed 1..1023)");

    store_be16(dir.data() + 18, 5);  // a 5-byte name that the 24 bytes do not hold
    auto truncated = parse_bitmap_directory(dir, 1);
    ASSERT_FALSE(truncated);
    EXPECT_EQ(truncated.error().message(), "bitmap directory entry 0 (32 bytes) runs past the directory");

    auto missing = parse_bitmap_directory(dir, 2);
    ASSERT_FALSE(missing);

    dir.resize(32);
    std::memcpy(dir.data() + 24, "gen-1", 5);
    auto ok = parse_bitmap_directory(dir, 1);
    ASSERT_TRUE(ok) << ok.error().describe();
    EXPECT_EQ(ok->at(0).name, "gen-1");
}

}  // namespace
}  // namespace corral::storage::qcow2
