// Snapshots of virtio devices: the PCI transport with its queues and MSI-X table round-trips
// into a new transport that continues where the old one stopped, devices hand their queues
// back when quiesced (completing what is in flight), and bad states are refused.
#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include <array>
#include <chrono>
#include <thread>

#include "base/event_fd.h"
#include "base/event_loop.h"
#include "memory_disk.h"
#include "virtio_test_driver.h"
#include "vmm/devices/virtio/block/block_device.h"
#include "vmm/devices/virtio/console/console_device.h"
#include "vmm/devices/virtio/pci_transport.h"
#include "vmm/devices/virtio/rng/rng_device.h"
#include "vmm/snapshot/state_stream.h"

namespace corral::vmm::virtio {
namespace {

using namespace std::chrono_literals;
using testing::RecordingVectors;
using testing::TestRing;

constexpr uint64_t k_bar = 0xC0000000;
constexpr uint64_t k_buffers = 0x40000;

std::vector<uint8_t> encode(const VirtioPciState& state) {
    snapshot::StateWriter writer;
    state.encode(writer);
    return writer.take();
}

Result<VirtioPciState> decode(std::span<const uint8_t> bytes) {
    return snapshot::decode_all<VirtioPciState>(bytes, "test", [](snapshot::StateReader& r) {
        return VirtioPciState::decode(r);
    });
}

/// A guest driver of one transport (the BAR and config-space accesses Linux makes).
struct Driver {
    VirtioPciTransport& transport;

    uint64_t bar_read(uint64_t offset, size_t size) {
        std::array<uint8_t, 8> bytes{};
        transport.read(offset, std::span(bytes).first(size));
        uint64_t value = 0;
        for (size_t i = 0; i < size; ++i) value |= uint64_t{bytes[i]} << (8 * i);
        return value;
    }
    void bar_write(uint64_t offset, uint64_t value, size_t size) {
        std::array<uint8_t, 8> bytes{};
        for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(value >> (8 * i));
        transport.write(offset, std::span<const uint8_t>(bytes.data(), size));
    }
    void config_write(uint16_t offset, uint32_t value, size_t size) {
        std::array<uint8_t, 4> bytes{static_cast<uint8_t>(value), static_cast<uint8_t>(value >> 8),
                                     static_cast<uint8_t>(value >> 16), static_cast<uint8_t>(value >> 24)};
        transport.write_config(offset, std::span<const uint8_t>(bytes.data(), size));
    }
    uint16_t msix_capability() {
        std::array<uint8_t, 1> b{};
        transport.read_config(0x34, b);
        uint16_t at = b[0];
        for (int guard = 0; at && guard < 48; ++guard) {
            transport.read_config(at, b);
            if (b[0] == 0x11) return at;
            transport.read_config(static_cast<uint16_t>(at + 1), b);
            at = b[0];
        }
        return 0;
    }
    /// MSI-X on, features negotiated, queue 0 set up on `ring` with vector 1, DRIVER_OK.
    void bring_up(const TestRing& ring) {
        config_write(static_cast<uint16_t>(msix_capability() + 2), MsixTable::k_control_enable, 2);
        for (uint16_t v = 0; v < 2; ++v) {
            bar_write(VirtioPciTransport::k_msix_table_offset + 16 * v, 0xFEE00000, 4);
            bar_write(VirtioPciTransport::k_msix_table_offset + 16 * v + 8, 0x40 + v, 4);
            bar_write(VirtioPciTransport::k_msix_table_offset + 16 * v + 12, 0, 4);
        }
        bar_write(0x14, k_status_acknowledge | k_status_driver, 1);
        uint64_t features = k_f_version_1 | k_f_ring_event_idx;
        bar_write(0x08, 0, 4);
        bar_write(0x0C, static_cast<uint32_t>(features), 4);
        bar_write(0x08, 1, 4);
        bar_write(0x0C, static_cast<uint32_t>(features >> 32), 4);
        bar_write(0x14, k_status_acknowledge | k_status_driver | k_status_features_ok, 1);
        bar_write(0x10, 0, 2);  // config vector 0
        bar_write(0x16, 0, 2);
        bar_write(0x18, ring.size, 2);
        bar_write(0x1A, 1, 2);
        bar_write(0x20, ring.descriptors, 8);
        bar_write(0x28, ring.avail, 8);
        bar_write(0x30, ring.used, 8);
        bar_write(0x1C, 1, 2);
        bar_write(0x14, k_status_acknowledge | k_status_driver | k_status_features_ok | k_status_driver_ok, 1);
    }
    /// What the guest can read of the common configuration and the MSI-X table.
    std::vector<uint64_t> visible_state() {
        std::vector<uint64_t> values;
        for (uint64_t offset : {0x00ull, 0x08ull, 0x10ull, 0x12ull, 0x14ull, 0x15ull, 0x16ull, 0x18ull, 0x1Aull,
                                0x1Cull, 0x20ull, 0x28ull, 0x30ull}) {
            size_t size = offset >= 0x20 ? 8 : (offset == 0x14 || offset == 0x15 ? 1 : 2);
            values.push_back(bar_read(offset, size));
        }
        for (uint64_t offset = 0; offset < 32; offset += 4)
            values.push_back(bar_read(VirtioPciTransport::k_msix_table_offset + offset, 4));
        return values;
    }
};

void wait_used(const TestRing& ring, uint16_t count) {
    for (int i = 0; i < 1000 && ring.used_idx() < count; ++i) std::this_thread::sleep_for(1ms);
}

class VirtioSnapshotTest : public ::testing::Test {
protected:
    std::shared_ptr<VirtioPciTransport> make_rng_transport(RecordingVectors** recorder) {
        auto vectors = std::make_unique<RecordingVectors>();
        *recorder = vectors.get();
        return VirtioPciTransport::create(std::make_shared<RngDevice>(loop), memory, k_bar, std::move(vectors))
            .value();
    }

