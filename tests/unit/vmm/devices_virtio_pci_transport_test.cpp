#include "vmm/devices/virtio/pci_transport.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <thread>

#include "base/event_loop.h"
#include "vmm/devices/virtio/rng/rng_device.h"
#include "virtio_test_driver.h"

namespace corral::vmm::virtio {
namespace {

using testing::RecordingVectors;
using testing::TestRing;

constexpr uint64_t k_bar = 0xC0000000;
constexpr uint64_t k_buffers = 0x40000;
constexpr uint64_t k_queue_size = 0x18, k_queue_enable = 0x1C, k_queue_msix = 0x1A, k_status = 0x14;

class TransportTest : public ::testing::Test {
protected:
    TransportTest() {
        auto vectors = std::make_unique<RecordingVectors>();
        recorder = vectors.get();
        transport = VirtioPciTransport::create(device, memory, k_bar, std::move(vectors)).value();
    }

    uint64_t bar_read(uint64_t offset, size_t size) {
        std::array<uint8_t, 8> bytes{};
        transport->read(offset, std::span(bytes).first(size));
        uint64_t value = 0;
        for (size_t i = 0; i < size; ++i) value |= uint64_t{bytes[i]} << (8 * i);
        return value;
    }
    void bar_write(uint64_t offset, uint64_t value, size_t size) {
        std::array<uint8_t, 8> bytes{};
        for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(value >> (8 * i));
        transport->write(offset, std::span<const uint8_t>(bytes.data(), size));
    }
    uint32_t config_read(uint16_t offset, size_t size = 4) {
        std::array<uint8_t, 4> bytes{};
        transport->read_config(offset, std::span(bytes).first(size));
        return uint32_t{bytes[0]} | uint32_t{bytes[1]} << 8 | uint32_t{bytes[2]} << 16 | uint32_t{bytes[3]} << 24;
    }
    void config_write(uint16_t offset, uint32_t value, size_t size = 4) {
        std::array<uint8_t, 4> bytes{static_cast<uint8_t>(value), static_cast<uint8_t>(value >> 8),
                                     static_cast<uint8_t>(value >> 16), static_cast<uint8_t>(value >> 24)};
        transport->write_config(offset, std::span<const uint8_t>(bytes.data(), size));
    }
    uint8_t status() { return static_cast<uint8_t>(bar_read(k_status, 1)); }
    void set_status(uint8_t value) { bar_write(k_status, value, 1); }
    void set_driver_features(uint64_t features) {
        bar_write(0x08, 0, 4);
        bar_write(0x0C, static_cast<uint32_t>(features), 4);
        bar_write(0x08, 1, 4);
        bar_write(0x0C, static_cast<uint32_t>(features >> 32), 4);
    }
    /// §3.1.1 steps 1-6; returns the status read back.
    uint8_t negotiate(uint64_t features) {
        set_status(k_status_acknowledge);
        set_status(k_status_acknowledge | k_status_driver);
        set_driver_features(features);
        set_status(k_status_acknowledge | k_status_driver | k_status_features_ok);
        return status();
    }
    /// Vendor capabilities by cfg_type: (offset in config space).
    std::map<uint8_t, uint16_t> vendor_capabilities() {
        std::map<uint8_t, uint16_t> found;
        uint16_t at = config_read(0x34, 1);
        for (int guard = 0; at && guard < 48; ++guard) {
            uint8_t id = static_cast<uint8_t>(config_read(at, 1));
            if (id == 0x09) found[static_cast<uint8_t>(config_read(at + 3, 1))] = at;
            if (id == 0x11) found[0x11] = at;
            at = static_cast<uint16_t>(config_read(at + 1, 1));
        }
        return found;
    }
    void setup_queue(const TestRing& ring, uint16_t vector) {
        bar_write(0x16, 0, 2);  // queue_select
        bar_write(k_queue_size, ring.size, 2);
        bar_write(k_queue_msix, vector, 2);
        bar_write(0x20, ring.descriptors, 8);
        bar_write(0x28, ring.avail, 4);  // 64-bit fields in two halves, as Linux writes them
        bar_write(0x2C, 0, 4);
        bar_write(0x30, ring.used, 8);
        bar_write(k_queue_enable, 1, 2);
    }
    void enable_msix(uint16_t capability) {
        config_write(capability + 2, MsixTable::k_control_enable, 2);
        for (uint16_t v = 0; v < 2; ++v) {
            bar_write(VirtioPciTransport::k_msix_table_offset + 16 * v, 0xFEE00000, 4);
            bar_write(VirtioPciTransport::k_msix_table_offset + 16 * v + 8, 0x40 + v, 4);
            bar_write(VirtioPciTransport::k_msix_table_offset + 16 * v + 12, 0, 4);
        }
    }

