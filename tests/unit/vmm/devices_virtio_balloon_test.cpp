#include "vmm/devices/virtio/balloon/balloon_device.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <cstring>

#include "base/event_fd.h"
#include "virtio_test_driver.h"
#include "vmm/snapshot/state_stream.h"

namespace corral::vmm::virtio {
namespace {

using testing::RecordingInterrupt;
using testing::TestRing;
using Role = BalloonDevice::Role;

constexpr uint64_t k_ram = 4 << 20;
constexpr uint64_t k_buffers = 0x200000;  // PFN lists and stats buffers
constexpr uint64_t k_pages = 0x300000;    // pages the guest gives up

class BalloonDeviceTest : public ::testing::Test {
protected:
    /// Queue `i`'s rings, apart from the others'.
    TestRing ring_at(uint16_t i) {
        return TestRing{memory, 8, 0x100000 + 0x10000ull * i, 0x104000 + 0x10000ull * i, 0x108000 + 0x10000ull * i};
    }
    /// Activates with `features`; `count` queues enabled (inflate, deflate, then per features).
    void activate(uint64_t features, size_t count) {
        std::vector<std::optional<ActiveQueue>> queues(4);
        for (size_t i = 0; i < count; ++i)
            queues[i].emplace(ActiveQueue{Virtqueue::create(memory, rings[i].layout(), {}).value(), notify[i].fd()});
        ASSERT_TRUE(device.activate(ActivateContext{memory, k_f_version_1 | features, std::move(queues), interrupt}));
    }
    void fill_page(uint64_t address, uint8_t value) {
        std::memset(memory.host_pointer(address, BalloonDevice::k_page_size), value, BalloonDevice::k_page_size);
    }
    uint8_t byte_at(uint64_t address) { return *memory.host_pointer(address, 1); }
    void write_pfns(uint64_t address, const std::vector<uint32_t>& pfns) {
        for (size_t i = 0; i < pfns.size(); ++i)
            memory.write_object<uint32_t>(address + 4 * i, pfns[i]).value();
    }

