#include "vmm/devices/virtio/net/net_device.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "../net/private_netns.h"
#include "base/event_fd.h"
#include "virtio_test_driver.h"

namespace corral::vmm::virtio {
namespace {

using corral::net::testing::NamespacedTap;
using corral::net::testing::test_frame;
using testing::RecordingInterrupt;
using testing::TestRing;

constexpr uint64_t k_buffers = 0x40000;
constexpr uint64_t k_all_features = k_f_version_1 | k_net_f_mac | k_net_f_status | k_net_f_csum |
                                    k_net_f_guest_csum | k_net_f_host_tso4 | k_net_f_host_tso6;

template <typename Predicate>
bool wait_for(Predicate done) {
    for (int i = 0; i < 1000; ++i) {
        if (done()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return done();
}

/// A NetDevice on a real tap in a private network namespace, with its RX and TX rings in
/// simulated guest memory (RX ring and TX ring in separate areas).
class NetDeviceTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (auto reason = corral::net::testing::netns_skip_reason()) GTEST_SKIP() << *reason;
        ASSERT_TRUE(ns.tap && ns.packet.valid()) << ns.error;
        device = std::make_unique<NetDevice>(loop, std::move(*ns.tap), std::array<uint8_t, 6>{0x52, 0x54, 0, 1, 2, 3},
                                             limits);
    }
    void TearDown() override {
        if (device) device->reset();
    }
    void activate(uint64_t features = k_all_features) {
        std::vector<std::optional<ActiveQueue>> queues(2);
        queues[0].emplace(ActiveQueue{Virtqueue::create(memory, rx.layout(), {}).value(), rx_notify.fd()});
        queues[1].emplace(ActiveQueue{Virtqueue::create(memory, tx.layout(), {}).value(), tx_notify.fd()});
        ASSERT_TRUE(device->activate(ActivateContext{memory, features, std::move(queues), interrupt}));
    }
    /// Puts a virtio_net_hdr_v1 (all zero but `flags`/`gso`) then `frame` at `at`.
    void write_packet(uint64_t at, const std::vector<uint8_t>& frame, uint8_t flags = 0, uint8_t gso = 0) {
        VirtioNetHeader header{};
        header.flags = flags;
        header.gso_type = gso;
        memory.write_object(at, header).value();
        std::memcpy(memory.host_pointer(at + 12, frame.size()), frame.data(), frame.size());
    }

    GuestMemory memory = GuestMemory::create(1 << 20).value();
    TestRing rx{memory, 8, 0x1000, 0x2000, 0x3000};
    TestRing tx{memory, 8, 0x5000, 0x6000, 0x7000};
    EventFd rx_notify = EventFd::create(EFD_NONBLOCK).value();
    EventFd tx_notify = EventFd::create(EFD_NONBLOCK).value();
    std::shared_ptr<EventLoop> loop = EventLoop::start("net-test").value();
    RecordingInterrupt interrupt;
    NamespacedTap ns;
    NetRateLimits limits;
    std::unique_ptr<NetDevice> device;
};

/// 1000 bytes per second each way (a burst of 1000): two 500-byte frames pass at once, a third
/// waits half a second.
class ThrottledNetDeviceTest : public NetDeviceTest {
protected:
    void SetUp() override {
        limits.rx_bytes = TokenBucketConfig{1000, 0};
        limits.tx_bytes = TokenBucketConfig{1000, 0};
        NetDeviceTest::SetUp();
    }
};

TEST_F(NetDeviceTest, OffersFeaturesAndConfig) {
    uint64_t features = device->device_features();
    EXPECT_TRUE(features & k_net_f_mac);
    EXPECT_TRUE(features & k_net_f_status);
    EXPECT_TRUE(features & k_net_f_csum);
    EXPECT_TRUE(features & k_net_f_guest_csum) << "a Linux tap takes TUN_F_CSUM";
    EXPECT_TRUE(features & k_net_f_mrg_rxbuf) << "small frames must not take 64 KiB buffers";
    std::array<uint8_t, 10> config{};
    device->read_config(0, config);
    EXPECT_EQ(config, (std::array<uint8_t, 10>{0x52, 0x54, 0, 1, 2, 3, 1, 0, 1, 0}));
}

TEST_F(NetDeviceTest, TransmitsAFrameToTheTap) {
    auto frame = test_frame(60);
    // Header split over two descriptors, frame in a third: the device gathers it.
    write_packet(k_buffers, frame);
    tx.descriptor(0, k_buffers, 4, k_desc_f_next, 1);
    tx.descriptor(1, k_buffers + 4, 8, k_desc_f_next, 2);
    tx.descriptor(2, k_buffers + 12, 60, 0);
    tx.publish(0);
    activate();  // serves what was made available before DRIVER_OK
    auto received = ns.receive();
    ASSERT_TRUE(received);
    EXPECT_EQ(*received, frame);
    ASSERT_TRUE(wait_for([&] { return tx.used_idx() == 1; }));
    EXPECT_EQ(tx.used_element(0), std::make_pair(0u, 0u));
    auto counters = device->net_counters();
    EXPECT_EQ(counters.tx_frames, 1u);
    EXPECT_EQ(counters.tx_bytes, 60u);
    EXPECT_EQ(counters.tx_rejected, 0u);
    EXPECT_EQ(interrupt.queue_signals, std::vector<uint16_t>{NetDevice::k_tx_queue});
}

TEST_F(NetDeviceTest, RejectsHostileTransmitChains) {
    activate(k_f_version_1 | k_net_f_mac);  // no CSUM, no HOST_TSO negotiated
    // 1: shorter than a header.
    tx.descriptor(0, k_buffers, 8, 0);
    tx.publish(0);
    // 2: header + 65551 bytes, one more than the largest frame.
    write_packet(k_buffers + 0x100, test_frame(100));
    tx.descriptor(1, k_buffers + 0x100, 12 + NetDevice::k_max_frame + 1, 0);
    tx.publish(1);
    // 3: a TSO frame the driver did not negotiate.
    write_packet(k_buffers + 0x20000, test_frame(100), 0, k_net_hdr_gso_tcpv4);
    tx.descriptor(2, k_buffers + 0x20000, 112, 0);
    tx.publish(2);
    // 4: NEEDS_CSUM without CSUM.
    write_packet(k_buffers + 0x21000, test_frame(100), k_net_hdr_f_needs_csum);
    tx.descriptor(3, k_buffers + 0x21000, 112, 0);
    tx.publish(3);
    // 5: a good one after all that.
    write_packet(k_buffers + 0x22000, test_frame(70, 3));
    tx.descriptor(4, k_buffers + 0x22000, 82, 0);
    tx.publish(4);
    tx_notify.signal();
    auto received = ns.receive();
    ASSERT_TRUE(received);
    EXPECT_EQ(*received, test_frame(70, 3)) << "only the valid frame reaches the tap";
    ASSERT_TRUE(wait_for([&] { return tx.used_idx() == 5; }));
    for (uint16_t slot = 0; slot < 5; ++slot) EXPECT_EQ(tx.used_element(slot).first, slot);
    auto counters = device->net_counters();
    EXPECT_EQ(counters.tx_rejected, 4u);
    EXPECT_EQ(counters.tx_frames, 1u);
    EXPECT_EQ(device->counters().rejected_chains, 4u);
    EXPECT_FALSE(ns.receive(100)) << "nothing else was written";
}

TEST_F(NetDeviceTest, ReceivesAFrameIntoAWritableChain) {
    activate();
    rx.descriptor(0, k_buffers, 12, k_desc_f_write | k_desc_f_next, 1);  // header alone, as Linux's big packets
    rx.descriptor(1, k_buffers + 0x1000, 1514, k_desc_f_write);
    rx.publish(0);
    rx_notify.signal();
    auto frame = test_frame(98);
    ASSERT_TRUE(ns.send(frame));
    ASSERT_TRUE(wait_for([&] { return rx.used_idx() == 1; }));
    EXPECT_EQ(rx.used_element(0), std::make_pair(0u, 12u + 98u));
    auto header = memory.read_object<VirtioNetHeader>(k_buffers).value();
    EXPECT_EQ(header.num_buffers, 1);
    EXPECT_EQ(std::memcmp(memory.host_pointer(k_buffers + 0x1000, 98), frame.data(), 98), 0);
    auto counters = device->net_counters();
    EXPECT_EQ(counters.rx_frames, 1u);
    EXPECT_EQ(counters.rx_bytes, 98u);
}

TEST_F(NetDeviceTest, ReadOnlyRxBufferIsRejectedAndTheFrameWaitsForAGoodOne) {
    activate();
    rx.descriptor(0, k_buffers, 1526, 0);  // device-readable: useless for receiving
    rx.publish(0);
    rx.descriptor(1, k_buffers + 0x1000, 1526, k_desc_f_write);
    rx.publish(1);
    rx_notify.signal();
    auto frame = test_frame(64);
    ASSERT_TRUE(ns.send(frame));
    ASSERT_TRUE(wait_for([&] { return rx.used_idx() == 2; }));
    EXPECT_EQ(rx.used_element(0), std::make_pair(0u, 0u));
    EXPECT_EQ(rx.used_element(1), std::make_pair(1u, 12u + 64u));
    EXPECT_EQ(std::memcmp(memory.host_pointer(k_buffers + 0x1000 + 12, 64), frame.data(), 64), 0);
    EXPECT_EQ(device->net_counters().rx_rejected, 1u);
    EXPECT_EQ(device->counters().rejected_chains, 1u);
}

TEST_F(NetDeviceTest, FrameLargerThanTheBufferIsDroppedAndCounted) {
    activate();
    rx.descriptor(0, k_buffers, 12 + 40, k_desc_f_write);
    rx.publish(0);
    rx.descriptor(1, k_buffers + 0x1000, 1526, k_desc_f_write);
    rx.publish(1);
    rx_notify.signal();
    ASSERT_TRUE(ns.send(test_frame(200)));
    ASSERT_TRUE(wait_for([&] { return rx.used_idx() == 1; }));
    EXPECT_EQ(rx.used_element(0), std::make_pair(0u, 0u));
    EXPECT_EQ(device->net_counters().rx_dropped, 1u);
    ASSERT_TRUE(ns.send(test_frame(60)));
    ASSERT_TRUE(wait_for([&] { return rx.used_idx() == 2; }));
    EXPECT_EQ(rx.used_element(1), std::make_pair(1u, 72u)) << "the next frame uses the next buffer";
}

TEST_F(NetDeviceTest, WithoutRxBuffersTheTapIsParkedUntilTheGuestNotifies) {
    activate();
    ASSERT_TRUE(ns.send(test_frame(60, 1)));
    ASSERT_TRUE(ns.send(test_frame(61, 2)));
    ASSERT_TRUE(wait_for([&] { return device->net_counters().rx_stalls >= 1; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    uint64_t stalls = device->net_counters().rx_stalls;
    EXPECT_EQ(stalls, 1u) << "parked: the readable tap does not spin the loop";
    rx.descriptor(0, k_buffers, 1526, k_desc_f_write);
    rx.publish(0);
    rx.descriptor(1, k_buffers + 0x1000, 1526, k_desc_f_write);
    rx.publish(1);
    rx_notify.signal();
    ASSERT_TRUE(wait_for([&] { return rx.used_idx() == 2; }));
    EXPECT_EQ(rx.used_element(0).second, 72u);
    EXPECT_EQ(rx.used_element(1).second, 73u);
    EXPECT_EQ(memory.read_object<uint8_t>(k_buffers + 12 + 14).value(), static_cast<uint8_t>(14 + 1));
    EXPECT_EQ(device->net_counters().rx_frames, 2u);
}

TEST_F(NetDeviceTest, WithMergeableBuffersAFrameSpansSeveralChainsPublishedTogether) {
    activate(k_all_features | k_net_f_mrg_rxbuf);
    for (uint16_t i = 0; i < 4; ++i) {
        rx.descriptor(i, k_buffers + 0x1000 * i, 500, k_desc_f_write);  // as Linux's mergeable buffers
        rx.publish(i);
    }
    rx_notify.signal();
    auto frame = test_frame(1400);  // 1412 with the header: 500 + 500 + 412
    ASSERT_TRUE(ns.send(frame));
    ASSERT_TRUE(wait_for([&] { return rx.used_idx() == 3; }));
    EXPECT_EQ(rx.used_element(0), std::make_pair(0u, 500u));
    EXPECT_EQ(rx.used_element(1), std::make_pair(1u, 500u));
    EXPECT_EQ(rx.used_element(2), std::make_pair(2u, 412u));
    EXPECT_EQ(memory.read_object<VirtioNetHeader>(k_buffers).value().num_buffers, 3);
    EXPECT_EQ(std::memcmp(memory.host_pointer(k_buffers + 12, 488), frame.data(), 488), 0);
    EXPECT_EQ(std::memcmp(memory.host_pointer(k_buffers + 0x1000, 500), frame.data() + 488, 500), 0);
    EXPECT_EQ(std::memcmp(memory.host_pointer(k_buffers + 0x2000, 412), frame.data() + 988, 412), 0);
    // A small frame after it takes the one buffer left.
    ASSERT_TRUE(ns.send(test_frame(60, 7)));
    ASSERT_TRUE(wait_for([&] { return rx.used_idx() == 4; }));
    EXPECT_EQ(rx.used_element(3), std::make_pair(3u, 72u));
    EXPECT_EQ(memory.read_object<VirtioNetHeader>(k_buffers + 0x3000).value().num_buffers, 1);
    auto counters = device->net_counters();
    EXPECT_EQ(counters.rx_frames, 2u);
    EXPECT_EQ(counters.rx_bytes, 1460u);
    EXPECT_EQ(counters.rx_dropped, 0u);
}

TEST_F(NetDeviceTest, WithMergeableBuffersAFrameWaitsForEnoughBuffersAndIsNotDropped) {
    activate(k_all_features | k_net_f_mrg_rxbuf);
    rx.descriptor(0, k_buffers, 500, k_desc_f_write);
    rx.publish(0);
    rx_notify.signal();
    auto frame = test_frame(1400);
    ASSERT_TRUE(ns.send(frame));
    ASSERT_TRUE(wait_for([&] { return device->net_counters().rx_stalls >= 1; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(rx.used_idx(), 0) << "no part of the frame is published before all of it fits";
    EXPECT_TRUE(interrupt.queue_signals.empty());
    rx.descriptor(1, k_buffers + 0x1000, 500, k_desc_f_write);
    rx.publish(1);
    rx.descriptor(2, k_buffers + 0x2000, 1526, k_desc_f_write);
    rx.publish(2);
    rx_notify.signal();
    ASSERT_TRUE(wait_for([&] { return rx.used_idx() == 3; }));
    EXPECT_EQ(rx.used_element(2), std::make_pair(2u, 412u));
    EXPECT_EQ(memory.read_object<VirtioNetHeader>(k_buffers).value().num_buffers, 3);
    EXPECT_EQ(std::memcmp(memory.host_pointer(k_buffers + 0x2000, 412), frame.data() + 988, 412), 0);
    auto counters = device->net_counters();
    EXPECT_EQ(counters.rx_frames, 1u);
    EXPECT_EQ(counters.rx_dropped, 0u);
}

TEST_F(NetDeviceTest, QuiesceHandsBackTheBuffersHeldForAWaitingFrame) {
    activate(k_all_features | k_net_f_mrg_rxbuf);
    rx.descriptor(0, k_buffers, 500, k_desc_f_write);
    rx.publish(0);
    rx_notify.signal();
    ASSERT_TRUE(ns.send(test_frame(1400)));  // needs three such buffers: the one posted is held
    ASSERT_TRUE(wait_for([&] { return device->net_counters().rx_stalls >= 1; }));
    auto queues = device->quiesce();
    ASSERT_TRUE(queues[0].has_value());
    EXPECT_EQ(queues[0]->queue.position().next_avail, 0)
        << "the held chain is back in the avail ring, for the snapshot and the restored device";
    EXPECT_EQ(rx.used_idx(), 0);
}

TEST_F(NetDeviceTest, ResetStopsServingTheQueues) {
    activate();
    device->reset();
    rx.descriptor(0, k_buffers, 1526, k_desc_f_write);
    rx.publish(0);
    rx_notify.signal();
    ASSERT_TRUE(ns.send(test_frame(60)));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    EXPECT_EQ(rx.used_idx(), 0);
}

TEST_F(ThrottledNetDeviceTest, TransmitWaitsInTheRingForTokensAndResumesOnItsOwn) {
    auto start = std::chrono::steady_clock::now();
    for (uint16_t i = 0; i < 3; ++i) {
        write_packet(k_buffers + 0x1000 * i, test_frame(500, static_cast<uint8_t>(i)));
        tx.descriptor(i, k_buffers + 0x1000 * i, 12 + 500, 0);
        tx.publish(i);
    }
    activate();
    for (uint8_t i = 0; i < 2; ++i) {
        auto received = ns.receive();
        ASSERT_TRUE(received);
        EXPECT_EQ(*received, test_frame(500, i));
    }
    ASSERT_TRUE(wait_for([&] { return tx.used_idx() == 2; }));
    EXPECT_EQ(device->net_counters().tx_throttled, 1u);
    EXPECT_EQ(tx.used_idx(), 2) << "the third frame stays in the ring: not used, not dropped";
    tx_notify.signal();  // a guest kick while throttled changes nothing
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(tx.used_idx(), 2);

    auto third = ns.receive(3000);  // no kick needed: the limiter's timer resumes the queue
    ASSERT_TRUE(third);
    EXPECT_EQ(*third, test_frame(500, 2));
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(400))
        << "500 bytes at 1000 bytes/s after the burst";
    ASSERT_TRUE(wait_for([&] { return tx.used_idx() == 3; }));
    auto counters = device->net_counters();
    EXPECT_EQ(counters.tx_frames, 3u);
    EXPECT_EQ(counters.tx_dropped, 0u);
    EXPECT_EQ(counters.tx_throttled, 1u) << "held once, counted once";
}

TEST_F(ThrottledNetDeviceTest, ReceivedFramesWaitForTokensAndAreNotDropped) {
    activate();
    for (uint16_t i = 0; i < 4; ++i) {
        rx.descriptor(i, k_buffers + 0x1000 * i, 1526, k_desc_f_write);
        rx.publish(i);
    }
    rx_notify.signal();
    auto start = std::chrono::steady_clock::now();
    for (uint8_t i = 0; i < 3; ++i) ASSERT_TRUE(ns.send(test_frame(500, i)));
    ASSERT_TRUE(wait_for([&] { return rx.used_idx() == 2; }));
    EXPECT_TRUE(wait_for([&] { return device->net_counters().rx_throttled == 1; }));
    ASSERT_TRUE(wait_for([&] { return rx.used_idx() == 3; }));  // up to 2 s
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(400));
    EXPECT_EQ(std::memcmp(memory.host_pointer(k_buffers + 0x2000 + 12, 500), test_frame(500, 2).data(), 500), 0)
        << "the held frame is delivered intact, in order";
    auto counters = device->net_counters();
    EXPECT_EQ(counters.rx_frames, 3u);
    EXPECT_EQ(counters.rx_dropped, 0u);
    EXPECT_EQ(counters.rx_throttled, 1u);
}

}  // namespace
}  // namespace corral::vmm::virtio
