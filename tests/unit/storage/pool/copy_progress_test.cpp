// copy_image_data (src/storage/copy.h) is the pool's copy engine; its progress contract is tested
// here.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "../test_dir.h"
#include "storage/copy.h"
#include "storage/image.h"
#include "storage/raw_device.h"

namespace corral::storage {
namespace {

/// A slow source: `extents` data extents of 64 KiB, each read taking 2 ms.
class SlowSource final : public BlockDevice {
public:
    explicit SlowSource(uint64_t extents) : m_size(extents * 65536) {}
    std::string format_name() const override { return "slow"; }
    uint64_t size() const override { return m_size; }
    bool read_only() const override { return true; }
    Result<void> read_at(uint64_t offset, std::span<uint8_t> buffer) override {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        for (size_t i = 0; i < buffer.size(); ++i)
            buffer[i] = uint8_t((offset + i) / 65536 + 1);
        return {};
    }
    Result<void> write_at(uint64_t, std::span<const uint8_t>) override {
        return fail("read-only", EROFS);
    }
    Result<void> flush() override { return {}; }
    Result<void> discard(uint64_t, uint64_t) override { return fail("read-only", EROFS); }
    Result<void> write_zeroes(uint64_t, uint64_t) override { return fail("read-only", EROFS); }
    Result<void> resize(uint64_t) override { return fail("read-only", EROFS); }
    Result<Extent> block_status(uint64_t offset, uint64_t max_length) override {
        Extent e;
        e.offset = offset;
        e.length = std::min<uint64_t>(max_length, 65536 - offset % 65536);
        e.kind = ExtentKind::Data;
        return e;
    }

private:
    uint64_t m_size;
};

TEST(PoolCopyProgress, ThrottledMonotonicAndEndsAtTotal) {
    testing::TestDir dir;
    SlowSource src(300);  // ~0.6 s of reads in 300 extents
    std::string path = dir.path("dst.qcow2");
    ImageCreateOptions o;
    o.size = src.size();
    ASSERT_TRUE(create_image(path, o));
    ImageOpenOptions rw;
    rw.access = Access::ReadWrite;
    auto dst = open_image(path, rw);
    ASSERT_TRUE(dst);
    std::vector<std::pair<uint64_t, uint64_t>> calls;
    auto start = std::chrono::steady_clock::now();
    auto r = copy_image_data(src, **dst, [&](uint64_t done, uint64_t total) {
        calls.push_back({done, total});
        return Proceed::Continue;
    });
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(r) << r.error().describe();
    ASSERT_GE(calls.size(), 3u) << "expected progress in the middle of a " << seconds << " s copy";
    EXPECT_LE(double(calls.size()), seconds * 10 + 2)
        << calls.size() << " calls in " << seconds << " s";
    for (size_t i = 0; i < calls.size(); ++i) {
        EXPECT_EQ(calls[i].second, src.size());
        if (i > 0) {
            EXPECT_GE(calls[i].first, calls[i - 1].first);
        }
    }
    EXPECT_EQ(calls.back().first, src.size());
    std::vector<uint8_t> got(65536);
    ASSERT_TRUE((*dst)->read_at(299 * 65536, got));
    EXPECT_EQ(got[0], 44);  // (299 + 1) % 256
}

TEST(PoolCopyProgress, ACancelStopsTheCopyAtItsNextReport) {
    testing::TestDir dir;
    SlowSource src(300);  // ~0.6 s of reads in 300 extents
    std::string path = dir.path("dst.qcow2");
    ImageCreateOptions o;
    o.size = src.size();
    ASSERT_TRUE(create_image(path, o));
    ImageOpenOptions rw;
    rw.access = Access::ReadWrite;
    auto dst = open_image(path, rw);
    ASSERT_TRUE(dst);
    uint64_t last_done = 0;
    int calls = 0;
    auto r = copy_image_data(src, **dst, [&](uint64_t done, uint64_t) {
        last_done = done;
        // The first report (0) goes on; the second one cancels.
        return ++calls == 2 ? Proceed::Cancel : Proceed::Continue;
    });
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().errno_value(), ECANCELED);
    EXPECT_EQ(calls, 2) << "no report after the cancel";
    EXPECT_LT(last_done, src.size());
}

TEST(PoolCopyProgress, DestinationTooSmallIsRefused) {
    testing::TestDir dir;
    SlowSource src(4);
    std::string path = dir.path("small.raw");
    ASSERT_TRUE(RawDevice::create(path, 65536));
    ImageOpenOptions rw;
    rw.access = Access::ReadWrite;
    auto dst = open_image(path, rw);
    ASSERT_TRUE(dst);
    auto r = copy_image_data(src, **dst, {});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().errno_value(), EINVAL);
}

}  // namespace
}  // namespace corral::storage