    GuestMemory memory = GuestMemory::create(k_ram).value();
    std::vector<TestRing> rings{ring_at(0), ring_at(1), ring_at(2), ring_at(3)};
    std::vector<EventFd> notify = [] {
        std::vector<EventFd> fds;
        for (int i = 0; i < 4; ++i)
            fds.push_back(EventFd::create(EFD_NONBLOCK).value());
        return fds;
    }();
    std::shared_ptr<EventLoop> loop = EventLoop::start("balloon-test").value();
    RecordingInterrupt interrupt;
    // No stats timer: the tests ask for statistics themselves.
    BalloonDevice device{loop, std::chrono::milliseconds(0)};
};

TEST_F(BalloonDeviceTest, InflateGivesTheListedPagesBackToTheHost) {
    fill_page(k_pages, 0xab);
    fill_page(k_pages + 0x1000, 0xab);
    fill_page(k_pages + 0x2000, 0xab);
    write_pfns(k_buffers, {k_pages >> 12, (k_pages >> 12) + 1});
    rings[0].descriptor(0, k_buffers, 8, 0);
    rings[0].publish(0);
    activate(0, 2);
    ASSERT_EQ(rings[0].used_idx(), 1);
    EXPECT_EQ(rings[0].used_element(0), std::make_pair(0u, 0u));
    EXPECT_EQ(byte_at(k_pages), 0) << "the page was discarded: the guest would read zeros";
    EXPECT_EQ(byte_at(k_pages + 0x1fff), 0);
    EXPECT_EQ(byte_at(k_pages + 0x2000), 0xab) << "a page not listed is left alone";
    EXPECT_EQ(device.status().discarded_pages, 2u);
    EXPECT_EQ(interrupt.queue_signals, std::vector<uint16_t>{0});

    // Deflating needs nothing but the buffer back.
    rings[1].descriptor(0, k_buffers, 8, 0);
    rings[1].publish(0);
    device.process(Role::Deflate);
    EXPECT_EQ(rings[1].used_idx(), 1);
    device.reset();
}

TEST_F(BalloonDeviceTest, HostilePfnsAreSkippedAndCounted) {
    fill_page(k_ram - 0x1000, 0xab);
    // Beyond RAM, at the first page past it, far beyond, and the last page of RAM.
    write_pfns(k_buffers,
               {0xffffffff, static_cast<uint32_t>(k_ram >> 12), 0x80000, static_cast<uint32_t>((k_ram >> 12) - 1)});
    rings[0].descriptor(0, k_buffers, 16, 0);
    rings[0].publish(0);
    // A huge count: a 1 MiB buffer of PFNs, all of them 0xffffffff (262144 PFNs, none RAM).
    std::memset(memory.host_pointer(k_buffers + 0x1000, 1 << 20), 0xff, 1 << 20);
    rings[0].descriptor(1, k_buffers + 0x1000, 1 << 20, 0);
    rings[0].publish(1);
    // A PFN list whose length is not a multiple of 4: the odd bytes are ignored.
    write_pfns(k_buffers + 0x800, {static_cast<uint32_t>(k_ram >> 12)});
    rings[0].descriptor(2, k_buffers + 0x800, 7, 0);
    rings[0].publish(2);
    activate(0, 2);
    ASSERT_EQ(rings[0].used_idx(), 3) << "every chain is returned";
    EXPECT_EQ(byte_at(k_ram - 0x1000), 0) << "the one PFN in RAM was discarded";
    auto status = device.status();
    EXPECT_EQ(status.discarded_pages, 1u);
    EXPECT_EQ(status.rejected_pfns, 3u + (1u << 18) + 1u);
    EXPECT_EQ(interrupt.needs_reset, 0) << "bad PFNs are the guest's loss, not a broken device";
    device.reset();
}

TEST_F(BalloonDeviceTest, StatsAreHeldAndAskedForAgain) {
    // le16 tag + le64 value, packed: MEMFREE, MEMTOT, AVAIL and an unknown tag.
    const std::vector<std::pair<uint16_t, uint64_t>> stats{{4, 100 << 20}, {5, 200 << 20}, {6, 150 << 20}, {99, 7}};
    for (size_t i = 0; i < stats.size(); ++i) {
        memory.write_object<uint16_t>(k_buffers + 10 * i, stats[i].first).value();
        memory.write_object<uint64_t>(k_buffers + 10 * i + 2, stats[i].second).value();
    }
    rings[2].descriptor(0, k_buffers, 10 * stats.size(), 0);
    rings[2].publish(0);
    activate(BalloonDevice::k_f_stats_vq, 3);
    auto status = device.status();
    EXPECT_EQ(status.stats.free_bytes, uint64_t{100} << 20);
    EXPECT_EQ(status.stats.total_bytes, uint64_t{200} << 20);
    EXPECT_EQ(status.stats.available_bytes, uint64_t{150} << 20);
    EXPECT_EQ(status.stats.updates, 1u);
    EXPECT_EQ(rings[2].used_idx(), 0) << "the device keeps the buffer until it wants fresh statistics";
    loop->run_sync([&] { device.request_stats(); });
    EXPECT_EQ(rings[2].used_idx(), 1);
    EXPECT_EQ(interrupt.queue_signals.back(), 2);
    loop->run_sync([&] { device.request_stats(); });
    EXPECT_EQ(rings[2].used_idx(), 1) << "nothing held: nothing to return";
    device.reset();
}

TEST_F(BalloonDeviceTest, ReportedFreeRangesAreDiscardedInWholePages) {
    // Without F_STATS_VQ the reporting queue is the third (§5.5.2).
    for (uint64_t page = 0; page < 3; ++page)
        fill_page(k_pages + page * 0x1000, 0xcd);
    rings[2].descriptor(0, k_pages + 0x800, 0x2000, k_desc_f_write);  // covers one whole page
    rings[2].publish(0);
    activate(BalloonDevice::k_f_page_reporting, 3);
    ASSERT_EQ(rings[2].used_idx(), 1);
    EXPECT_EQ(byte_at(k_pages + 0x800), 0xcd) << "a partial page is kept";
    EXPECT_EQ(byte_at(k_pages + 0x1000), 0);
    EXPECT_EQ(byte_at(k_pages + 0x2000), 0xcd);
    EXPECT_EQ(device.status().reported_bytes, 0x1000u);
    device.reset();
}

TEST_F(BalloonDeviceTest, TheTargetIsInConfigSpaceAndTheDriverWritesActual) {
    device.set_target_pages(1000);
    EXPECT_EQ(interrupt.config_changes, 0) << "no driver yet: nobody to tell";
    activate(0, 2);
    device.set_target_pages(32768);
    EXPECT_EQ(interrupt.config_changes, 1);
    std::array<uint8_t, 8> config{};
    device.read_config(0, config);
    uint32_t num_pages;
    std::memcpy(&num_pages, config.data(), 4);
    EXPECT_EQ(num_pages, 32768u);
    const uint32_t actual = 12345;
    device.write_config(4, std::span(reinterpret_cast<const uint8_t*>(&actual), 4));
    device.write_config(0, std::span(reinterpret_cast<const uint8_t*>(&actual), 4));  // num_pages is the device's
    EXPECT_EQ(device.status().actual_pages, 12345u);
    EXPECT_EQ(device.status().target_pages, 32768u);

    snapshot::StateWriter writer;
    device.save_state(writer);
    auto bytes = writer.take();
    BalloonDevice restored(loop, std::chrono::milliseconds(0));
    snapshot::StateReader reader(bytes);
    ASSERT_TRUE(restored.restore_state(reader));
    EXPECT_EQ(restored.status().target_pages, 32768u);
    EXPECT_EQ(restored.status().actual_pages, 12345u);
    device.reset();
}

TEST_F(BalloonDeviceTest, ActivateAfterARestoreKeepsActualAndAResetClearsIt) {
    BalloonDevice saved(loop, std::chrono::milliseconds(0));
    saved.set_target_pages(500);
    const uint32_t actual = 500;
    saved.write_config(4, std::span(reinterpret_cast<const uint8_t*>(&actual), 4));
    snapshot::StateWriter writer;
    saved.save_state(writer);
    auto bytes = writer.take();
    snapshot::StateReader reader(bytes);
    ASSERT_TRUE(device.restore_state(reader));
    activate(0, 2);
    EXPECT_EQ(device.status().actual_pages, 500u) << "the restored guest's balloon still holds its pages";
    device.reset();
    EXPECT_EQ(device.status().actual_pages, 0u) << "a reset driver starts with an empty balloon";
    EXPECT_EQ(device.status().target_pages, 500u) << "the host's target stays";
}

TEST_F(BalloonDeviceTest, QuiesceReturnsTheHeldStatsBufferAndHandsQueuesBackByIndex) {
    rings[2].descriptor(0, k_buffers, 10, 0);
    rings[2].publish(0);
    activate(BalloonDevice::k_f_stats_vq | BalloonDevice::k_f_page_reporting, 4);
    EXPECT_EQ(rings[2].used_idx(), 0);
    auto queues = device.quiesce();
    ASSERT_EQ(queues.size(), 4u);
    for (const auto& queue : queues)
        EXPECT_TRUE(queue);
    EXPECT_EQ(rings[2].used_idx(), 1) << "the driver refills it after the restore";
}

TEST_F(BalloonDeviceTest, ABrokenQueueAsksForReset) {
    activate(0, 2);
    rings[0].set_avail_idx(100);  // far ahead
    device.process(Role::Inflate);
    EXPECT_EQ(interrupt.needs_reset, 1);
    device.reset();
}

}  // namespace
}  // namespace corral::vmm::virtio
