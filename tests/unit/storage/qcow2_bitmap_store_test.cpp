// Corral's qcow2 writer keeps QEMU's persistent dirty bitmaps (qcow2_bitmap_store.cpp): what
// corral-vmm writes into a disk is in its backup generation bitmap, as if QEMU had run it, and a
// backup of the running VM changes the generation at its instant (rotate_bitmaps).
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

/// Every bitmap of `image` as "NAME FLAGS..." in directory order, joined by "; ", as `qemu-img info` lists them.
std::string qemu_bitmaps(const std::string& image) {
    auto [status, out] = run("qemu-img info -U --output=json " + image +
                             " | python3 -c 'import json,sys; j=json.load(sys.stdin); "
                             "print(\"; \".join(\" \".join([b[\"name\"]] + b[\"flags\"]) for b in "
                             "j[\"format-specific\"][\"data\"].get(\"bitmaps\", [])))'");
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

/// The set bits of `map`.
std::vector<uint64_t> set_bits(const DirtyMap& map) {
    std::vector<uint64_t> out;
    for (uint64_t i = 0; i * map.granularity < map.disk_size; ++i)
        if (map.bit(i))
            out.push_back(i);
    return out;
}

Qcow2Image& as_qcow2(std::unique_ptr<BlockDevice>& dev) {
    return dynamic_cast<Qcow2Image&>(*dev);
}

TEST(Qcow2BitmapStore, ARotationHandsTheOldGenerationsBitsAndStartsTheNextOne) {
    REQUIRE_QEMU_TOOLS();
    TestDir dir;
    const std::string image = dir.path("d.qcow2");
    SHELL("qemu-img create -q -f qcow2 " + image + " 40M");
    // gen-0: an old generation QEMU disabled; user: someone else's bitmap, which stays.
    SHELL("qemu-img bitmap --add " + image + " gen-0");
    SHELL("qemu-img bitmap --disable " + image + " gen-0");
    SHELL("qemu-img bitmap --add " + image + " user");
    SHELL("qemu-img bitmap --add -g 128k " + image + " gen-1");
    SHELL("qemu-io -f qcow2 -c 'write -q -P 0x11 5M 64k' " + image);  // QEMU's write, in gen-1 already
    {
        auto dev = open_qcow2(image, Access::ReadWrite);
        ASSERT_TRUE(dev);
        ASSERT_TRUE(dev->write_at(10 * k_mib, std::vector<uint8_t>(4096, 0x5a)));
        auto rotated = as_qcow2(dev).rotate_bitmaps("gen-2", "gen-");
        ASSERT_TRUE(rotated) << rotated.error().describe();
        ASSERT_EQ(rotated->handed.size(), 1u);
        EXPECT_EQ(rotated->handed[0].name, "gen-1");
        EXPECT_EQ(rotated->handed[0].map.granularity, 128 * k_kib);
        EXPECT_EQ(set_bits(rotated->handed[0].map), (std::vector<uint64_t>{40, 80}))
            << "QEMU's write and ours, up to the instant";
        EXPECT_EQ(rotated->notes, std::vector<std::string>{"bitmap 'gen-0' is disabled (it does not record writes)"});
        ASSERT_TRUE(dev->write_at(20 * k_mib, std::vector<uint8_t>(4096, 0x5b)));
        // Until the close the file lists what it did at open, the kept ones in use.
        EXPECT_EQ(qemu_bitmaps(image), "gen-0; user in-use auto; gen-1 in-use auto");
    }
    EXPECT_EQ(qemu_bitmaps(image), "user auto; gen-2 auto");
    EXPECT_EQ(qemu_img_check(image), std::make_pair(uint64_t{0}, uint64_t{0})) << "removed bitmaps' clusters freed";
    EXPECT_EQ(bits_of(image, "gen-2"), (std::vector<uint64_t>{160})) << "128 KiB granules, as gen-1's";
    EXPECT_EQ(bits_of(image, "user"), (std::vector<uint64_t>{80, 160, 320}));
    // QEMU takes the new generation over and adds to it.
    SHELL("qemu-io -f qcow2 -c 'write -q 30M 4k' " + image);
    EXPECT_EQ(bits_of(image, "gen-2"), (std::vector<uint64_t>{160, 240}));
    EXPECT_EQ(qemu_img_check(image), std::make_pair(uint64_t{0}, uint64_t{0}));
}

TEST(Qcow2BitmapStore, TwoRotationsInOneSessionHandWhatEachGenerationSaw) {
    REQUIRE_QEMU_TOOLS();
    TestDir dir;
    const std::string image = dir.path("d.qcow2");
    SHELL("qemu-img create -q -f qcow2 " + image + " 8M");
    SHELL("qemu-img bitmap --add " + image + " gen-1");
    {
        auto dev = open_qcow2(image, Access::ReadWrite);
        ASSERT_TRUE(dev);
        ASSERT_TRUE(dev->write_at(0, std::vector<uint8_t>(512, 1)));
        auto first = as_qcow2(dev).rotate_bitmaps("gen-2", "gen-");
        ASSERT_TRUE(first) << first.error().describe();
        ASSERT_EQ(first->handed.size(), 1u);
        EXPECT_EQ(set_bits(first->handed[0].map), std::vector<uint64_t>{0});
        ASSERT_TRUE(dev->write_at(k_mib, std::vector<uint8_t>(512, 2)));
        auto second = as_qcow2(dev).rotate_bitmaps("gen-3", "gen-");
        ASSERT_TRUE(second) << second.error().describe();
        ASSERT_EQ(second->handed.size(), 1u);
        EXPECT_EQ(second->handed[0].name, "gen-2");
        EXPECT_EQ(second->handed[0].map.granularity, 64 * k_kib);
        EXPECT_EQ(set_bits(second->handed[0].map), std::vector<uint64_t>{16}) << "only what came after the first";
        ASSERT_TRUE(dev->write_at(2 * k_mib, std::vector<uint8_t>(512, 3)));
    }
    EXPECT_EQ(qemu_bitmaps(image), "gen-3 auto");
    EXPECT_EQ(bits_of(image, "gen-3"), std::vector<uint64_t>{32});
    EXPECT_EQ(qemu_img_check(image), std::make_pair(uint64_t{0}, uint64_t{0}));
}

TEST(Qcow2BitmapStore, TheFirstGenerationAddsTheBitmapsExtensionBesideTheBackingFile) {
    REQUIRE_QEMU_TOOLS();
    TestDir dir;
    // The backing file's name lives in the header cluster, right behind the extensions: it
    // must move behind the new one. A Corral-made image (with its feature table) and QEMU's.
    const std::string base = dir.path("base.raw"), qemus = dir.path("qemus.qcow2"), ours = dir.path("ours.qcow2");
    SHELL("qemu-img create -q -f raw " + base + " 8M");
    SHELL("qemu-io -f raw -c 'write -q -P 0x33 0 8M' " + base);
    SHELL("qemu-img create -q -f qcow2 -b " + base + " -F raw " + qemus);
    ASSERT_TRUE(Qcow2Image::create(ours, {.size = 8 * k_mib, .backing_file = base, .backing_format = "raw"}));
    for (const auto& image : {qemus, ours}) {
        SCOPED_TRACE(image);
        {
            auto dev = open_qcow2(image, Access::ReadWrite);
            ASSERT_TRUE(dev);
            ASSERT_TRUE(dev->write_at(k_mib, std::vector<uint8_t>(4096, 0x44)));
            auto rotated = as_qcow2(dev).rotate_bitmaps("gen-1", "gen-");
            ASSERT_TRUE(rotated) << rotated.error().describe();
            EXPECT_TRUE(rotated->handed.empty());
            EXPECT_TRUE(rotated->notes.empty());
            ASSERT_TRUE(dev->write_at(3 * k_mib, std::vector<uint8_t>(4096, 0x55)));
            EXPECT_EQ(qemu_bitmaps(image), "") << "nothing on disk before the close";
        }
        EXPECT_EQ(qemu_bitmaps(image), "gen-1 auto");
        EXPECT_EQ(bits_of(image, "gen-1"), std::vector<uint64_t>{48});
        EXPECT_EQ(qemu_img_check(image), std::make_pair(uint64_t{0}, uint64_t{0}));
        SHELL("qemu-io -f qcow2 -c 'read -q -P 0x33 0 1M' -c 'read -q -P 0x44 1M 4k' -c 'read -q -P 0x55 3M 4k' " +
              image);
        auto [status, info] = run("qemu-img info -U " + image);
        EXPECT_NE(info.find("backing file: " + base), std::string::npos) << info;
        // QEMU opens it for writing and keeps the bitmap.
        SHELL("qemu-io -f qcow2 -c 'write -q 5M 4k' " + image);
        EXPECT_EQ(bits_of(image, "gen-1"), (std::vector<uint64_t>{48, 80}));
    }
}

TEST(Qcow2BitmapStore, AddedBitsReadBackIdentically) {
    REQUIRE_QEMU_TOOLS();
    TestDir dir;
    // 4 KiB clusters and 512-byte granules: 81920 bits over three clusters of bits.
    const std::string image = dir.path("copy.qcow2");
    SHELL("qemu-img create -q -f qcow2 -o cluster_size=4k " + image + " 40M");
    DirtyMap bits{.granularity = 512, .disk_size = 40 * k_mib, .bits = std::vector<uint8_t>(10240, 0)};
    for (size_t i = 0; i < bits.bits.size(); ++i)
        bits.bits[i] = i < 4096 ? uint8_t(i * 37 + 11) : (i >= 8192 ? 0xff : 0);  // the middle cluster zero
    DirtyMap other{.granularity = 1 * k_mib, .disk_size = 40 * k_mib, .bits = {0x01, 0x00, 0x00, 0x00, 0x80}};
    {
        auto dev = open_qcow2(image, Access::ReadWrite);
        ASSERT_TRUE(dev);
        ASSERT_TRUE(as_qcow2(dev).add_bitmap("fine", bits));
        ASSERT_TRUE(as_qcow2(dev).add_bitmap("coarse", other));
    }
    EXPECT_EQ(qemu_bitmaps(image), "fine auto; coarse auto");
    EXPECT_EQ(qemu_img_check(image), std::make_pair(uint64_t{0}, uint64_t{0}));
    auto dev = open_qcow2(image);
    ASSERT_TRUE(dev);
    auto found = read_bitmaps(as_qcow2(dev));
    ASSERT_TRUE(found);
    EXPECT_TRUE(found->consistent);
    ASSERT_EQ(found->bitmaps.size(), 2u);
    auto fine = read_bitmap(as_qcow2(dev), found->bitmaps[0]);
    ASSERT_TRUE(fine) << fine.error().describe();
    EXPECT_EQ(fine->granularity, 512u);
    EXPECT_EQ(fine->bits, bits.bits);
    auto coarse = read_bitmap(as_qcow2(dev), found->bitmaps[1]);
    ASSERT_TRUE(coarse) << coarse.error().describe();
    EXPECT_EQ(set_bits(*coarse), (std::vector<uint64_t>{0, 39}));
}

TEST(Qcow2BitmapStore, AWriterThatDiesAfterARotationLeavesNoBitmapThatClaimsToBeComplete) {
    REQUIRE_QEMU_TOOLS();
    TestDir dir;
    const std::string had = dir.path("had.qcow2"), none = dir.path("none.qcow2");
    SHELL("qemu-img create -q -f qcow2 " + had + " 8M");
    SHELL("qemu-img bitmap --add " + had + " gen-1");
    SHELL("qemu-img create -q -f qcow2 " + none + " 8M");
    for (const auto& image : {had, none}) {
        const pid_t child = ::fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
            auto dev = open_image(image, ImageOpenOptions{.access = Access::ReadWrite});
            bool ok = dev && dynamic_cast<Qcow2Image&>(**dev).rotate_bitmaps("gen-2", "gen-") &&
                      (*dev)->write_at(k_mib, std::vector<uint8_t>(4096, 7)) && (*dev)->flush();
            ::_exit(ok ? 0 : 1);
        }
        int status = 0;
        ASSERT_EQ(::waitpid(child, &status, 0), child);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        EXPECT_EQ(qemu_img_check(image).first, 0u);
    }
    EXPECT_EQ(qemu_bitmaps(had), "gen-1 in-use auto") << "the old generation stays distrusted, no new one";
    EXPECT_EQ(qemu_bitmaps(none), "");
}

