#include "vmm/devices/virtio/queue.h"

#include <gtest/gtest.h>

#include "virtio_test_driver.h"

namespace corral::vmm::virtio {
namespace {

using testing::TestRing;

constexpr uint64_t k_memory_size = 1 << 20;
constexpr uint64_t k_buffers = 0x40000;

class QueueTest : public ::testing::Test {
protected:
    Virtqueue make_queue(QueueFeatures features = {}) {
        auto queue = Virtqueue::create(memory, ring.layout(), features);
        EXPECT_TRUE(queue.has_value()) << (queue ? "" : queue.error().message());
        return std::move(*queue);
    }
    uint64_t rejected(const Virtqueue& queue, ChainError error) const {
        return queue.counters().rejected_by_reason[static_cast<size_t>(error)];
    }
    /// Pops once, expecting the chain to be refused for `error` and returned used with length 0.
    void expect_rejected(Virtqueue& queue, uint16_t head, ChainError error) {
        uint16_t used_before = ring.used_idx();
        EXPECT_FALSE(queue.pop().has_value());
        EXPECT_EQ(rejected(queue, error), 1u) << describe(error);
        EXPECT_EQ(queue.counters().rejected_chains, 1u);
        EXPECT_FALSE(queue.broken());
        ASSERT_EQ(ring.used_idx(), static_cast<uint16_t>(used_before + 1));
        EXPECT_EQ(ring.used_element(used_before), std::make_pair(uint32_t{head}, uint32_t{0}));
    }

