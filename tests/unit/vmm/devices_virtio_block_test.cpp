#include "vmm/devices/virtio/block/block_device.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "base/event_fd.h"
#include "memory_disk.h"
#include "virtio_test_driver.h"

namespace corral::vmm::virtio {
namespace {

using namespace std::chrono_literals;
using testing::MemoryDisk;
using testing::TestRing;

/// VirtioInterrupt for a device whose worker signals from its own thread.
class LockedInterrupt final : public VirtioInterrupt {
public:
    void signal_queue(uint16_t) override { ++queue_signals; }
    void signal_config_change() override { ++config_changes; }
    void set_needs_reset() override { ++needs_reset; }
    std::atomic<int> queue_signals{0}, config_changes{0}, needs_reset{0};
};

constexpr uint64_t k_headers = 0x40000;
constexpr uint64_t k_data = 0x50000;
constexpr uint64_t k_status = 0x48000;
constexpr uint64_t k_disk_size = 1 << 20;  // 2048 sectors

class BlockDeviceTest : public ::testing::Test {
protected:
    void make(bool read_only = false, BlockOptions options = {}) {
        auto disk = std::make_unique<MemoryDisk>(k_disk_size, read_only);
        ram = disk.get();
        device = std::make_unique<BlockDevice>(std::move(disk), std::move(options));
    }
    void activate(uint64_t features = block::k_f_discard | block::k_f_write_zeroes) {
        std::vector<std::optional<ActiveQueue>> queues(1);
        queues[0].emplace(ActiveQueue{Virtqueue::create(memory, ring.layout(), {}).value(), notify.fd()});
        ASSERT_TRUE(device->activate(ActivateContext{memory, k_f_version_1 | features, std::move(queues), interrupt}));
    }
    /// Writes a header for request `slot` and returns its guest address.
    uint64_t header(int slot, uint32_t type, uint64_t sector, uint32_t length = 16) {
        uint64_t at = k_headers + 64ull * slot;
        memory.write_object(at, type).value();
        memory.write_object<uint32_t>(at + 4, 0).value();
        memory.write_object(at + 8, sector).value();
        (void)length;
        return at;
    }
    uint64_t status_at(int slot) const { return k_status + slot; }
    uint8_t status(int slot) const { return memory.read_object<uint8_t>(status_at(slot)).value(); }
    /// header (3 descriptors per request: header, data, status, starting at 3 * slot).
    void request(int slot, uint32_t type, uint64_t sector, uint32_t data_length, bool data_writable,
                 uint32_t header_length = 16) {
        uint16_t d = static_cast<uint16_t>(3 * slot);
        memory.write_object<uint8_t>(status_at(slot), 0xff).value();
        ring.descriptor(d, header(slot, type, sector), header_length, k_desc_f_next, d + 1);
        if (data_length) {
            ring.descriptor(d + 1, k_data + 0x10000ull * slot, data_length,
                            k_desc_f_next | (data_writable ? k_desc_f_write : 0), d + 2);
            ring.descriptor(d + 2, status_at(slot), 1, k_desc_f_write);
        } else {
            ring.descriptor(d, header(slot, type, sector), header_length, k_desc_f_next, d + 2);
            ring.descriptor(d + 2, status_at(slot), 1, k_desc_f_write);
        }
        ring.publish(d);
    }
    void kick_and_wait(uint16_t used) {
        notify.signal();
        for (int i = 0; i < 1000 && ring.used_idx() < used; ++i) std::this_thread::sleep_for(1ms);
        ASSERT_EQ(ring.used_idx(), used);
    }

