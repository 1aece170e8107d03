#include "storage/qcow2/qcow2_image.h"

#include <gtest/gtest.h>

// Designated initializers that leave the other options at their defaults are the point here.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <random>

#include "storage/endian.h"
#include "storage/image.h"
#include "storage/raw_device.h"
#include "test_dir.h"

namespace corral::storage {
namespace {

using testing::TestDir;

std::unique_ptr<BlockDevice> open_rw(const std::string& path) {
    auto dev = open_image(path, ImageOpenOptions{.access = Access::ReadWrite});
    EXPECT_TRUE(dev) << dev.error().describe();
    return dev ? std::move(*dev) : nullptr;
}

qcow2::Qcow2Image& as_qcow2(BlockDevice& dev) { return dynamic_cast<qcow2::Qcow2Image&>(dev); }

void expect_clean(BlockDevice& dev) {
    auto r = as_qcow2(dev).check(qcow2::Repair::No);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->corruptions, 0u);
    EXPECT_EQ(r->leaks, 0u);
    for (auto& m : r->messages) ADD_FAILURE() << m;
}

/// Applies a seeded random workload to the device and to an in-memory model.
void random_workload(BlockDevice& dev, std::vector<uint8_t>& model, uint32_t seed, int ops) {
    std::mt19937_64 rng(seed);
    for (int i = 0; i < ops; ++i) {
        uint64_t len = 1 + rng() % 200000;
        uint64_t off = rng() % (model.size() - len);
        int kind = int(rng() % 10);
        if (kind < 7) {
            std::vector<uint8_t> data(len, uint8_t(rng()));
            for (size_t k = 0; k < len; k += 4096) data[k] = uint8_t(rng());
            ASSERT_TRUE(dev.write_at(off, data));
            std::copy(data.begin(), data.end(), model.begin() + long(off));
        } else if (kind < 9) {
            ASSERT_TRUE(dev.write_zeroes(off, len));
            std::fill(model.begin() + long(off), model.begin() + long(off + len), 0);
        } else {
            ASSERT_TRUE(dev.flush());
        }
    }
}

void expect_content(BlockDevice& dev, const std::vector<uint8_t>& model) {
    std::vector<uint8_t> got(model.size());
    ASSERT_TRUE(dev.read_at(0, got));
    ASSERT_TRUE(got == model) << "image content differs from the model";
}

TEST(Qcow2Image, CreateWriteReadRoundTrip) {
    TestDir dir;
    auto path = dir.path("a.qcow2");
    ASSERT_TRUE(create_image(path, ImageCreateOptions{.size = 16u << 20}));
    std::vector<uint8_t> model(16u << 20, 0);
    {
        auto dev = open_rw(path);
        EXPECT_EQ(dev->size(), 16u << 20);
        random_workload(*dev, model, 1, 300);
        expect_content(*dev, model);
    }
    auto dev = open_rw(path);
    expect_content(*dev, model);
    expect_clean(*dev);
}

TEST(Qcow2Image, SmallClustersGrowTheRefcountTableAndL2Tables) {
    TestDir dir;
    auto path = dir.path("small.qcow2");
    // 512-byte clusters: a refcount block covers 256 clusters, the table 64 blocks, so a few MiB
    // of data forces new refcount blocks and a larger refcount table.
    ASSERT_TRUE(create_image(path, ImageCreateOptions{.size = 8u << 20, .cluster_size = 512}));
    std::vector<uint8_t> model(8u << 20, 0);
    auto dev = open_rw(path);
    random_workload(*dev, model, 2, 120);
    std::vector<uint8_t> all(model.size(), 0x5a);
    ASSERT_TRUE(dev->write_at(0, all));
    std::fill(model.begin(), model.end(), 0x5a);
    ASSERT_TRUE(dev->flush());
    EXPECT_GT(as_qcow2(*dev).header().refcount_table_clusters, 1u);
    expect_content(*dev, model);
    expect_clean(*dev);
}

TEST(Qcow2Image, ResizeGrowsTheL1Table) {
    TestDir dir;
    auto path = dir.path("r.qcow2");
    ASSERT_TRUE(create_image(path, ImageCreateOptions{.size = 1u << 20, .cluster_size = 4096}));
    auto dev = open_rw(path);
    std::vector<uint8_t> data(4096, 7);
    ASSERT_TRUE(dev->write_at(4096, data));
    ASSERT_TRUE(dev->resize(64u << 20));
    EXPECT_EQ(dev->size(), 64u << 20);
    EXPECT_GE(as_qcow2(*dev).header().l1_size, 32u);
    ASSERT_TRUE(dev->write_at((64u << 20) - 4096, data));
    std::vector<uint8_t> got(4096);
    ASSERT_TRUE(dev->read_at(4096, got));
    EXPECT_EQ(got, data);
    auto shrink = dev->resize(1u << 20);
    ASSERT_FALSE(shrink);
    EXPECT_NE(shrink.error().message().find("shrinking"), std::string::npos);
    ASSERT_TRUE(dev->flush());
    expect_clean(*dev);
}

TEST(Qcow2Image, DiscardFreesClustersAndReadsZeros) {
    TestDir dir;
    auto path = dir.path("d.qcow2");
    ASSERT_TRUE(create_image(path, ImageCreateOptions{.size = 4u << 20}));
    auto dev = open_rw(path);
    std::vector<uint8_t> data(1u << 20, 0xee);
    ASSERT_TRUE(dev->write_at(0, data));
    ASSERT_TRUE(dev->discard(0, 1u << 20));
    ASSERT_TRUE(dev->flush());
    std::vector<uint8_t> got(1u << 20, 1);
    ASSERT_TRUE(dev->read_at(0, got));
    EXPECT_EQ(got, std::vector<uint8_t>(1u << 20, 0));
    Extent e = *dev->block_status(0, 1u << 20);
    EXPECT_EQ(e.kind, ExtentKind::Unallocated);
    expect_clean(*dev);
}

TEST(Qcow2Image, BackingChainReadsThroughAndCopiesOnWrite) {
    TestDir dir;
    auto base = dir.path("base.raw");
    ASSERT_TRUE(create_image(base, ImageCreateOptions{.format = ImageFormat::Raw, .size = 1u << 20}));
    {
        auto raw = open_rw(base);
        std::vector<uint8_t> data(1u << 20, 0x11);
        ASSERT_TRUE(raw->write_at(0, data));
    }
    ASSERT_TRUE(create_image(dir.path("mid.qcow2"), ImageCreateOptions{.backing_file = "base.raw"}));
    ASSERT_TRUE(create_image(dir.path("top.qcow2"), ImageCreateOptions{.backing_file = "mid.qcow2"}));
    auto top = open_rw(dir.path("top.qcow2"));
    ASSERT_TRUE(top);
    EXPECT_EQ(top->size(), 1u << 20);
    std::vector<uint8_t> small(100, 0x22);
    ASSERT_TRUE(top->write_at(1000, small));
    ASSERT_TRUE(top->write_zeroes(65536, 65536));
    std::vector<uint8_t> got(1u << 20);
    ASSERT_TRUE(top->read_at(0, got));
    for (size_t i = 0; i < got.size(); ++i) {
        uint8_t want = (i >= 1000 && i < 1100) ? 0x22 : (i >= 65536 && i < 131072) ? 0 : 0x11;
        ASSERT_EQ(got[i], want) << "at " << i;
    }
    Extent e = *top->block_status(1u << 19, 4096);
    EXPECT_EQ(e.depth, 2);
    ASSERT_TRUE(top->flush());
    expect_clean(*top);
}

TEST(Qcow2Image, BackingLoopIsRefused) {
    TestDir dir;
    ASSERT_TRUE(create_image(dir.path("a.qcow2"), ImageCreateOptions{.size = 1u << 20}));
    ASSERT_TRUE(create_image(dir.path("b.qcow2"), ImageCreateOptions{.backing_file = "a.qcow2"}));
    // Point a at b by rewriting a's header with a backing file name.
    {
        auto file = *File::open(dir.path("a.qcow2"), Access::ReadWrite);
        std::vector<uint8_t> first(65536);
        ASSERT_TRUE(file.read_exact(0, first));
        auto h = *qcow2::parse_header(first, *file.size());
        h.backing_file = "b.qcow2";
        h.backing_format = "qcow2";
        ASSERT_TRUE(file.write_all(0, *qcow2::serialize_header(h)));
    }
    auto dev = open_image(dir.path("b.qcow2"), ImageOpenOptions{});
    ASSERT_FALSE(dev);
    EXPECT_NE(dev.error().message().find("backing chain loop: '" + dir.path("b.qcow2") + "' is already in the chain"),
              std::string::npos) << dev.error().message();
}

TEST(Qcow2Image, MissingBackingFileIsNamed) {
    TestDir dir;
    ASSERT_TRUE(create_image(dir.path("base.qcow2"), ImageCreateOptions{.size = 1u << 20}));
    ASSERT_TRUE(create_image(dir.path("top.qcow2"), ImageCreateOptions{.backing_file = "base.qcow2"}));
    std::filesystem::remove(dir.path("base.qcow2"));
    auto dev = open_image(dir.path("top.qcow2"), ImageOpenOptions{});
    ASSERT_FALSE(dev);
    EXPECT_EQ(dev.error().describe(), "opening backing file of '" + dir.path("top.qcow2") + "': opening '" +
                                          dir.path("base.qcow2") + "': No such file or directory");
}

TEST(Qcow2Image, SnapshotsCreateListRevertDelete) {
    TestDir dir;
    auto path = dir.path("s.qcow2");
    ASSERT_TRUE(create_image(path, ImageCreateOptions{.size = 4u << 20}));
    std::vector<uint8_t> v1(4u << 20, 0);
    auto dev = open_rw(path);
    auto& q = as_qcow2(*dev);
    random_workload(*dev, v1, 3, 50);
    ASSERT_TRUE(q.create_snapshot("one"));
    auto dup = q.create_snapshot("one");
    ASSERT_FALSE(dup);
    EXPECT_EQ(dup.error().message(), "'" + path + "' already has a snapshot named 'one'");
    expect_clean(*dev);
    std::vector<uint8_t> v2 = v1;
    random_workload(*dev, v2, 4, 50);
    ASSERT_TRUE(q.create_snapshot("two"));
    ASSERT_EQ(q.snapshots().size(), 2u);
    EXPECT_EQ(q.snapshots()[1].id, "2");
    std::vector<uint8_t> v3 = v2;
    random_workload(*dev, v3, 5, 50);
    ASSERT_TRUE(dev->flush());
    expect_clean(*dev);
    ASSERT_TRUE(q.revert_snapshot("one"));
    expect_content(*dev, v1);
    expect_clean(*dev);
    ASSERT_TRUE(q.delete_snapshot("one"));
    expect_clean(*dev);
    ASSERT_TRUE(q.revert_snapshot("2"));
    expect_content(*dev, v2);
    ASSERT_TRUE(q.delete_snapshot("two"));
    EXPECT_TRUE(q.snapshots().empty());
    expect_clean(*dev);
    auto missing = q.revert_snapshot("nope");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().message(), "'" + path + "' has no snapshot named 'nope'");
}

