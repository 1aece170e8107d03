#include "vmm/devices/virtio/rng/rng_device.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include <algorithm>

#include "base/event_fd.h"
#include "virtio_test_driver.h"

namespace corral::vmm::virtio {
namespace {

using testing::RecordingInterrupt;
using testing::TestRing;

constexpr uint64_t k_buffers = 0x40000;

class RngDeviceTest : public ::testing::Test {
protected:
    void activate() {
        std::vector<std::optional<ActiveQueue>> queues(1);
        queues[0].emplace(ActiveQueue{Virtqueue::create(memory, ring.layout(), {}).value(), notify.fd()});
        ASSERT_TRUE(device.activate(ActivateContext{memory, k_f_version_1, std::move(queues), interrupt}));
    }

    GuestMemory memory = GuestMemory::create(1 << 20).value();
    TestRing ring{memory, 8};
    EventFd notify = EventFd::create(EFD_NONBLOCK).value();
    std::shared_ptr<EventLoop> loop = EventLoop::start("rng-test").value();
    RecordingInterrupt interrupt;
    RngDevice device{loop};
};

TEST_F(RngDeviceTest, FillsWritableBuffersWithRandomBytes) {
    ring.descriptor(0, k_buffers, 64, k_desc_f_write);
    ring.publish(0);
    activate();  // serves what was made available before DRIVER_OK
    ASSERT_EQ(ring.used_idx(), 1);
    EXPECT_EQ(ring.used_element(0), std::make_pair(0u, 64u));
    const uint8_t* bytes = memory.host_pointer(k_buffers, 64);
    EXPECT_FALSE(std::all_of(bytes, bytes + 64, [](uint8_t b) { return b == 0; }));
    EXPECT_EQ(interrupt.queue_signals, std::vector<uint16_t>{0});
    auto counters = device.counters();
    EXPECT_EQ(counters.requests, 1u);
    EXPECT_EQ(counters.bytes, 64u);
    device.reset();
}

TEST_F(RngDeviceTest, BoundsBytesPerRequest) {
    ring.descriptor(0, k_buffers, 0x30000, k_desc_f_write | k_desc_f_next, 1);
    ring.descriptor(1, k_buffers + 0x30000, 0x30000, k_desc_f_write);
    ring.publish(0);
    activate();
    ASSERT_EQ(ring.used_idx(), 1);
    EXPECT_EQ(ring.used_element(0).second, RngDevice::k_max_bytes_per_request);
}

TEST_F(RngDeviceTest, NotificationsAreServedOnTheEventLoop) {
    activate();
    ring.descriptor(2, k_buffers, 16, k_desc_f_write);
    ring.publish(2);
    notify.signal();
    for (int i = 0; i < 500 && ring.used_idx() != 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    EXPECT_EQ(ring.used_idx(), 1);
    device.reset();
    ring.publish(2);
    notify.signal();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(ring.used_idx(), 1) << "after reset the device leaves the queue alone";
}

TEST_F(RngDeviceTest, MalformedChainsAreCountedAndABrokenQueueAsksForReset) {
    ring.descriptor(0, k_buffers, 0, k_desc_f_write);  // zero length
    ring.publish(0);
    activate();
    EXPECT_EQ(device.counters().rejected_chains, 1u);
    EXPECT_EQ(ring.used_element(0), std::make_pair(0u, 0u));
    ring.set_avail_idx(100);  // far ahead
    device.process_queue();
    EXPECT_EQ(interrupt.needs_reset, 1);
    device.process_queue();
    EXPECT_EQ(interrupt.needs_reset, 1) << "reported once";
}

}  // namespace
}  // namespace corral::vmm::virtio