    GuestMemory memory = GuestMemory::create(1 << 20).value();
    TestRing ring{memory, 64};
    EventFd notify = EventFd::create(EFD_NONBLOCK).value();
    LockedInterrupt interrupt;
    MemoryDisk* ram = nullptr;
    std::unique_ptr<BlockDevice> device;
};

TEST_F(BlockDeviceTest, ConfigSpaceAndFeatures) {
    make();
    EXPECT_EQ(device->device_type(), DeviceType::Block);
    uint64_t features = device->device_features();
    EXPECT_TRUE(features & block::k_f_seg_max);
    EXPECT_TRUE(features & block::k_f_blk_size);
    EXPECT_TRUE(features & block::k_f_flush);
    EXPECT_TRUE(features & block::k_f_discard);
    EXPECT_TRUE(features & block::k_f_write_zeroes);
    EXPECT_FALSE(features & block::k_f_ro);
    std::vector<uint8_t> config(device->config_size());
    device->read_config(0, config);
    auto le32 = [&](size_t at) { uint32_t v; std::memcpy(&v, &config[at], 4); return v; };
    uint64_t capacity;
    std::memcpy(&capacity, config.data(), 8);
    EXPECT_EQ(capacity, 2048u);
    EXPECT_EQ(le32(12), BlockDevice::k_queue_size - 2u);  // seg_max
    EXPECT_EQ(le32(20), 512u);                           // blk_size
    EXPECT_GT(le32(36), 0u);                             // max_discard_sectors
    EXPECT_EQ(le32(40), 1u);                             // max_discard_seg
    EXPECT_EQ(le32(44), 1u);                             // discard_sector_alignment (512-byte granularity)
    EXPECT_GT(le32(48), 0u);                             // max_write_zeroes_sectors
    EXPECT_EQ(le32(52), 1u);                             // max_write_zeroes_seg
    EXPECT_EQ(config[56], 1);                            // write_zeroes_may_unmap

    make(/*read_only=*/true);
    features = device->device_features();
    EXPECT_TRUE(features & block::k_f_ro);
    EXPECT_FALSE(features & block::k_f_discard);
}

TEST_F(BlockDeviceTest, WritesThenReadsBackOnTheWorker) {
    make();
    std::vector<uint8_t> pattern(4096);
    for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<uint8_t>(i * 7);
    std::memcpy(memory.host_pointer(k_data, 4096), pattern.data(), 4096);
    request(0, block::k_t_out, 16, 4096, false);
    activate();  // serves what was made available before DRIVER_OK
    kick_and_wait(1);
    EXPECT_EQ(status(0), block::k_s_ok);
    EXPECT_EQ(ring.used_element(0), std::make_pair(0u, 1u));
    EXPECT_EQ(std::memcmp(ram->bytes.data() + 16 * 512, pattern.data(), 4096), 0);

    request(1, block::k_t_in, 16, 4096, true);
    kick_and_wait(2);
    EXPECT_EQ(status(1), block::k_s_ok);
    EXPECT_EQ(ring.used_element(1), std::make_pair(3u, 4097u));
    EXPECT_EQ(std::memcmp(memory.host_pointer(k_data + 0x10000, 4096), pattern.data(), 4096), 0);

    request(2, block::k_t_flush, 0, 0, false);
    kick_and_wait(3);
    EXPECT_EQ(status(2), block::k_s_ok);
    EXPECT_EQ(ram->flushes.load(), 1);
    EXPECT_GE(interrupt.queue_signals.load(), 1);

    auto counters = device->counters();
    EXPECT_EQ(counters.requests, 3u);
    EXPECT_EQ(counters.bytes, 8192u);
    EXPECT_EQ(counters.errors, 0u);
    EXPECT_EQ(device->block_counters().bytes_read, 4096u);
    EXPECT_EQ(device->block_counters().bytes_written, 4096u);
    device->reset();
}

TEST_F(BlockDeviceTest, GetIdReturnsTheSerial) {
    BlockOptions options;
    options.serial = "corral-ro";
    make(false, options);
    request(0, block::k_t_get_id, 0, 20, true);
    activate();
    kick_and_wait(1);
    EXPECT_EQ(status(0), block::k_s_ok);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(memory.host_pointer(k_data, 20))), "corral-ro");
}

TEST_F(BlockDeviceTest, HostileRequestsAreAnsweredAndCounted) {
    make(/*read_only=*/true);
    activate();
    request(0, block::k_t_out, 0, 512, false);         // write to a read-only disk
    request(1, block::k_t_in, 2048, 512, true);        // past the end
    request(2, block::k_t_in, ~uint64_t{0}, 512, true);  // overflow
    request(3, block::k_t_in, 0, 8, true, 8);           // header too short
    request(4, 99, 0, 0, false);                         // unknown type
    request(5, block::k_t_in, 0, 100, true);            // not a multiple of 512
    kick_and_wait(6);
    EXPECT_EQ(status(0), block::k_s_ioerr);
    EXPECT_EQ(status(1), block::k_s_ioerr);
    EXPECT_EQ(status(2), block::k_s_ioerr);
    EXPECT_EQ(status(3), block::k_s_ioerr);
    EXPECT_EQ(status(4), block::k_s_unsupp);
    EXPECT_EQ(status(5), block::k_s_ioerr);
    EXPECT_EQ(device->block_counters().rejected_requests, 6u);
    EXPECT_EQ(device->block_counters().read_only_writes, 1u);
    EXPECT_EQ(device->counters().errors, 6u);
    EXPECT_TRUE(std::all_of(ram->bytes.begin(), ram->bytes.end(), [](uint8_t b) { return b == 0; }));
}

TEST_F(BlockDeviceTest, StatusNotWritableIsReturnedUnanswered) {
    make();
    activate();
    ring.descriptor(0, header(0, block::k_t_in, 0), 16, k_desc_f_next, 1);
    ring.descriptor(1, status_at(0), 1, 0);  // status byte device-readable
    memory.write_object<uint8_t>(status_at(0), 0xff).value();
    ring.publish(0);
    kick_and_wait(1);
    EXPECT_EQ(ring.used_element(0), std::make_pair(0u, 0u));
    EXPECT_EQ(status(0), 0xff) << "a readable buffer is never written";
    EXPECT_EQ(device->block_counters().rejected_requests, 1u);
}