TEST(Qcow2BitmapStore, ARotationRefusesWhatQemuWouldRefuseAndChangesNothing) {
    REQUIRE_QEMU_TOOLS();
    TestDir dir;
    const std::string image = dir.path("d.qcow2");
    SHELL("qemu-img create -q -f qcow2 " + image + " 8M");
    SHELL("qemu-img bitmap --add " + image + " gen-1");
    SHELL("qemu-img bitmap --add " + image + " user");
    {
        auto dev = open_qcow2(image, Access::ReadWrite);
        ASSERT_TRUE(dev);
        auto& q = as_qcow2(dev);
        auto duplicate = q.rotate_bitmaps("user", "gen-");
        ASSERT_FALSE(duplicate);
        EXPECT_EQ(duplicate.error().message(), "'" + image + "' already has a bitmap named 'user'");
        auto empty = q.rotate_bitmaps("", "gen-");
        ASSERT_FALSE(empty);
        EXPECT_EQ(empty.error().message(), "bitmap name of 0 bytes (allowed 1..1023)");
        EXPECT_FALSE(q.rotate_bitmaps(std::string(1024, 'g'), "gen-"));
        DirtyMap wrong{.granularity = 64 * k_kib, .disk_size = 16 * k_mib, .bits = std::vector<uint8_t>(32, 0)};
        auto mismatch = q.add_bitmap("copy", wrong);
        ASSERT_FALSE(mismatch);
        EXPECT_EQ(mismatch.error().message(), "bitmap 'copy' covers 16777216 bytes in 32 bytes of bits; '" + image +
                                                  "' has 8388608 bytes (so 16 of bits)");
        DirtyMap odd{.granularity = 3000, .disk_size = 8 * k_mib, .bits = {}};
        EXPECT_FALSE(q.add_bitmap("copy", odd));
        ASSERT_TRUE(dev->write_at(0, std::vector<uint8_t>(512, 1)));
    }
    EXPECT_EQ(qemu_bitmaps(image), "gen-1 auto; user auto") << "the refused rotations changed nothing";
    EXPECT_EQ(bits_of(image, "gen-1"), std::vector<uint64_t>{0});

    // A version 2 image keeps no bitmaps; a header cluster with no room takes none.
    const std::string v2 = dir.path("v2.qcow2"), tight = dir.path("tight.qcow2");
    SHELL("qemu-img create -q -f qcow2 -o compat=0.10 " + v2 + " 8M");
    ASSERT_TRUE(Qcow2Image::create(
        tight, {.size = 8 * k_mib, .cluster_bits = 9, .version = 3, .backing_file = {}, .backing_format = {}}));
    {
        auto dev = open_qcow2(v2, Access::ReadWrite);
        ASSERT_TRUE(dev);
        auto refused = as_qcow2(dev).rotate_bitmaps("gen-1", "gen-");
        ASSERT_FALSE(refused);
        EXPECT_EQ(refused.error().message(),
                  "'" + v2 +
                      "' is a version 2 qcow2 image, which keeps no bitmaps (version 3 does: qemu-img amend -o "
                      "compat=1.1)");
    }
    {
        auto dev = open_qcow2(tight, Access::ReadWrite);
        ASSERT_TRUE(dev);
        auto refused = as_qcow2(dev).rotate_bitmaps("gen-1", "gen-");
        ASSERT_FALSE(refused);
        EXPECT_NE(refused.error().describe().find("no room for the bitmaps header extension"), std::string::npos)
            << refused.error().describe();
    }
    EXPECT_EQ(qemu_img_check(tight), std::make_pair(uint64_t{0}, uint64_t{0}));
    EXPECT_EQ(qemu_bitmaps(tight), "");
}

