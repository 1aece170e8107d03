#include "vmm/devices/virtio/net/rx_merge.h"

#include <gtest/gtest.h>

#include <cstring>
#include <numeric>

#include "virtio_test_driver.h"
#include "vmm/devices/virtio/net/frames.h"

namespace corral::vmm::virtio {
namespace {

using testing::TestRing;

constexpr uint64_t k_memory_size = 1 << 20;
constexpr uint64_t k_buffers = 0x40000;

/// Mergeable receive against a real split queue in simulated guest memory (the driver's side
/// written with TestRing, as Linux's virtio_net would post its page-sized buffers).
class MergeableRxTest : public ::testing::Test {
protected:
    /// A packet as the tap gives it: a header (all zero but num_buffers, which the tap leaves
    /// as garbage) then `frame_bytes` bytes 1, 2, 3...
    static std::vector<uint8_t> packet(size_t frame_bytes) {
        std::vector<uint8_t> bytes(k_net_header_size + frame_bytes);
        std::iota(bytes.begin() + k_net_header_size, bytes.end(), uint8_t{1});
        bytes[10] = 0xee;
        bytes[11] = 0xee;
        return bytes;
    }
    /// Posts a one-descriptor writable chain of `length` bytes at `address` as descriptor `index`.
    void post(uint16_t index, uint64_t address, uint32_t length) {
        ring.descriptor(index, address, length, k_desc_f_write);
        ring.publish(index);
    }
    uint16_t num_buffers(uint64_t header_at) const {
        return memory.read_object<uint16_t>(header_at + 10).value();
    }
    bool guest_holds(uint64_t at, const uint8_t* bytes, size_t length) const {
        return std::memcmp(memory.host_pointer(at, length), bytes, length) == 0;
    }