TEST_F(BlockDeviceTest, ASlowDiskDoesNotBlockTheNotifier) {
    make();
    ram->delay = 200ms;
    activate();
    request(0, block::k_t_in, 0, 512, true);
    auto start = std::chrono::steady_clock::now();
    notify.signal();  // what a vCPU's notify write does (KVM ioeventfd)
    EXPECT_LT(std::chrono::steady_clock::now() - start, 50ms);
    kick_and_wait(1);
    EXPECT_EQ(status(0), block::k_s_ok);
}

TEST_F(BlockDeviceTest, ReadsAndWritesAreCountedWithTheTimeTheDiskTook) {
    make();
    ram->delay = 20ms;  // every read and write takes at least this long
    activate();
    request(0, block::k_t_out, 0, 512, false);
    kick_and_wait(1);
    request(1, block::k_t_in, 0, 512, true);
    kick_and_wait(2);
    request(2, block::k_t_flush, 0, 0, false);  // neither a read nor a write
    kick_and_wait(3);
    const auto& counters = device->block_counters();
    EXPECT_EQ(counters.read_ops, 1u);
    EXPECT_EQ(counters.write_ops, 1u);
    // The disk latency the guest sees (corral's history divides the time by the operations).
    EXPECT_GE(counters.read_time_ns, 20'000'000u);
    EXPECT_GE(counters.write_time_ns, 20'000'000u);
    device->reset();
}

TEST_F(BlockDeviceTest, RateLimitDelaysButServesRequests) {
    BlockOptions options;
    options.iops = TokenBucketConfig{10, 1};
    make(false, options);
    activate();
    auto start = std::chrono::steady_clock::now();
    request(0, block::k_t_flush, 0, 0, false);
    request(1, block::k_t_flush, 0, 0, false);
    request(2, block::k_t_flush, 0, 0, false);
    kick_and_wait(3);
    auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_GE(elapsed, 150ms) << "10 ops/s with a burst of 1: the 2nd and 3rd wait 100ms each";
    EXPECT_GE(device->block_counters().throttled, 2u);
    EXPECT_EQ(status(2), block::k_s_ok);
}

TEST_F(BlockDeviceTest, ARateLimitSetLiveHoldsLaterRequests) {
    make();  // no limit at the start
    activate();
    device->set_rate_limits(std::nullopt, TokenBucketConfig{10, 1});
    auto start = std::chrono::steady_clock::now();
    request(0, block::k_t_flush, 0, 0, false);
    request(1, block::k_t_flush, 0, 0, false);
    request(2, block::k_t_flush, 0, 0, false);
    kick_and_wait(3);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms) << "10 ops/s with a burst of 1, as set live";
    EXPECT_GE(device->block_counters().throttled, 2u);
    EXPECT_EQ(status(2), block::k_s_ok);
    device->reset();
}

TEST_F(BlockDeviceTest, DiscardAndWriteZeroes) {
    make();
    std::memset(ram->bytes.data(), 0x55, k_disk_size);
    activate();
    auto segment = [&](int slot, uint64_t sector, uint32_t sectors, uint32_t flags) {
        uint64_t at = k_data + 0x10000ull * slot;
        memory.write_object(at, sector).value();
        memory.write_object(at + 8, sectors).value();
        memory.write_object(at + 12, flags).value();
    };
    segment(0, 0, 8, 0);
    request(0, block::k_t_discard, 0, 16, false);
    segment(1, 8, 8, block::k_dwz_flag_unmap);
    request(1, block::k_t_write_zeroes, 0, 16, false);
    kick_and_wait(2);
    EXPECT_EQ(status(0), block::k_s_ok);
    EXPECT_EQ(status(1), block::k_s_ok);
    EXPECT_EQ(ram->bytes[0], 0);
    EXPECT_EQ(ram->bytes[16 * 512 - 1], 0);
    EXPECT_EQ(ram->bytes[16 * 512], 0x55);
}

TEST_F(BlockDeviceTest, DiscardWithoutTheFeatureIsUnsupported) {
    make();
    activate(/*features=*/0);
    request(0, block::k_t_discard, 0, 16, false);
    kick_and_wait(1);
    EXPECT_EQ(status(0), block::k_s_unsupp);
}

TEST_F(BlockDeviceTest, ResetStopsTheWorker) {
    make();
    activate();
    device->reset();
    request(0, block::k_t_flush, 0, 0, false);
    notify.signal();
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(ring.used_idx(), 0) << "after reset the device leaves the queue alone";
}

}  // namespace
}  // namespace corral::vmm::virtio