    GuestMemory memory = GuestMemory::create(1 << 20).value();
    std::shared_ptr<EventLoop> loop = EventLoop::start("snapshot-test").value();
};

TEST_F(VirtioSnapshotTest, RngTransportRoundTripsAndTheNewOneContinues) {
    RecordingVectors* recorder = nullptr;
    auto original = make_rng_transport(&recorder);
    Driver driver{*original};
    TestRing ring{memory, 8};
    ring.set_used_event(0);
    driver.bring_up(ring);
    ring.descriptor(0, k_buffers, 16, k_desc_f_write);
    ring.publish(0);
    driver.bar_write(VirtioPciTransport::k_notify_offset, 0, 2);
    wait_used(ring, 1);
    ASSERT_EQ(ring.used_idx(), 1);

    original->quiesce();
    auto saved = original->save();
    ASSERT_TRUE(saved) << saved.error().message();
    EXPECT_TRUE(saved->active);
    EXPECT_EQ(saved->queues[0].position.next_avail, 1);
    EXPECT_EQ(saved->queues[0].position.next_used, 1);
    auto bytes = encode(*saved);

    // A new device and transport (as in a new monitor process) take the state over.
    RecordingVectors* restored_recorder = nullptr;
    auto restored = make_rng_transport(&restored_recorder);
    auto decoded = decode(bytes);
    ASSERT_TRUE(decoded) << decoded.error().message();
    ASSERT_TRUE(restored->restore(*decoded));
    EXPECT_EQ(encode(restored->save().value()), bytes) << "save after restore gives the same bytes";
    Driver restored_driver{*restored};
    EXPECT_EQ(restored_driver.visible_state(), driver.visible_state());
    EXPECT_FALSE(restored_recorder->routes.empty()) << "unmasked MSI-X vectors are routed again";
    EXPECT_TRUE(restored->msix().enabled());

    // The restored device serves the next request from where the old one stopped.
    original.reset();  // stops nothing more: it was quiesced
    ASSERT_TRUE(restored->resume());
    ring.descriptor(1, k_buffers + 64, 16, k_desc_f_write);
    ring.publish(1);
    restored_driver.bar_write(VirtioPciTransport::k_notify_offset, 0, 2);
    wait_used(ring, 2);
    ASSERT_EQ(ring.used_idx(), 2);
    EXPECT_EQ(ring.used_element(1), std::make_pair(1u, 16u));
    EXPECT_EQ(restored->device().counters().requests, 1u);
}

TEST_F(VirtioSnapshotTest, QuiesceThenResumeKeepsServing) {
    RecordingVectors* recorder = nullptr;
    auto transport = make_rng_transport(&recorder);
    Driver driver{*transport};
    TestRing ring{memory, 8};
    driver.bring_up(ring);
    transport->quiesce();
    ASSERT_TRUE(transport->save());
    ring.descriptor(0, k_buffers, 16, k_desc_f_write);
    ring.publish(0);
    driver.bar_write(VirtioPciTransport::k_notify_offset, 0, 2);
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(ring.used_idx(), 0) << "a quiesced device does not touch the rings";
    ASSERT_TRUE(transport->resume());
    wait_used(ring, 1);
    EXPECT_EQ(ring.used_idx(), 1) << "resume serves what was notified meanwhile";
}

TEST_F(VirtioSnapshotTest, SavingARunningDeviceIsRefused) {
    RecordingVectors* recorder = nullptr;
    auto transport = make_rng_transport(&recorder);
    TestRing ring{memory, 8};
    Driver{*transport}.bring_up(ring);
    auto saved = transport->save();
    ASSERT_FALSE(saved);
    EXPECT_EQ(saved.error().kind(), ErrorKind::Busy);
}

TEST_F(VirtioSnapshotTest, RefusesStatesThatDoNotFitTheDevice) {
    RecordingVectors* recorder = nullptr;
    auto transport = make_rng_transport(&recorder);
    TestRing ring{memory, 8};
    Driver{*transport}.bring_up(ring);
    transport->quiesce();
    VirtioPciState good = transport->save().value();

    auto fresh = [&] { return make_rng_transport(&recorder); };
    // A console's state into an entropy device: its config space identity differs.
    auto console = std::make_shared<ConsoleDevice>(loop, [](std::span<const uint8_t>) {});
    auto console_transport =
        VirtioPciTransport::create(console, memory, k_bar, std::make_unique<RecordingVectors>()).value();
    auto other = good;
    other.queues.push_back(other.queues[0]);
    other.msix.entries.push_back({});
    other.msix.pending.push_back(false);
    auto refused = console_transport->restore(other);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message().find("read-only byte 0x02"), std::string::npos) << refused.error().message();