TEST(Qcow2Image, CompressedClustersRoundTrip) {
    for (auto type : {qcow2::CompressionType::Zlib, qcow2::CompressionType::Zstd}) {
        TestDir dir;
        auto path = dir.path("c.qcow2");
        ASSERT_TRUE(create_image(path, ImageCreateOptions{.size = 1u << 20, .compression = type}));
        auto dev = open_rw(path);
        auto& q = as_qcow2(*dev);
        std::vector<uint8_t> model(1u << 20, 0);
        for (uint64_t c = 0; c < 8; ++c) {
            std::vector<uint8_t> cluster(65536);
            for (size_t i = 0; i < cluster.size(); ++i) cluster[i] = uint8_t((i / 100) * (c + 1));
            ASSERT_TRUE(q.write_compressed(c * 65536, cluster));
            std::copy(cluster.begin(), cluster.end(), model.begin() + long(c * 65536));
        }
        ASSERT_TRUE(dev->flush());
        expect_content(*dev, model);
        EXPECT_TRUE(dev->block_status(0, 65536)->compressed);
        // Overwriting part of a compressed cluster decompresses it into a normal cluster.
        std::vector<uint8_t> patch(300, 0x99);
        ASSERT_TRUE(dev->write_at(65536 + 1000, patch));
        std::copy(patch.begin(), patch.end(), model.begin() + 65536 + 1000);
        ASSERT_TRUE(dev->flush());
        expect_content(*dev, model);
        expect_clean(*dev);
    }
}