    GuestMemory memory = GuestMemory::create(k_memory_size).value();
    TestRing ring{memory, 8};
};

TEST_F(QueueTest, PopsAValidChainAndReturnsItUsed) {
    Virtqueue queue = make_queue();
    ring.descriptor(0, k_buffers, 16, k_desc_f_next, 1);
    ring.descriptor(1, k_buffers + 0x100, 32, k_desc_f_next, 2);
    ring.descriptor(2, k_buffers + 0x200, 64, k_desc_f_write);
    ring.publish(0);

    auto chain = queue.pop();
    ASSERT_TRUE(chain.has_value());
    EXPECT_EQ(chain->head, 0);
    ASSERT_EQ(chain->readable.size(), 2u);
    ASSERT_EQ(chain->writable.size(), 1u);
    EXPECT_EQ(chain->readable[0].host, memory.host_pointer(k_buffers, 16));
    EXPECT_EQ(chain->readable[1].length, 32u);
    EXPECT_EQ(chain->writable[0].host, memory.host_pointer(k_buffers + 0x200, 64));
    EXPECT_EQ(chain->readable_bytes, 48u);
    EXPECT_EQ(chain->writable_bytes, 64u);
    EXPECT_FALSE(queue.pop().has_value()) << "only one chain was made available";

    queue.add_used(chain->head, 10);
    EXPECT_EQ(ring.used_idx(), 1);
    EXPECT_EQ(ring.used_element(0), std::make_pair(0u, 10u));
    EXPECT_EQ(queue.counters().chains, 1u);
}

TEST_F(QueueTest, UsingAChainNotesItsWritableBuffersAndTheUsedRingAsDeviceWrites) {
    // What a live migration re-sends: KVM's dirty log does not see the device's writes.
    Virtqueue queue = make_queue();
    ring.descriptor(0, k_buffers, 16, k_desc_f_next, 1);
    ring.descriptor(1, k_buffers + 0x3000, 0x1800, k_desc_f_write);  // two pages
    ring.publish(0);
    memory.start_device_write_log();
    auto chain = queue.pop();
    ASSERT_TRUE(chain.has_value());
    EXPECT_TRUE(memory.take_device_writes().empty()) << "nothing is written before the chain is used";
    queue.add_used(chain->head, 0x1800);
    EXPECT_EQ(memory.take_device_writes(), (std::vector<uint64_t>{0x30000, k_buffers + 0x3000, k_buffers + 0x4000}))
        << "the used ring's page, then the chain's writable pages (the readable one is not written)";
    memory.stop_device_write_log();
}

TEST_F(QueueTest, IndicesWrapAroundAt65535) {
    ring.size = 4;
    Virtqueue queue = make_queue();
    ring.descriptor(3, k_buffers, 8, k_desc_f_write);
    // 65540 round trips: both free-running indices pass 65535 and wrap to 0.
    for (uint32_t i = 0; i < 65540; ++i) {
        ring.publish(3);
        auto chain = queue.pop();
        ASSERT_TRUE(chain.has_value()) << "round " << i;
        queue.add_used(chain->head, 8);
        if (i == 65534) {
            EXPECT_EQ(ring.used_idx(), 65535);
        }
    }
    EXPECT_EQ(ring.used_idx(), static_cast<uint16_t>(65540));
    EXPECT_EQ(queue.next_avail(), static_cast<uint16_t>(65540));
    EXPECT_EQ(ring.used_element(static_cast<uint16_t>(65539)), std::make_pair(3u, 8u));
    EXPECT_EQ(queue.counters().rejected_chains, 0u);
    EXPECT_FALSE(queue.broken());
}

TEST_F(QueueTest, ManyChainsOutstandingAcrossTheWrap) {
    ring.size = 4;
    Virtqueue queue = make_queue();
    for (uint16_t i = 0; i < 4; ++i) ring.descriptor(i, k_buffers + 0x100 * i, 8, 0);
    for (int round = 0; round < 16390; ++round) {  // 4 chains per round: indices wrap once
        for (uint16_t head = 0; head < 4; ++head) ring.publish(head);
        for (uint16_t head = 0; head < 4; ++head) {
            auto chain = queue.pop();
            ASSERT_TRUE(chain.has_value());
            ASSERT_EQ(chain->head, head);
            queue.add_used(head, 0);
        }
    }
    EXPECT_EQ(ring.used_idx(), static_cast<uint16_t>(16390 * 4));
}

TEST_F(QueueTest, IndirectTable) {
    Virtqueue queue = make_queue({.indirect_descriptors = true});
    uint64_t table = 0x50000;
    ring.descriptor_at(table, 0, k_buffers, 16, k_desc_f_next, 1);
    ring.descriptor_at(table, 1, k_buffers + 0x100, 16, k_desc_f_next, 2);
    ring.descriptor_at(table, 2, k_buffers + 0x200, 100, k_desc_f_write);
    ring.descriptor(5, table, 3 * 16, k_desc_f_indirect);
    ring.publish(5);
    auto chain = queue.pop();
    ASSERT_TRUE(chain.has_value());
    EXPECT_EQ(chain->head, 5);
    EXPECT_EQ(chain->readable.size(), 2u);
    EXPECT_EQ(chain->writable.size(), 1u);
    EXPECT_EQ(chain->writable_bytes, 100u);
}

TEST_F(QueueTest, DirectDescriptorsFollowedByAnIndirectTable) {
    Virtqueue queue = make_queue({.indirect_descriptors = true});
    uint64_t table = 0x50000;
    ring.descriptor_at(table, 0, k_buffers + 0x200, 100, k_desc_f_write);
    ring.descriptor(0, k_buffers, 16, k_desc_f_next, 1);
    ring.descriptor(1, table, 16, k_desc_f_indirect);
    ring.publish(0);
    auto chain = queue.pop();
    ASSERT_TRUE(chain.has_value());
    EXPECT_EQ(chain->readable.size(), 1u);
    EXPECT_EQ(chain->writable.size(), 1u);
}

TEST_F(QueueTest, IndirectWithoutTheFeatureIsRejected) {
    Virtqueue queue = make_queue();
    ring.descriptor_at(0x50000, 0, k_buffers, 16, 0);
    ring.descriptor(0, 0x50000, 16, k_desc_f_indirect);
    ring.publish(0);
    expect_rejected(queue, 0, ChainError::IndirectNotNegotiated);
}

TEST_F(QueueTest, NestedIndirectIsRejected) {
    Virtqueue queue = make_queue({.indirect_descriptors = true});
    ring.descriptor_at(0x50000, 0, 0x51000, 16, k_desc_f_indirect);
    ring.descriptor_at(0x51000, 0, k_buffers, 16, 0);
    ring.descriptor(0, 0x50000, 16, k_desc_f_indirect);
    ring.publish(0);
    expect_rejected(queue, 0, ChainError::NestedIndirect);
}

TEST_F(QueueTest, IndirectWithNextIsRejected) {
    Virtqueue queue = make_queue({.indirect_descriptors = true});
    ring.descriptor_at(0x50000, 0, k_buffers, 16, 0);
    ring.descriptor(0, 0x50000, 16, k_desc_f_indirect | k_desc_f_next, 1);
    ring.descriptor(1, k_buffers, 16, 0);
    ring.publish(0);
    expect_rejected(queue, 0, ChainError::IndirectWithNext);
}

TEST_F(QueueTest, IndirectTableLengthsAreChecked) {
    Virtqueue queue = make_queue({.indirect_descriptors = true});
    ring.descriptor(0, 0x50000, 0, k_desc_f_indirect);
    ring.publish(0);
    expect_rejected(queue, 0, ChainError::BadIndirectLength);
    ring.descriptor(1, 0x50000, 17, k_desc_f_indirect);
    ring.publish(1);
    EXPECT_FALSE(queue.pop().has_value());
    EXPECT_EQ(rejected(queue, ChainError::BadIndirectLength), 2u);
}

TEST_F(QueueTest, IndirectTableOutsideRamIsRejected) {
    Virtqueue queue = make_queue({.indirect_descriptors = true});
    ring.descriptor(0, k_memory_size - 16, 32, k_desc_f_indirect);
    ring.publish(0);
    expect_rejected(queue, 0, ChainError::BadAddress);
}

TEST_F(QueueTest, IndirectTableLargerThanTheQueueIsRejected) {
    Virtqueue queue = make_queue({.indirect_descriptors = true});
    ring.descriptor(0, 0x50000, 16 * 9, k_desc_f_indirect);  // 9 descriptors, queue size 8
    ring.publish(0);
    expect_rejected(queue, 0, ChainError::TooLong);
}

TEST_F(QueueTest, LoopInsideAnIndirectTableIsRejected) {
    Virtqueue queue = make_queue({.indirect_descriptors = true});
    ring.descriptor_at(0x50000, 0, k_buffers, 16, k_desc_f_next, 1);
    ring.descriptor_at(0x50000, 1, k_buffers, 16, k_desc_f_next, 0);
    ring.descriptor(0, 0x50000, 32, k_desc_f_indirect);
    ring.publish(0);
    expect_rejected(queue, 0, ChainError::TooLong);
}

TEST_F(QueueTest, DescriptorLoopIsRejected) {
    Virtqueue queue = make_queue();
    ring.descriptor(0, k_buffers, 16, k_desc_f_next, 1);
    ring.descriptor(1, k_buffers, 16, k_desc_f_next, 0);
    ring.publish(0);
    expect_rejected(queue, 0, ChainError::TooLong);
}

TEST_F(QueueTest, SelfLoopIsRejected) {
    Virtqueue queue = make_queue();
    ring.descriptor(4, k_buffers, 16, k_desc_f_next, 4);
    ring.publish(4);
    expect_rejected(queue, 4, ChainError::TooLong);
}

TEST_F(QueueTest, NextBeyondTheTableIsRejected) {
    Virtqueue queue = make_queue();
    ring.descriptor(0, k_buffers, 16, k_desc_f_next, 8);
    ring.publish(0);
    expect_rejected(queue, 0, ChainError::NextOutOfRange);
}

TEST_F(QueueTest, BuffersOutsideRamAreRejected) {
    Virtqueue queue = make_queue();
    ring.descriptor(0, k_memory_size - 8, 16, 0);  // straddles the end of RAM
    ring.publish(0);
    expect_rejected(queue, 0, ChainError::BadAddress);
    ring.descriptor(1, ~uint64_t{0} - 7, 16, k_desc_f_write);  // address + length overflows
    ring.publish(1);
    EXPECT_FALSE(queue.pop().has_value());
    ring.descriptor(2, 0xC0000000, 16, 0);  // the PCI hole
    ring.publish(2);
    EXPECT_FALSE(queue.pop().has_value());
    EXPECT_EQ(rejected(queue, ChainError::BadAddress), 3u);
}

TEST_F(QueueTest, ZeroLengthBufferIsRejected) {
    Virtqueue queue = make_queue();
    ring.descriptor(0, k_buffers, 0, k_desc_f_write);
    ring.publish(0);
    expect_rejected(queue, 0, ChainError::ZeroLength);
}

TEST_F(QueueTest, ReadableAfterWritableIsRejected) {
    Virtqueue queue = make_queue();
    ring.descriptor(0, k_buffers, 16, k_desc_f_write | k_desc_f_next, 1);
    ring.descriptor(1, k_buffers + 0x100, 16, 0);
    ring.publish(0);
    expect_rejected(queue, 0, ChainError::ReadableAfterWritable);
}

TEST_F(QueueTest, ARejectedChainDoesNotStopTheNextOne) {
    Virtqueue queue = make_queue();
    ring.descriptor(0, k_buffers, 0, 0);
    ring.descriptor(1, k_buffers, 16, 0);
    ring.publish(0);
    ring.publish(1);
    auto chain = queue.pop();
    ASSERT_TRUE(chain.has_value());
    EXPECT_EQ(chain->head, 1);
    EXPECT_EQ(queue.counters().rejected_chains, 1u);
    EXPECT_EQ(ring.used_idx(), 1) << "the rejected chain went back used";
}

TEST_F(QueueTest, AvailIndexTooFarAheadBreaksTheQueue) {
    Virtqueue queue = make_queue();
    ring.descriptor(0, k_buffers, 16, 0);
    ring.set_avail_idx(9);  // 9 > size 8 outstanding
    EXPECT_FALSE(queue.pop().has_value());
    EXPECT_TRUE(queue.broken());
    ring.set_avail_idx(1);
    EXPECT_FALSE(queue.pop().has_value()) << "a broken queue stays broken until reset";
    EXPECT_FALSE(queue.enable_notifications());
    EXPECT_EQ(ring.used_idx(), 0);
}

TEST_F(QueueTest, AvailIndexGoingBackwardsBreaksTheQueue) {
    Virtqueue queue = make_queue();
    ring.set_avail_idx(0xFFFF);  // "65535 buffers ahead"
    EXPECT_FALSE(queue.pop().has_value());
    EXPECT_TRUE(queue.broken());
}

TEST_F(QueueTest, HeadBeyondTheTableBreaksTheQueue) {
    Virtqueue queue = make_queue();
    ring.publish(8);
    EXPECT_FALSE(queue.pop().has_value());
    EXPECT_TRUE(queue.broken());
}

TEST_F(QueueTest, RingsMustBeInRamAlignedAndSizedAPowerOfTwo) {
    auto layout = ring.layout();
    EXPECT_TRUE(Virtqueue::create(memory, layout, {}).has_value());
    auto bad = layout;
    bad.size = 6;
    EXPECT_FALSE(Virtqueue::create(memory, bad, {}).has_value());
    bad = layout;
    bad.size = 0;
    EXPECT_FALSE(Virtqueue::create(memory, bad, {}).has_value());
    bad = layout;
    bad.descriptor_table = 0x1008;  // not 16-aligned
    EXPECT_FALSE(Virtqueue::create(memory, bad, {}).has_value());
    bad = layout;
    bad.device_area = 0x30002;  // not 4-aligned
    EXPECT_FALSE(Virtqueue::create(memory, bad, {}).has_value());
    bad = layout;
    bad.driver_area = k_memory_size - 4;  // runs past RAM
    EXPECT_FALSE(Virtqueue::create(memory, bad, {}).has_value());
    bad = layout;
    bad.size = 32768;
    bad.descriptor_table = k_memory_size - 0x1000;  // 512 KiB of descriptors do not fit
    EXPECT_FALSE(Virtqueue::create(memory, bad, {}).has_value());
}

TEST_F(QueueTest, NoInterruptFlagSuppressesInterruptsWithoutEventIdx) {
    Virtqueue queue = make_queue();
    ring.descriptor(0, k_buffers, 16, k_desc_f_write);
    ring.publish(0);
    queue.add_used(queue.pop()->head, 1);
    EXPECT_TRUE(queue.should_interrupt());
    EXPECT_FALSE(queue.should_interrupt()) << "nothing new since";
    ring.set_avail_flags(k_avail_f_no_interrupt);
    ring.publish(0);
    queue.add_used(queue.pop()->head, 1);
    EXPECT_FALSE(queue.should_interrupt());
    EXPECT_EQ(queue.counters().interrupts_suppressed, 2u);
}

TEST_F(QueueTest, EventIdxSuppressesInterruptsUntilUsedEvent) {
    Virtqueue queue = make_queue({.event_index = true});
    ring.descriptor(0, k_buffers, 16, k_desc_f_write);
    auto round_trip = [&] {
        ring.publish(0);
        auto chain = queue.pop();
        ASSERT_TRUE(chain.has_value());
        queue.add_used(chain->head, 16);
    };
    ring.set_used_event(0);
    round_trip();  // used 0 -> 1 crosses used_event 0
    EXPECT_TRUE(queue.should_interrupt());
    round_trip();  // 1 -> 2: used_event still 0, already signalled
    EXPECT_FALSE(queue.should_interrupt());
    ring.set_used_event(4);
    round_trip();  // 2 -> 3
    EXPECT_FALSE(queue.should_interrupt());
    round_trip();  // 3 -> 4
    EXPECT_FALSE(queue.should_interrupt());
    round_trip();  // 4 -> 5 crosses used_event 4
    EXPECT_TRUE(queue.should_interrupt());
    // Several used buffers between checks: one interrupt when any of them crosses used_event.
    ring.set_used_event(6);
    round_trip();
    round_trip();
    round_trip();  // 5 -> 8 crosses 6
    EXPECT_TRUE(queue.should_interrupt());
}

TEST_F(QueueTest, EventIdxAcrossTheWrap) {
    ring.size = 4;
    Virtqueue queue = make_queue({.event_index = true});
    ring.descriptor(0, k_buffers, 16, k_desc_f_write);
    for (uint32_t i = 0; i < 65534; ++i) {
        ring.publish(0);
        queue.add_used(queue.pop()->head, 0);
    }
    queue.should_interrupt();
    ring.set_used_event(65535);
    ring.publish(0);
    queue.add_used(queue.pop()->head, 0);  // used 65534 -> 65535: does not cross 65535
    EXPECT_FALSE(queue.should_interrupt());
    ring.publish(0);
    queue.add_used(queue.pop()->head, 0);  // 65535 -> 0 crosses 65535
    EXPECT_TRUE(queue.should_interrupt());
}

TEST_F(QueueTest, EnableNotificationsPublishesAvailEventAndRechecks) {
    Virtqueue queue = make_queue({.event_index = true});
    ring.descriptor(0, k_buffers, 16, 0);
    ring.publish(0);
    ring.publish(0);
    ASSERT_TRUE(queue.pop().has_value());
    EXPECT_TRUE(queue.enable_notifications()) << "one more chain is already there";
    EXPECT_EQ(ring.avail_event(), 1);
    ASSERT_TRUE(queue.pop().has_value());
    EXPECT_FALSE(queue.enable_notifications());
    EXPECT_EQ(ring.avail_event(), 2);
}

}  // namespace
}  // namespace corral::vmm::virtio