    auto bad = good;
    bad.queues[0].descriptor_table = 1ull << 40;  // not guest RAM
    refused = fresh()->restore(bad);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message().find("queue 0"), std::string::npos) << refused.error().message();

    bad = good;
    bad.queues[0].vector = 7;
    EXPECT_FALSE(fresh()->restore(bad));
    bad = good;
    bad.queues[0].size = 512;
    EXPECT_FALSE(fresh()->restore(bad));
    bad = good;
    bad.queues.pop_back();
    EXPECT_FALSE(fresh()->restore(bad));
    bad = good;
    bad.driver_features |= 1ull << 50;  // never offered
    EXPECT_FALSE(fresh()->restore(bad));

    auto bytes = encode(good);
    for (size_t size = 0; size < bytes.size(); size += 7)
        EXPECT_FALSE(decode(std::span(bytes).first(size))) << size;
    EXPECT_TRUE(fresh()->restore(decode(bytes).value()));
}

TEST(BlockQuiesceTest, CompletesTheRequestTheRateLimitHeldBack) {
    GuestMemory memory = GuestMemory::create(1 << 20).value();
    TestRing ring{memory, 16};
    EventFd notify = EventFd::create(EFD_NONBLOCK).value();
    testing::RecordingInterrupt interrupt;
    BlockOptions options;
    options.iops = TokenBucketConfig{1, 1};  // one request a second, after the first
    BlockDevice device(std::make_unique<testing::MemoryDisk>(1 << 20, false), options);
    std::vector<std::optional<ActiveQueue>> queues(1);
    queues[0].emplace(ActiveQueue{Virtqueue::create(memory, ring.layout(), {}).value(), notify.fd()});
    ASSERT_TRUE(device.activate(ActivateContext{memory, k_f_version_1, std::move(queues), interrupt}));
    // Two flush requests (header + status); the second waits for a token.
    for (uint16_t i = 0; i < 2; ++i) {
        uint64_t header = 0x40000 + 64ull * i;
        memory.write_object<uint32_t>(header, 4).value();  // VIRTIO_BLK_T_FLUSH
        memory.write_object<uint8_t>(0x48000 + i, 0xFF).value();
        ring.descriptor(2 * i, header, 16, k_desc_f_next, static_cast<uint16_t>(2 * i + 1));
        ring.descriptor(2 * i + 1, 0x48000 + i, 1, k_desc_f_write);
        ring.publish(static_cast<uint16_t>(2 * i));
    }
    notify.signal();
    wait_used(ring, 1);
    std::this_thread::sleep_for(20ms);
    ASSERT_EQ(ring.used_idx(), 1) << "the rate limit holds the second request";

    auto handed_back = device.quiesce();
    EXPECT_EQ(ring.used_idx(), 2) << "quiesce completed the held request";
    EXPECT_EQ(memory.read_object<uint8_t>(0x48001).value(), 0) << "VIRTIO_BLK_S_OK";
    ASSERT_EQ(handed_back.size(), 1u);
    ASSERT_TRUE(handed_back[0]);
    EXPECT_EQ(handed_back[0]->queue.next_avail(), 2);
    EXPECT_EQ(handed_back[0]->queue.next_used(), 2);
    EXPECT_TRUE(device.quiesce()[0] == std::nullopt) << "quiescing an inactive device hands nothing back";
}