TEST(Qcow2Image, DirtyBitTriggersRefcountRebuild) {
    TestDir dir;
    auto path = dir.path("dirty.qcow2");
    ASSERT_TRUE(create_image(path, ImageCreateOptions{.size = 4u << 20}));
    std::vector<uint8_t> model(4u << 20, 0);
    {
        auto dev = open_rw(path);
        random_workload(*dev, model, 6, 40);
    }
    {
        // Simulate lazy refcounts: zero the first refcount block and set the dirty bit.
        auto file = *File::open(path, Access::ReadWrite);
        std::vector<uint8_t> zeros(65536, 0);
        uint8_t block_ptr[8];
        ASSERT_TRUE(file.read_exact(65536, block_ptr));
        ASSERT_TRUE(file.write_all(load_be64(block_ptr), zeros));
        uint8_t bits[8];
        store_be64(bits, qcow2::k_incompat_dirty);
        ASSERT_TRUE(file.write_all(72, bits));
    }
    auto dev = open_rw(path);
    EXPECT_FALSE(as_qcow2(*dev).header().incompatible_features & qcow2::k_incompat_dirty);
    expect_content(*dev, model);
    expect_clean(*dev);
}

TEST(Qcow2Image, CheckFindsLeaksAndCorruptionsAndRepairs) {
    TestDir dir;
    auto path = dir.path("bad.qcow2");
    ASSERT_TRUE(create_image(path, ImageCreateOptions{.size = 4u << 20}));
    std::vector<uint8_t> model(4u << 20, 0);
    {
        auto dev = open_rw(path);
        random_workload(*dev, model, 7, 30);
    }
    uint64_t block = 0;
    {
        auto file = *File::open(path, Access::ReadWrite);
        uint8_t ptr[8];
        ASSERT_TRUE(file.read_exact(65536, ptr));
        block = load_be64(ptr);
        uint8_t two[2] = {0, 2}, zero[2] = {0, 0};
        ASSERT_TRUE(file.write_all(block + 0, two));       // header cluster: refcount 2 -> leak
        ASSERT_TRUE(file.write_all(block + 2 * 2, zero));  // refcount block itself: 0 -> corruption
    }
    {
        auto dev = *open_image(path, ImageOpenOptions{});
        auto r = *as_qcow2(*dev).check(qcow2::Repair::No);
        EXPECT_EQ(r.leaks, 1u);
        EXPECT_EQ(r.corruptions, 1u);
        ASSERT_GE(r.messages.size(), 2u);
        EXPECT_EQ(r.messages[0], "Leaked cluster 0 refcount=2 reference=1");
        EXPECT_EQ(r.messages[1], "ERROR cluster 2 refcount=0 reference=1");
    }
    auto dev = open_rw(path);
    auto r = *as_qcow2(*dev).check(qcow2::Repair::Yes);
    EXPECT_EQ(r.corruptions, 0u);
    EXPECT_EQ(r.leaks, 0u);
    EXPECT_EQ(r.corruptions_fixed, 1u);
    EXPECT_EQ(r.leaks_fixed, 1u);
    expect_content(*dev, model);
}

