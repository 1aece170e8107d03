#include "vmm/devices/virtio/block/request.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "memory_disk.h"

namespace corral::vmm::virtio::block {
namespace {

using testing::MemoryDisk;

/// Host buffers standing in for guest buffers (parse_request only sees validated host pointers).
struct Chain {
    std::vector<std::vector<uint8_t>> storage;
    DescriptorChain chain;

    uint8_t* add(bool writable, size_t length) {
        storage.emplace_back(length, 0xee);
        auto& buffer = storage.back();
        GuestBuffer guest{buffer.data(), static_cast<uint32_t>(length)};
        (writable ? chain.writable : chain.readable).push_back(guest);
        (writable ? chain.writable_bytes : chain.readable_bytes) += length;
        return buffer.data();
    }
    uint8_t* header(uint32_t type, uint64_t sector, size_t length = 16) {
        storage.reserve(16);  // keep pointers stable
        // A short header (the hostile case) gets only its first `length` bytes of the 16.
        uint8_t full[16] = {};
        std::memcpy(full, &type, 4);
        std::memcpy(full + 8, &sector, 8);
        uint8_t* p = add(false, length);
        std::memcpy(p, full, std::min<size_t>(length, sizeof full));
        return p;
    }
    uint8_t* segment(uint64_t sector, uint32_t sectors, uint32_t flags) {
        uint8_t* p = add(false, 16);
        std::memcpy(p, &sector, 8);
        std::memcpy(p + 8, &sectors, 4);
        std::memcpy(p + 12, &flags, 4);
        return p;
    }
    Chain() { storage.reserve(16); }
};

RequestLimits limits(bool read_only = false) {
    return RequestLimits{.capacity_sectors = 2048,
                         .read_only = read_only,
                         .discard = true,
                         .write_zeroes = true,
                         .max_discard_sectors = 1024,
                         .max_write_zeroes_sectors = 1024,
                         .max_data_bytes = 1 << 20};
}

TEST(BlockRequest, ParsesARead) {
    Chain c;
    c.header(k_t_in, 8);
    c.add(true, 4096);
    uint8_t* status = c.add(true, 1);
    auto parsed = parse_request(c.chain, limits());
    ASSERT_TRUE(parsed);
    EXPECT_FALSE(parsed->failed);
    EXPECT_EQ(parsed->status, status);
    EXPECT_EQ(parsed->request.type, RequestType::In);
    EXPECT_EQ(parsed->request.sector, 8u);
    EXPECT_EQ(parsed->request.data_bytes, 4096u);
    ASSERT_EQ(parsed->request.data.size(), 1u);
}

TEST(BlockRequest, StatusIsTheLastByteOfTheLastWritableBuffer) {
    Chain c;
    c.header(k_t_in, 0);
    uint8_t* data = c.add(true, 513);  // 512 data + status in one buffer
    auto parsed = parse_request(c.chain, limits());
    ASSERT_TRUE(parsed);
    EXPECT_FALSE(parsed->failed);
    EXPECT_EQ(parsed->status, data + 512);
    EXPECT_EQ(parsed->request.data_bytes, 512u);
}

TEST(BlockRequest, WriteDataMayFollowTheHeaderInItsBuffer) {
    Chain c;
    c.header(k_t_out, 0, 16 + 512);
    c.add(true, 1);
    auto parsed = parse_request(c.chain, limits());
    ASSERT_TRUE(parsed);
    EXPECT_FALSE(parsed->failed);
    EXPECT_EQ(parsed->request.data_bytes, 512u);
}

TEST(BlockRequest, NoWritableByteCannotBeAnswered) {
    Chain c;
    c.header(k_t_in, 0);
    c.add(false, 512);
    EXPECT_FALSE(parse_request(c.chain, limits()));
}

TEST(BlockRequest, HeaderTooShortIsAnIoError) {
    Chain c;
    c.header(k_t_in, 0, 8);
    c.add(true, 1);
    auto parsed = parse_request(c.chain, limits());
    ASSERT_TRUE(parsed);
    EXPECT_TRUE(parsed->failed);
    EXPECT_EQ(parsed->error, RequestError::HeaderTooShort);
    EXPECT_EQ(parsed->status_value, k_s_ioerr);

    Chain no_header;
    no_header.add(true, 513);
    auto none = parse_request(no_header.chain, limits());
    ASSERT_TRUE(none);
    EXPECT_EQ(none->error, RequestError::HeaderTooShort);
}

TEST(BlockRequest, UnalignedLengthIsRejected) {
    Chain c;
    c.header(k_t_in, 0);
    c.add(true, 100);
    c.add(true, 1);
    auto parsed = parse_request(c.chain, limits());
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->error, RequestError::UnalignedLength);
}

TEST(BlockRequest, SectorsPastTheEndAreRejected) {
    for (uint64_t sector : {uint64_t{2048}, uint64_t{2047}, uint64_t{5000}}) {
        Chain c;
        c.header(k_t_in, sector);
        c.add(true, 1024);
        c.add(true, 1);
        auto parsed = parse_request(c.chain, limits());
        ASSERT_TRUE(parsed);
        EXPECT_TRUE(parsed->failed) << sector;
        EXPECT_EQ(parsed->error, RequestError::OutOfRange) << sector;
    }
    Chain last;
    last.header(k_t_in, 2047);
    last.add(true, 512);
    last.add(true, 1);
    EXPECT_FALSE(parse_request(last.chain, limits())->failed) << "the last sector is readable";
}

TEST(BlockRequest, OverflowingSectorIsRejected) {
    Chain c;
    c.header(k_t_out, ~uint64_t{0} - 1);
    c.add(false, 1024);
    c.add(true, 1);
    auto parsed = parse_request(c.chain, limits());
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->error, RequestError::OutOfRange);