TEST(BlockStateTest, ADiskOfAnotherSizeOrWritabilityIsRefused) {
    BlockDevice device(std::make_unique<testing::MemoryDisk>(1 << 20, false), {});
    snapshot::StateWriter writer;
    device.save_state(writer);
    auto bytes = writer.take();
    {
        BlockDevice same(std::make_unique<testing::MemoryDisk>(1 << 20, false), {});
        snapshot::StateReader reader(bytes);
        EXPECT_TRUE(same.restore_state(reader));
    }
    {
        BlockDevice bigger(std::make_unique<testing::MemoryDisk>(2 << 20, false), {});
        snapshot::StateReader reader(bytes);
        auto refused = bigger.restore_state(reader);
        ASSERT_FALSE(refused);
        EXPECT_NE(refused.error().message().find("the snapshot's disk has 2048 sectors, this image 4096"),
                  std::string::npos)
            << refused.error().message();
    }
    {
        BlockDevice read_only(std::make_unique<testing::MemoryDisk>(1 << 20, true), {});
        snapshot::StateReader reader(bytes);
        EXPECT_FALSE(read_only.restore_state(reader));
    }
}

TEST(ConsoleStateTest, PendingInputRoundTripsAndIsBounded) {
    std::shared_ptr<EventLoop> loop = EventLoop::start("console-state").value();
    ConsoleDevice device(loop, [](std::span<const uint8_t>) {});
    snapshot::StateWriter writer;
    device.save_state(writer);
    auto bytes = writer.take();
    ConsoleDevice restored(loop, [](std::span<const uint8_t>) {});
    snapshot::StateReader reader(bytes);
    ASSERT_TRUE(restored.restore_state(reader));
    snapshot::StateWriter again;
    restored.save_state(again);
    EXPECT_EQ(again.data(), bytes);

    // Input pending for a device that has no input is refused.
    snapshot::StateWriter hostile;
    hostile.section(snapshot::tag("VCON"), 1, [](snapshot::StateWriter& w) { w.bytes(std::vector<uint8_t>(10, 'x')); });
    snapshot::StateReader hostile_reader(hostile.data());
    EXPECT_FALSE(restored.restore_state(hostile_reader));
}

}  // namespace
}  // namespace corral::vmm::virtio
