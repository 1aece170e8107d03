// copy_handed_bitmaps: the bits a running corral-vmm hands back at a backup's instant go into the
// copy images corrald made, where the backup reads them; its answer is hostile input (wrong
// types, names not asked for, bits of the wrong size), and every disk whose copy got nothing
// says why.
#include "engine/handed_bitmaps.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "../storage/test_dir.h"
#include "base/unique_fd.h"
#include "storage/image.h"
#include "storage/qcow2/qcow2_bitmaps.h"
#include "storage/qcow2/qcow2_image.h"

namespace corral::engine {
namespace {

using storage::testing::TestDir;
constexpr uint64_t k_mib = 1u << 20;

/// An empty qcow2 image of 16 MiB (256 granules of 64 KiB: 32 bytes of bits), open read-write.
UniqueFd make_copy(const std::string& path) {
    storage::qcow2::CreateOptions options;
    options.size = 16 * k_mib;
    EXPECT_TRUE(storage::qcow2::Qcow2Image::create(path, options));
    return UniqueFd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
}

/// The bitmaps of the image at `path` as name -> its set bits.
std::map<std::string, std::vector<uint64_t>> bitmaps_of(const std::string& path) {
    std::map<std::string, std::vector<uint64_t>> out;
    auto dev = storage::open_image(path, {.access = storage::Access::ReadOnly});
    EXPECT_TRUE(dev) << dev.error().describe();
    if (!dev)
        return out;
    auto& image = dynamic_cast<storage::qcow2::Qcow2Image&>(**dev);
    auto found = storage::qcow2::read_bitmaps(image);
    EXPECT_TRUE(found && found->consistent);
    for (const auto& b : found ? found->bitmaps : std::vector<storage::qcow2::BitmapEntry>{}) {
        auto map = storage::qcow2::read_bitmap(image, b);
        EXPECT_TRUE(map) << map.error().describe();
        auto& bits = out[b.name];
        for (uint64_t i = 0; map && i * map->granularity < map->disk_size; ++i)
            if (map->bit(i))
                bits.push_back(i);
    }
    return out;
}

nlohmann::json handed(const std::string& name, const std::string& bits, uint64_t disk_size = 16 * k_mib) {
    return {{"name", name}, {"granularity", uint64_t{65536}}, {"disk_size", disk_size}, {"bits", bits}};
}

// 32 bytes of bits: 0x01 then 30 zero bytes then 0x80 (granules 0 and 255).
const std::string k_ends = "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIA=";

TEST(HandedBitmaps, EachHandedBitmapIsWrittenIntoItsDisksCopy) {
    TestDir dir;
    UniqueFd copy0 = make_copy(dir.path("d0.qcow2")), copy2 = make_copy(dir.path("d2.qcow2"));
    DiskBitmap bitmap{
        .name = "corral-gen-b", .replaces = "corral-gen-", .copy_to = {{0, copy0.get()}, {2, copy2.get()}}};
    nlohmann::json answer = {
        {"ok", true},
        {"bitmaps",
         {{{"added", "corral-gen-b"}, {"handed", {handed("corral-gen-a", k_ends)}}, {"notes", nlohmann::json::array()}},
          {{"error", "a read-only disk gets no new generation bitmap"}},
          {{"added", "corral-gen-b"},
           {"handed", nlohmann::json::array()},
           {"notes", {"bitmap 'corral-gen-z' was in use at a crash (its last writer did not close the disk)"}}}}}};
    const BitmapNotes notes = copy_handed_bitmaps(answer, {0, 2}, bitmap);
    EXPECT_FALSE(notes.contains(0)) << notes.at(0);
    EXPECT_EQ(notes.at(2), "bitmap 'corral-gen-z' was in use at a crash (its last writer did not close the disk)");
    EXPECT_EQ(bitmaps_of(dir.path("d0.qcow2")),
              (std::map<std::string, std::vector<uint64_t>>{{"corral-gen-a", {0, 255}}}));
    EXPECT_TRUE(bitmaps_of(dir.path("d2.qcow2")).empty());
}

TEST(HandedBitmaps, AnOlderMonitorOrADiskThatKeptItsBitmapsSaysWhy) {
    DiskBitmap bitmap{.name = "corral-gen-b", .replaces = "corral-gen-", .copy_to = {}};
    const BitmapNotes old = copy_handed_bitmaps({{"ok", true}, {"tag", "t"}, {"disks", 1}}, {0, 1}, bitmap);
    ASSERT_EQ(old.size(), 2u);
    EXPECT_EQ(old.at(1),
              "this VM's corral-vmm is older than corrald and hands no bitmaps at a backup's instant (a VM "
              "started again runs the new one)");
    const BitmapNotes kept =
        copy_handed_bitmaps({{"bitmaps", {{{"error", "'/d.qcow2' is a version 2 qcow2 image"}}}}}, {0, 1}, bitmap);
    EXPECT_EQ(kept.at(0),
              "corral-vmm could not start the disk's next generation: '/d.qcow2' is a version 2 qcow2 image");
    EXPECT_EQ(kept.at(1), "corral-vmm's answer has no bitmaps for disk 1");
    const BitmapNotes none = copy_handed_bitmaps({{"bitmaps", {{{"added", "corral-gen-b"}}}}}, {0}, bitmap);
    EXPECT_TRUE(none.empty()) << "no generation yet: the backup's own reason says so";
}

TEST(HandedBitmaps, AHostileAnswerCopiesNothing) {
    TestDir dir;
    UniqueFd copy = make_copy(dir.path("d.qcow2"));
    DiskBitmap bitmap{.name = "corral-gen-b", .replaces = "corral-gen-", .copy_to = {{0, copy.get()}}};
    const std::pair<nlohmann::json, std::string> cases[] = {
        {handed("user", k_ends), "corral-vmm handed bitmap 'user', which is not one named corral-gen-*"},
        {handed("corral-gen-a", "not base64!"), "bitmap 'corral-gen-a' is not base64 (byte 3)"},
        {handed("corral-gen-a", "AAAA"), "bitmap 'corral-gen-a' covers 16777216 bytes in 3 bytes of bits"},
        {handed("corral-gen-a", k_ends, 32 * k_mib), "bitmap 'corral-gen-a' covers 33554432 bytes in 32 bytes"},
        {{{"name", "corral-gen-a"}, {"granularity", "64k"}, {"disk_size", 1}, {"bits", ""}},
         "a handed bitmap needs \"name\", \"granularity\", \"disk_size\" and \"bits\""},
        {nlohmann::json::array(), "a handed bitmap is not an object"},
    };
    for (const auto& [entry, why] : cases) {
        nlohmann::json answer = {{"bitmaps", {{{"added", "corral-gen-b"}, {"handed", {entry}}}}}};
        const BitmapNotes notes = copy_handed_bitmaps(answer, {0}, bitmap);
        ASSERT_TRUE(notes.contains(0)) << entry;
        EXPECT_NE(notes.at(0).find(why), std::string::npos) << notes.at(0);
    }
    EXPECT_TRUE(bitmaps_of(dir.path("d.qcow2")).empty()) << "nothing reached the copy";
}

}  // namespace
}  // namespace corral::engine