    Chain range;
    range.header(k_t_discard, 0);
    range.segment(~uint64_t{0} - 10, 100, 0);
    range.add(true, 1);
    EXPECT_EQ(parse_request(range.chain, limits())->error, RequestError::OutOfRange);
}

TEST(BlockRequest, HugeLengthsAreRejected) {
    Chain c;
    c.header(k_t_in, 0);
    for (int i = 0; i < 3; ++i) c.add(true, 512 * 1024);
    c.add(true, 1);
    auto parsed = parse_request(c.chain, limits());
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->error, RequestError::TooLarge);

    Chain range;
    range.header(k_t_write_zeroes, 0);
    range.segment(0, 1025, 0);
    range.add(true, 1);
    EXPECT_EQ(parse_request(range.chain, limits())->error, RequestError::TooLarge);
}

TEST(BlockRequest, WritesToAReadOnlyDiskAreIoErrors) {
    for (uint32_t type : {k_t_out, k_t_discard, k_t_write_zeroes}) {
        Chain c;
        c.header(type, 0);
        if (type == k_t_out) c.add(false, 512);
        else c.segment(0, 1, 0);
        c.add(true, 1);
        auto parsed = parse_request(c.chain, limits(/*read_only=*/true));
        ASSERT_TRUE(parsed);
        EXPECT_TRUE(parsed->failed) << type;
        EXPECT_EQ(parsed->error, RequestError::ReadOnly) << type;
        EXPECT_EQ(parsed->status_value, k_s_ioerr);
    }
    Chain read;
    read.header(k_t_in, 0);
    read.add(true, 513);
    EXPECT_FALSE(parse_request(read.chain, limits(true))->failed);
}

TEST(BlockRequest, UnknownTypeIsUnsupported) {
    for (uint32_t type : {2u, 10u, 14u, 0xffffffffu}) {
        Chain c;
        c.header(type, 0);
        c.add(true, 1);
        auto parsed = parse_request(c.chain, limits());
        ASSERT_TRUE(parsed);
        EXPECT_EQ(parsed->error, RequestError::Unsupported);
        EXPECT_EQ(parsed->status_value, k_s_unsupp);
    }
}

TEST(BlockRequest, DiscardAndWriteZeroesNeedTheirFeatureAndOneSegment) {
    RequestLimits no_features = limits();
    no_features.discard = no_features.write_zeroes = false;
    Chain c;
    c.header(k_t_discard, 0);
    c.segment(0, 8, 0);
    c.add(true, 1);
    EXPECT_EQ(parse_request(c.chain, no_features)->status_value, k_s_unsupp);
    auto ok = parse_request(c.chain, limits());
    ASSERT_FALSE(ok->failed);
    EXPECT_EQ(ok->request.type, RequestType::Discard);
    EXPECT_EQ(ok->request.range_sectors, 8u);

    Chain two;
    two.header(k_t_write_zeroes, 0);
    two.segment(0, 8, 0);
    two.segment(8, 8, 0);
    two.add(true, 1);
    EXPECT_EQ(parse_request(two.chain, limits())->error, RequestError::BadSegment);

    Chain unmap_discard;
    unmap_discard.header(k_t_discard, 0);
    unmap_discard.segment(0, 8, k_dwz_flag_unmap);
    unmap_discard.add(true, 1);
    EXPECT_EQ(parse_request(unmap_discard.chain, limits())->status_value, k_s_unsupp);

    Chain unmap_zeroes;
    unmap_zeroes.header(k_t_write_zeroes, 0);
    unmap_zeroes.segment(0, 8, k_dwz_flag_unmap);
    unmap_zeroes.add(true, 1);
    auto zeroes = parse_request(unmap_zeroes.chain, limits());
    EXPECT_FALSE(zeroes->failed);
    EXPECT_TRUE(zeroes->request.unmap);

    Chain bad_flags;
    bad_flags.header(k_t_write_zeroes, 0);
    bad_flags.segment(0, 8, 0x80);
    bad_flags.add(true, 1);
    EXPECT_EQ(parse_request(bad_flags.chain, limits())->error, RequestError::BadFlags);
}

TEST(BlockRequest, ExecutesReadsWritesAndGetId) {
    MemoryDisk disk(1 << 20);
    Chain write;
    write.header(k_t_out, 2);
    std::memset(write.add(false, 512), 0xab, 512);
    write.add(true, 1);
    auto w = parse_request(write.chain, limits());
    auto done = execute_request(w->request, disk, "serial");
    EXPECT_EQ(done.status, k_s_ok);
    EXPECT_EQ(done.written, 1u);
    EXPECT_EQ(done.bytes_written, 512u);
    EXPECT_EQ(disk.bytes[1024], 0xab);
    EXPECT_EQ(disk.bytes[1023], 0);

    Chain read;
    read.header(k_t_in, 2);
    uint8_t* data = read.add(true, 512);
    read.add(true, 1);
    done = execute_request(parse_request(read.chain, limits())->request, disk, "serial");
    EXPECT_EQ(done.status, k_s_ok);
    EXPECT_EQ(done.written, 513u);
    EXPECT_EQ(data[0], 0xab);

    Chain id;
    id.header(k_t_get_id, 0);
    uint8_t* buffer = id.add(true, 20);
    id.add(true, 1);
    done = execute_request(parse_request(id.chain, limits())->request, disk, "corral-ro");
    EXPECT_EQ(done.written, 21u);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(buffer), 9), "corral-ro");
    EXPECT_EQ(buffer[9], 0);

    disk.fail_io = true;
    done = execute_request(parse_request(read.chain, limits())->request, disk, "");
    EXPECT_EQ(done.status, k_s_ioerr);
}

}  // namespace
}  // namespace corral::vmm::virtio::block