TEST(Qcow2Image, TablesPointingOutsideTheFileAreRefused) {
    TestDir dir;
    auto path = dir.path("out.qcow2");
    ASSERT_TRUE(create_image(path, ImageCreateOptions{.size = 4u << 20}));
    {
        auto dev = open_rw(path);
        std::vector<uint8_t> data(4096, 1);
        ASSERT_TRUE(dev->write_at(0, data));
    }
    auto file = *File::open(path, Access::ReadWrite);
    uint8_t l1_offset_raw[8];
    ASSERT_TRUE(file.read_exact(40, l1_offset_raw));
    uint64_t l1 = load_be64(l1_offset_raw);
    uint8_t entry[8];
    store_be64(entry, qcow2::k_copied | (1ull << 40));
    ASSERT_TRUE(file.write_all(l1, entry));
    auto dev = *open_image(path, ImageOpenOptions{});
    std::vector<uint8_t> got(4096);
    auto r = dev->read_at(0, got);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(), "'" + path + "': L2 table at 0x10000000000 is unaligned or outside the " +
                                       std::to_string(*file.size()) + "-byte file");
    auto c = *as_qcow2(*dev).check(qcow2::Repair::No);
    EXPECT_GE(c.corruptions, 1u);
}

TEST(Qcow2Image, TruncatedImageIsRefused) {
    TestDir dir;
    auto path = dir.path("t.qcow2");
    ASSERT_TRUE(create_image(path, ImageCreateOptions{.size = 1u << 30}));
    ASSERT_TRUE(File::open(path, Access::ReadWrite)->truncate(100000));
    auto dev = open_image(path, ImageOpenOptions{});
    ASSERT_FALSE(dev);
    EXPECT_NE(dev.error().message().find("lies outside the 100000-byte file"), std::string::npos)
        << dev.error().message();
}