TEST(Qcow2BitmapStore, StaleBitmapsAreDroppedForTheNewGenerationAsQemuDropsThem) {
    REQUIRE_QEMU_TOOLS();
    TestDir dir;
    const std::string image = dir.path("d.qcow2");
    SHELL("qemu-img create -q -f qcow2 " + image + " 8M");
    SHELL("qemu-img snapshot -c before " + image);
    SHELL("qemu-img bitmap --add " + image + " gen-1");
    {
        auto dev = open_qcow2(image, Access::ReadWrite);
        ASSERT_TRUE(dev);
        ASSERT_TRUE(as_qcow2(dev).revert_snapshot("before"));  // the bitmaps go stale
    }
    {
        auto dev = open_qcow2(image, Access::ReadWrite);
        ASSERT_TRUE(dev);
        auto rotated = as_qcow2(dev).rotate_bitmaps("gen-2", "gen-");
        ASSERT_TRUE(rotated) << rotated.error().describe();
        EXPECT_TRUE(rotated->handed.empty());
        EXPECT_EQ(rotated->notes, std::vector<std::string>{"the disk's bitmaps were stale (a program that keeps no "
                                                           "bitmaps wrote it) and were dropped"});
        ASSERT_TRUE(dev->write_at(0, std::vector<uint8_t>(512, 1)));
    }
    EXPECT_EQ(qemu_bitmaps(image), "gen-2 auto");
    EXPECT_EQ(bits_of(image, "gen-2"), std::vector<uint64_t>{0});
    EXPECT_EQ(qemu_img_check(image).first, 0u) << "the stale ones' clusters leak, as with QEMU";
}

TEST(Qcow2BitmapStore, AnImageThatHandedItsBitmapsOverTakesNoNewGeneration) {
    REQUIRE_QEMU_TOOLS();
    TestDir dir;
    const std::string image = dir.path("d.qcow2");
    SHELL("qemu-img create -q -f qcow2 " + image + " 8M");
    SHELL("qemu-img bitmap --add " + image + " gen-1");
    {
        auto dev = open_qcow2(image, Access::ReadWrite);
        ASSERT_TRUE(dev);
        as_qcow2(dev).abandon_bitmaps();
        auto refused = as_qcow2(dev).rotate_bitmaps("gen-2", "gen-");
        ASSERT_FALSE(refused);
        EXPECT_EQ(refused.error().errno_value(), EBUSY);
    }
    EXPECT_EQ(qemu_bitmaps(image), "gen-1 in-use auto");
}

}  // namespace
}  // namespace corral::storage::qcow2