    GuestMemory memory = GuestMemory::create(1 << 20).value();
    std::shared_ptr<EventLoop> loop = EventLoop::start("transport-test").value();
    std::shared_ptr<RngDevice> device = std::make_shared<RngDevice>(loop);
    RecordingVectors* recorder = nullptr;
    std::shared_ptr<VirtioPciTransport> transport;
};

TEST_F(TransportTest, PciIdentity) {
    EXPECT_EQ(config_read(0x00), 0x10441AF4u) << "0x1040 + type 4";
    EXPECT_EQ(config_read(0x08) & 0xFF, 1u) << "revision 1";
    EXPECT_EQ(config_read(0x2C), 0x00041AF4u);
    EXPECT_EQ(VirtioPciTransport::vector_count(*device), 2);
}

TEST_F(TransportTest, CapabilitiesDescribeBar0) {
    auto caps = vendor_capabilities();
    ASSERT_TRUE(caps.contains(1) && caps.contains(2) && caps.contains(3) && caps.contains(5) && caps.contains(0x11));
    EXPECT_FALSE(caps.contains(4)) << "virtio-rng has no device configuration";
    EXPECT_EQ(config_read(caps[1] + 8), VirtioPciTransport::k_common_offset);
    EXPECT_EQ(config_read(caps[1] + 12), VirtioPciTransport::k_common_size);
    EXPECT_EQ(config_read(caps[2] + 8), VirtioPciTransport::k_notify_offset);
    EXPECT_EQ(config_read(caps[2] + 16), 4u) << "notify_off_multiplier";
    EXPECT_EQ(config_read(caps[3] + 8), VirtioPciTransport::k_isr_offset);
    EXPECT_EQ(config_read(caps[0x11] + 4), VirtioPciTransport::k_msix_table_offset);
    EXPECT_EQ(config_read(caps[0x11] + 8), VirtioPciTransport::k_msix_pba_offset);
}

TEST_F(TransportTest, Bar0Sizing) {
    EXPECT_EQ(config_read(0x10), 0xC0000004u);
    config_write(0x10, 0xFFFFFFFF);
    config_write(0x14, 0xFFFFFFFF);
    EXPECT_EQ(config_read(0x10), 0xFFFF8004u);
    EXPECT_EQ(config_read(0x14), 0xFFFFFFFFu);
    config_write(0x10, 0xC0000000);
    config_write(0x14, 0);
    EXPECT_EQ(config_read(0x10), 0xC0000004u);
}

TEST_F(TransportTest, OffersVersion1AndRingFeatures) {
    bar_write(0x00, 0, 4);
    uint32_t low = static_cast<uint32_t>(bar_read(0x04, 4));
    EXPECT_TRUE(low & (1u << 28)) << "INDIRECT_DESC";
    EXPECT_TRUE(low & (1u << 29)) << "EVENT_IDX";
    bar_write(0x00, 1, 4);
    EXPECT_EQ(bar_read(0x04, 4), 1u) << "VERSION_1 is bit 32";
    bar_write(0x00, 7, 4);
    EXPECT_EQ(bar_read(0x04, 4), 0u);
    EXPECT_EQ(bar_read(0x12, 2), 1u) << "num_queues";
}

TEST_F(TransportTest, FeaturesOkNeedsVersion1) {
    EXPECT_EQ(negotiate(0), k_status_acknowledge | k_status_driver) << "FEATURES_OK refused";
    EXPECT_EQ(transport->counters().features_refused, 1u);
}

TEST_F(TransportTest, FeaturesOkRefusesUnofferedFeatures) {
    EXPECT_EQ(negotiate(k_f_version_1 | (1ull << 5)) & k_status_features_ok, 0);
}

TEST_F(TransportTest, FeaturesAreFixedAfterFeaturesOk) {
    EXPECT_EQ(negotiate(k_f_version_1), k_status_acknowledge | k_status_driver | k_status_features_ok);
    bar_write(0x08, 0, 4);
    bar_write(0x0C, 1u << 28, 4);
    EXPECT_EQ(bar_read(0x0C, 4), 0u);
}

TEST_F(TransportTest, StatusOnlyGrowsAndDriverOkNeedsFeaturesOk) {
    set_status(k_status_acknowledge | k_status_driver);
    set_status(k_status_acknowledge);  // clearing DRIVER without a reset
    EXPECT_EQ(status(), k_status_acknowledge | k_status_driver);
    set_status(k_status_acknowledge | k_status_driver | k_status_driver_ok);
    EXPECT_EQ(status() & k_status_driver_ok, 0);
    EXPECT_EQ(transport->counters().bad_status_writes, 2u);
}

TEST_F(TransportTest, ResetForgetsQueuesAndFeatures) {
    negotiate(k_f_version_1);
    bar_write(0x16, 0, 2);
    bar_write(k_queue_size, 16, 2);
    bar_write(k_queue_enable, 1, 2);
    EXPECT_EQ(bar_read(k_queue_size, 2), 16u);
    set_status(0);
    EXPECT_EQ(status(), 0);
    EXPECT_EQ(bar_read(k_queue_size, 2), RngDevice::k_queue_size);
    EXPECT_EQ(bar_read(k_queue_enable, 2), 0u);
    bar_write(0x08, 1, 4);
    EXPECT_EQ(bar_read(0x0C, 4), 0u);
    EXPECT_EQ(transport->counters().resets, 1u);
}

TEST_F(TransportTest, QueueSelectBeyondTheQueuesReadsSizeZero) {
    bar_write(0x16, 5, 2);
    EXPECT_EQ(bar_read(k_queue_size, 2), 0u);
    bar_write(k_queue_enable, 1, 2);  // ignored
    EXPECT_EQ(bar_read(k_queue_enable, 2), 0u);
}

TEST_F(TransportTest, UnusableMsixVectorsReadNoVector) {
    bar_write(0x16, 0, 2);
    bar_write(k_queue_msix, 1, 2);
    EXPECT_EQ(bar_read(k_queue_msix, 2), 1u);
    bar_write(k_queue_msix, 2, 2);
    EXPECT_EQ(bar_read(k_queue_msix, 2), k_no_vector);
    bar_write(0x10, 9, 2);
    EXPECT_EQ(bar_read(0x10, 2), k_no_vector);
}

TEST_F(TransportTest, DriverOkWithRingsOutsideRamNeedsReset) {
    enable_msix(vendor_capabilities()[0x11]);
    bar_write(0x10, 0, 2);  // config changes on vector 0
    negotiate(k_f_version_1);
    TestRing ring{memory, 8, 0xF0000000};
    setup_queue(ring, 1);
    set_status(k_status_acknowledge | k_status_driver | k_status_features_ok | k_status_driver_ok);
    EXPECT_NE(status() & k_status_needs_reset, 0);
    EXPECT_EQ(transport->counters().activation_failures, 1u);
    EXPECT_EQ(recorder->triggered(), std::vector<uint16_t>{0}) << "configuration change interrupt";
    EXPECT_EQ(bar_read(VirtioPciTransport::k_isr_offset, 1) & 2, 2u);
    EXPECT_EQ(bar_read(VirtioPciTransport::k_isr_offset, 1), 0u) << "reading ISR clears it";
    set_status(0);
    EXPECT_EQ(status(), 0) << "reset clears NEEDS_RESET";
}

TEST_F(TransportTest, EndToEndEntropyRequest) {
    enable_msix(vendor_capabilities()[0x11]);
    ASSERT_NE(negotiate(k_f_version_1 | k_f_ring_event_idx) & k_status_features_ok, 0);
    TestRing ring{memory, 8};
    ring.set_used_event(0);
    setup_queue(ring, 1);
    set_status(k_status_acknowledge | k_status_driver | k_status_features_ok | k_status_driver_ok);
    ASSERT_EQ(status() & k_status_needs_reset, 0);
    ring.descriptor(0, k_buffers, 32, k_desc_f_write);
    ring.publish(0);
    bar_write(VirtioPciTransport::k_notify_offset, 0, 2);  // the MMIO fallback of the ioeventfd
    for (int i = 0; i < 500 && ring.used_idx() != 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_EQ(ring.used_idx(), 1);
    EXPECT_EQ(ring.used_element(0), std::make_pair(0u, 32u));
    const uint8_t* bytes = memory.host_pointer(k_buffers, 32);
    EXPECT_FALSE(std::all_of(bytes, bytes + 32, [](uint8_t b) { return b == 0; }));
    for (int i = 0; i < 500 && recorder->triggered().empty(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    EXPECT_EQ(recorder->triggered(), std::vector<uint16_t>{1}) << "queue 0's MSI-X vector";
    EXPECT_EQ(ring.avail_event(), 1) << "EVENT_IDX: the device asked for the next notification";
    EXPECT_EQ(device->counters().requests, 1u);
    set_status(0);
    ring.publish(0);
    bar_write(VirtioPciTransport::k_notify_offset, 0, 2);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(ring.used_idx(), 1) << "reset stopped the device";
}

TEST_F(TransportTest, PciCfgWindowReachesTheBar) {
    uint16_t cap = vendor_capabilities()[5];
    config_write(cap + 4, 0, 1);     // bar 0
    config_write(cap + 8, 0x12);     // offset of num_queues
    config_write(cap + 12, 2);       // length
    EXPECT_EQ(config_read(cap + 16), 1u);
    config_write(cap + 8, 0x16);     // queue_select, through the window
    config_write(cap + 16, 3, 2);
    EXPECT_EQ(bar_read(0x16, 2), 3u);
}

TEST_F(TransportTest, HostileBarAndConfigAccessesAreHarmless) {
    // Every offset, every size, all-ones and zeros: nothing may crash or escape.
    for (uint64_t offset = 0; offset < VirtioPciTransport::k_bar_size; offset += 1) {
        for (size_t size : {1, 2, 4, 8}) {
            bar_write(offset, ~uint64_t{0}, size);
            bar_read(offset, size);
            bar_write(offset, 0, size);
        }
    }
    for (uint16_t offset = 0; offset < 256; ++offset) {
        config_write(offset, 0xFFFFFFFF, 1);
        config_read(offset, 1);
    }
    // Afterwards the device is still what a driver expects: a reset brings it back, its
    // identity is intact, and a fresh negotiation succeeds.
    set_status(0);
    EXPECT_EQ(status(), 0);
    EXPECT_EQ(config_read(0x00, 2), 0x1AF4u) << "vendor id";
    EXPECT_EQ(negotiate(k_f_version_1), k_status_acknowledge | k_status_driver | k_status_features_ok);
}

}  // namespace
}  // namespace corral::vmm::virtio