TEST(Qcow2Image, CorruptBitRefusesReadWrite) {
    TestDir dir;
    auto path = dir.path("c.qcow2");
    ASSERT_TRUE(create_image(path, ImageCreateOptions{.size = 1u << 20}));
    uint8_t bits[8];
    store_be64(bits, qcow2::k_incompat_corrupt);
    ASSERT_TRUE(File::open(path, Access::ReadWrite)->write_all(72, bits));
    auto dev = open_image(path, ImageOpenOptions{.access = Access::ReadWrite});
    ASSERT_FALSE(dev);
    EXPECT_EQ(dev.error().message(),
              "'" + path + "' is marked corrupt; open it read-only, or run 'corral-img check --repair'");
    EXPECT_TRUE(open_image(path, ImageOpenOptions{}));
}

TEST(RawDevice, ReadWriteDiscardResize) {
    TestDir dir;
    auto path = dir.path("r.raw");
    ASSERT_TRUE(create_image(path, ImageCreateOptions{.format = ImageFormat::Raw, .size = 1u << 20}));
    auto dev = open_rw(path);
    EXPECT_EQ(dev->format_name(), "raw");
    std::vector<uint8_t> data(8192, 3), got(8192);
    ASSERT_TRUE(dev->write_at(4096, data));
    ASSERT_TRUE(dev->read_at(4096, got));
    EXPECT_EQ(got, data);
    ASSERT_TRUE(dev->discard(4096, 8192));
    ASSERT_TRUE(dev->read_at(4096, got));
    EXPECT_EQ(got, std::vector<uint8_t>(8192, 0));
    auto past = dev->write_at((1u << 20) - 10, data);
    ASSERT_FALSE(past);
    EXPECT_EQ(past.error().message(), "write of 8192 bytes at offset 1048566 is outside the 1048576-byte disk");
    ASSERT_TRUE(dev->resize(2u << 20));
    EXPECT_EQ(dev->size(), 2u << 20);
}

}  // namespace
}  // namespace corral::storage