    GuestMemory memory = GuestMemory::create(k_memory_size).value();
    TestRing ring{memory, 8};
    Virtqueue queue = Virtqueue::create(memory, ring.layout(), {}).value();
    MergeableRx merge;
};

TEST_F(MergeableRxTest, ASmallFrameTakesOneBuffer) {
    post(0, k_buffers, 1526);
    post(1, k_buffers + 0x1000, 1526);
    auto bytes = packet(60);
    auto result = merge.place(queue, bytes);
    EXPECT_EQ(result.outcome, RxMerge::Delivered);
    EXPECT_EQ(result.buffers, 1);
    ASSERT_EQ(ring.used_idx(), 1);
    EXPECT_EQ(ring.used_element(0), std::make_pair(0u, 72u));
    EXPECT_EQ(num_buffers(k_buffers), 1);
    EXPECT_TRUE(guest_holds(k_buffers + 12, bytes.data() + 12, 60));
    EXPECT_EQ(queue.next_avail(), 1) << "the second buffer is left for the next frame";
}

TEST_F(MergeableRxTest, ALargeFrameSpansSeveralBuffersWithNumBuffersInTheFirst) {
    // Three page-ish buffers, the second one split over two descriptors.
    ring.descriptor(0, k_buffers, 1000, k_desc_f_write);
    ring.publish(0);
    ring.descriptor(1, k_buffers + 0x1000, 300, k_desc_f_write | k_desc_f_next, 2);
    ring.descriptor(2, k_buffers + 0x2000, 700, k_desc_f_write);
    ring.publish(1);
    post(3, k_buffers + 0x3000, 1000);
    post(4, k_buffers + 0x4000, 1000);
    auto bytes = packet(2500);  // 2512 with the header: 1000 + 1000 + 512
    auto result = merge.place(queue, bytes);
    EXPECT_EQ(result.outcome, RxMerge::Delivered);
    EXPECT_EQ(result.buffers, 3);
    ASSERT_EQ(ring.used_idx(), 3);
    EXPECT_EQ(ring.used_element(0), std::make_pair(0u, 1000u));
    EXPECT_EQ(ring.used_element(1), std::make_pair(1u, 1000u));
    EXPECT_EQ(ring.used_element(2), std::make_pair(3u, 512u));
    EXPECT_EQ(num_buffers(k_buffers), 3);
    EXPECT_EQ(memory.read_object<uint8_t>(k_buffers).value(), 0) << "the rest of the header as the tap gave it";
    EXPECT_TRUE(guest_holds(k_buffers + 12, bytes.data() + 12, 988));
    EXPECT_TRUE(guest_holds(k_buffers + 0x1000, bytes.data() + 1000, 300));
    EXPECT_TRUE(guest_holds(k_buffers + 0x2000, bytes.data() + 1300, 700));
    EXPECT_TRUE(guest_holds(k_buffers + 0x3000, bytes.data() + 2000, 512));
    EXPECT_EQ(memory.read_object<uint8_t>(k_buffers + 0x3000 + 512).value(), 0) << "nothing past the frame";
    EXPECT_EQ(merge.held(), 0u);
}

TEST_F(MergeableRxTest, WithoutEnoughBuffersThePacketWaitsUnpublishedAndIsDeliveredWhole) {
    post(0, k_buffers, 1000);
    auto bytes = packet(2500);
    auto result = merge.place(queue, bytes);
    EXPECT_EQ(result.outcome, RxMerge::NeedBuffers);
    EXPECT_EQ(ring.used_idx(), 0) << "no part of the packet is visible to the driver";
    EXPECT_EQ(merge.held(), 1u);
    EXPECT_EQ(memory.read_object<uint8_t>(k_buffers + 12).value(), 0) << "nothing written yet";
    EXPECT_EQ(ring.avail_event(), 0) << "without EVENT_IDX nothing is written there";

    post(1, k_buffers + 0x1000, 1000);  // still short
    EXPECT_EQ(merge.place(queue, bytes).outcome, RxMerge::NeedBuffers);
    EXPECT_EQ(ring.used_idx(), 0);
    post(2, k_buffers + 0x2000, 1000);
    result = merge.place(queue, bytes);
    EXPECT_EQ(result.outcome, RxMerge::Delivered);
    EXPECT_EQ(result.buffers, 3);
    ASSERT_EQ(ring.used_idx(), 3);
    EXPECT_EQ(ring.used_element(2), std::make_pair(2u, 512u));
    EXPECT_EQ(num_buffers(k_buffers), 3);
    EXPECT_TRUE(guest_holds(k_buffers + 0x2000, bytes.data() + 2000, 512));
}

TEST_F(MergeableRxTest, WithEventIndexTheDriverIsAskedToNotifyForTheNextBuffer) {
    queue = Virtqueue::create(memory, ring.layout(), {.event_index = true}).value();
    post(0, k_buffers, 1000);
    auto bytes = packet(1500);
    EXPECT_EQ(merge.place(queue, bytes).outcome, RxMerge::NeedBuffers);
    EXPECT_EQ(ring.avail_event(), 1) << "notify when the next buffer is made available";
}

TEST_F(MergeableRxTest, BuffersTooSmallForAHeaderAreReturnedEmptyBeforeThePacket) {
    post(0, k_buffers, 11);  // less than a header: refused
    ring.descriptor(1, k_buffers + 0x1000, 500, 0);  // device-readable only: no room at all
    ring.publish(1);
    post(2, k_buffers + 0x2000, 1526);
    auto bytes = packet(100);
    auto result = merge.place(queue, bytes);
    EXPECT_EQ(result.outcome, RxMerge::Delivered);
    EXPECT_EQ(result.rejected, 2u);
    ASSERT_EQ(ring.used_idx(), 3);
    EXPECT_EQ(ring.used_element(0), std::make_pair(0u, 0u));
    EXPECT_EQ(ring.used_element(1), std::make_pair(1u, 0u));
    EXPECT_EQ(ring.used_element(2), std::make_pair(2u, 112u));
    EXPECT_EQ(memory.read_object<uint8_t>(k_buffers).value(), 0) << "nothing written into the refused buffer";
    EXPECT_EQ(num_buffers(k_buffers + 0x2000), 1);
}

TEST_F(MergeableRxTest, ARingOfTinyBuffersCannotHoldAFrameSoItIsDroppedAndTheBuffersReturned) {
    // Eight 12-byte buffers (the whole ring): 96 bytes, for a 212-byte packet.
    for (uint16_t i = 0; i < 8; ++i) post(i, k_buffers + 0x100 * i, 12);
    auto bytes = packet(200);
    auto result = merge.place(queue, bytes);
    EXPECT_EQ(result.outcome, RxMerge::Dropped);
    ASSERT_EQ(ring.used_idx(), 8);
    for (uint16_t i = 0; i < 8; ++i) EXPECT_EQ(ring.used_element(i), std::make_pair(uint32_t{i}, 0u));
    EXPECT_EQ(merge.held(), 0u);
    // The next frame, with real buffers, goes through.
    post(0, k_buffers + 0x4000, 1526);
    EXPECT_EQ(merge.place(queue, bytes).outcome, RxMerge::Delivered);
    EXPECT_EQ(ring.used_element(8), std::make_pair(0u, 212u));
}

TEST_F(MergeableRxTest, OverlappingBuffersAreWrittenOnlyWithinTheirBounds) {
    // Two chains over the same 100 bytes, then a third: the copy stays inside each buffer.
    post(0, k_buffers, 100);
    post(1, k_buffers, 100);
    post(2, k_buffers + 0x1000, 100);
    std::memset(memory.host_pointer(k_buffers + 100, 16), 0x5a, 16);
    std::memset(memory.host_pointer(k_buffers + 0x1000 + 50, 16), 0x5a, 16);
    auto bytes = packet(238);  // 250: 100 + 100 + 50
    auto result = merge.place(queue, bytes);
    EXPECT_EQ(result.outcome, RxMerge::Delivered);
    EXPECT_EQ(result.buffers, 3);
    EXPECT_EQ(ring.used_element(2), std::make_pair(2u, 50u));
    EXPECT_TRUE(guest_holds(k_buffers, bytes.data() + 100, 100)) << "the second chain wrote over the first";
    EXPECT_EQ(memory.read_object<uint8_t>(k_buffers + 100).value(), 0x5a);
    EXPECT_EQ(memory.read_object<uint8_t>(k_buffers + 0x1000 + 50).value(), 0x5a);
}

TEST_F(MergeableRxTest, BuffersOutsideGuestMemoryAreRefusedByTheQueue) {
    post(0, k_memory_size - 100, 1000);  // runs past the end of RAM
    post(1, ~0ull - 10, 100);            // wraps around
    post(2, k_buffers, 1526);
    auto bytes = packet(60);
    auto result = merge.place(queue, bytes);
    EXPECT_EQ(result.outcome, RxMerge::Delivered);
    ASSERT_EQ(ring.used_idx(), 3);
    EXPECT_EQ(ring.used_element(0), std::make_pair(0u, 0u));
    EXPECT_EQ(ring.used_element(1), std::make_pair(1u, 0u));
    EXPECT_EQ(ring.used_element(2), std::make_pair(2u, 72u));
    EXPECT_EQ(queue.counters().rejected_by_reason[static_cast<size_t>(ChainError::BadAddress)], 2u);
}

TEST_F(MergeableRxTest, ResetForgetsTheHeldChains) {
    post(0, k_buffers, 1000);
    auto bytes = packet(2000);
    EXPECT_EQ(merge.place(queue, bytes).outcome, RxMerge::NeedBuffers);
    EXPECT_EQ(merge.held(), 1u);
    merge.reset();
    EXPECT_EQ(merge.held(), 0u);
}

}  // namespace
}  // namespace corral::vmm::virtio
