#include "vmm/devices/virtio/console/console_device.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include <cstring>
#include <string>

#include "base/event_fd.h"
#include "virtio_test_driver.h"

namespace corral::vmm::virtio {
namespace {

using testing::RecordingInterrupt;
using testing::TestRing;

constexpr uint64_t k_buffers = 0x40000;

class ConsoleDeviceTest : public ::testing::Test {
protected:
    void activate(bool with_transmit = true) {
        std::vector<std::optional<ActiveQueue>> queues(2);
        queues[0].emplace(ActiveQueue{Virtqueue::create(memory, rx.layout(), {}).value(), rx_notify.fd()});
        if (with_transmit)
            queues[1].emplace(ActiveQueue{Virtqueue::create(memory, tx.layout(), {}).value(), tx_notify.fd()});
        result = device.activate(ActivateContext{memory, k_f_version_1, std::move(queues), interrupt});
    }
    void put_text(uint64_t address, const std::string& text) {
        memory.write(address, std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size())).value();
    }

    GuestMemory memory = GuestMemory::create(1 << 20).value();
    TestRing rx{memory, 8, 0x1000, 0x2000, 0x3000};
    TestRing tx{memory, 8, 0x5000, 0x6000, 0x7000};
    EventFd rx_notify = EventFd::create(EFD_NONBLOCK).value();
    EventFd tx_notify = EventFd::create(EFD_NONBLOCK).value();
    std::shared_ptr<EventLoop> loop = EventLoop::start("console-test").value();
    RecordingInterrupt interrupt;
    std::string output;
    ConsoleDevice device{loop, [this](std::span<const uint8_t> bytes) { output.append(bytes.begin(), bytes.end()); }};
    Result<void> result;
};

TEST_F(ConsoleDeviceTest, TransmitsToTheOutputSink) {
    put_text(k_buffers, "hello-");
    put_text(k_buffers + 0x100, "hvc\n");
    tx.descriptor(0, k_buffers, 6, k_desc_f_next, 1);
    tx.descriptor(1, k_buffers + 0x100, 4, 0);
    tx.publish(0);
    activate();
    ASSERT_TRUE(result);
    EXPECT_EQ(output, "hello-hvc\n");
    EXPECT_EQ(tx.used_idx(), 1);
    EXPECT_EQ(tx.used_element(0), std::make_pair(0u, 0u));
    EXPECT_EQ(interrupt.queue_signals, std::vector<uint16_t>{ConsoleDevice::k_transmit_queue});
    auto counters = device.counters();
    EXPECT_EQ(counters.requests, 1u);
    EXPECT_EQ(counters.bytes, 10u);
    EXPECT_EQ(rx.used_idx(), 0) << "no input: the receive queue is left alone";
}

TEST_F(ConsoleDeviceTest, ConfigSpaceSaysOnePort) {
    std::array<uint8_t, 12> config{};
    device.read_config(0, config);
    EXPECT_EQ(config[4], 1) << "max_nr_ports";
    EXPECT_EQ(config[0], 0);
}

TEST_F(ConsoleDeviceTest, NeedsTheTransmitQueue) {
    activate(/*with_transmit=*/false);
    EXPECT_FALSE(result.has_value());
}

TEST_F(ConsoleDeviceTest, MalformedChainsAreCountedNotPrinted) {
    tx.descriptor(0, 0xFFFFF000, 64, 0);  // outside RAM
    tx.publish(0);
    activate();
    EXPECT_EQ(output, "");
    EXPECT_EQ(device.counters().rejected_chains, 1u);
}

}  // namespace
}  // namespace corral::vmm::virtio
