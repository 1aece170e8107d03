#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "base/result.h"
#include "storage/qcow2/qcow2_bitmaps.h"
#include "vmm/devices/rate_limiter.h"
#include "vmm/devices/virtio/block/request.h"
#include "vmm/devices/virtio/virtio_device.h"

namespace corral::storage {
class BlockDevice;
}

namespace corral::vmm::virtio {

/// Counters of a virtio-blk device, on top of DeviceCounters (requests, bytes, errors,
/// rejected_chains).
struct BlockCounters {
    std::atomic<uint64_t> bytes_read{0};
    std::atomic<uint64_t> bytes_written{0};
    // Reads and writes done, and the time the image took to serve them (the disk latency the
    // guest sees, less queueing in the guest and the rate limiter's holds).
    std::atomic<uint64_t> read_ops{0}, write_ops{0};
    std::atomic<uint64_t> read_time_ns{0}, write_time_ns{0};
    std::atomic<uint64_t> rejected_requests{0};  // failed validation (incl. read-only writes)
    std::atomic<uint64_t> read_only_writes{0};
    std::atomic<uint64_t> throttled{0};          // times the rate limiter held a request back
    std::array<std::atomic<uint64_t>, static_cast<size_t>(block::RequestError::Count)> rejected_by_reason{};
};

/// Options of one disk (plain values; the image is opened by the caller).
struct BlockOptions {
    std::string serial;  // GET_ID; at most 20 bytes
    std::optional<TokenBucketConfig> bandwidth;  // bytes per second
    std::optional<TokenBucketConfig> iops;       // requests per second
};

/// virtio-blk (virtio 1.2 §5.2): one request queue over a corral_storage BlockDevice (raw or
/// qcow2, possibly read-only).
///
/// Threading: activate() starts a per-disk worker thread that owns the queue and the image for
/// as long as the device is active. It polls the queue's notify eventfd (the KVM ioeventfd the
/// vCPU's notify write lands on: a vCPU never waits for disk I/O), a timerfd armed when the rate
/// limiter holds a request back, and a stop eventfd. It pops chains, validates them
/// (block::parse_request), performs the I/O synchronously, returns them used and signals the
/// queue's MSI-X vector through VirtioInterrupt (which does not block). reset() stops and
/// joins the worker, so when it returns nothing touches guest memory.
///
/// Lock order: the transport's mutex (held around activate()/reset()) -> m_mutex (guards
/// m_worker) -> RateLimiter's mutex (a leaf). The worker takes only the rate limiter's mutex
/// and the MSI-X table's lock (inside signal_queue), never the transport's, so reset() may
/// join it while the transport's mutex is held.
class BlockDevice final : public VirtioDevice {
public:
    static constexpr uint16_t k_queue_size = 256;
    /// Largest IN/OUT payload accepted (the guest's limit follows from seg_max).
    static constexpr uint64_t k_max_data_bytes = 64ull << 20;
    static constexpr uint32_t k_config_size = 60;  // through write_zeroes_may_unmap + padding

    BlockDevice(std::unique_ptr<storage::BlockDevice> disk, BlockOptions options);
    ~BlockDevice() override;

    DeviceType device_type() const override { return DeviceType::Block; }
    uint64_t device_features() const override;
    std::span<const uint16_t> queue_max_sizes() const override { return m_queue_sizes; }
    uint32_t config_size() const override { return k_config_size; }
    void read_config(uint64_t offset, std::span<uint8_t> data) override;
    void write_config(uint64_t, std::span<const uint8_t>) override {}  // nothing writable (no CONFIG_WCE)
    Result<void> activate(ActivateContext context) override;
    void reset() override;
    /// Stops the worker after the request it is executing, completes a request the rate limiter
    /// was holding back (ignoring the limit: a snapshot must not wait for tokens), flushes the
    /// image, and hands the queue back.
    std::vector<std::optional<ActiveQueue>> quiesce() override;
    /// Section "VBLK": the capacity and read-only flag the guest saw; restore_state() refuses
    /// an image of another size or writability (the guest's file systems would not match).
    void save_state(snapshot::StateWriter& writer) const override;
    Result<void> restore_state(snapshot::StateReader& reader) override;
    DeviceCounters::Snapshot counters() const override { return m_counters.snapshot(); }

    const BlockCounters& block_counters() const { return m_block_counters; }
    /// Changes the disk's limits while the guest runs (the control action `limits`); nullopt or
    /// rate 0: unlimited. A request already held back waits out the timer armed for the old rate.
    void set_rate_limits(std::optional<TokenBucketConfig> bandwidth, std::optional<TokenBucketConfig> iops) {
        m_limiter->reconfigure(bandwidth, iops);
    }
    uint64_t capacity_sectors() const { return m_capacity_sectors; }
    bool read_only() const { return m_read_only; }
    /// Takes (or, with `remove`, deletes) the internal snapshot `tag` of the disk's qcow2 image,
    /// on disk before it returns. Only while the device is quiesced (its worker stopped): the
    /// image is this thread's then. False when there is nothing to do (a read-only or raw disk).
    Result<bool> internal_snapshot(const std::string& tag, bool remove);
    /// A backup's generation change on the disk's qcow2 image (Qcow2Image::rotate_bitmaps), at
    /// the instant of a disk snapshot: only while the device is quiesced. Fails saying why for a
    /// read-only or raw disk, which keeps no bitmap.
    Result<storage::qcow2::BitmapRotation> rotate_bitmaps(const std::string& name, const std::string& replaces);
    /// Before another process opens the disk (a migration's destination): the image stops
    /// keeping its dirty bitmaps and writes nothing of them at exit; they stay in use on disk,
    /// so the next backup reads in full, saying why. Only while the device is quiesced.
    void hand_over_bitmaps();

private:
    class Worker;

    std::unique_ptr<storage::BlockDevice> m_disk;  // used by the worker only while active
    BlockOptions m_options;
    uint64_t m_capacity_sectors;
    bool m_read_only;
    std::array<uint8_t, k_config_size> m_config{};
    const std::array<uint16_t, 1> m_queue_sizes{k_queue_size};
    std::unique_ptr<RateLimiter>
        m_limiter;  // always there (unlimited consumes at once): set_rate_limits; outlives workers
    DeviceCounters m_counters;
    BlockCounters m_block_counters;

    std::mutex m_mutex;  // guards m_worker (activate/reset)
    std::unique_ptr<Worker> m_worker;
};

}  // namespace corral::vmm::virtio
