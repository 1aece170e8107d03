#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>

#include "base/event_loop.h"
#include "base/unique_fd.h"
#include "vmm/devices/virtio/virtio_device.h"

namespace corral::vmm::virtio {

/// What the guest last said about its memory through the stats queue (virtio 1.2 §5.5.6.3), in
/// bytes; nullopt for a statistic it did not send.
struct BalloonGuestStats {
    std::optional<uint64_t> free_bytes, available_bytes, total_bytes;
    uint64_t updates = 0;  // stats buffers received
};

/// The balloon as the control socket reports it.
struct BalloonStatus {
    uint32_t target_pages = 0;  // num_pages: what the device asks the balloon to hold (4 KiB pages)
    uint32_t actual_pages = 0;  // actual: what the driver says it holds
    BalloonGuestStats stats;
    uint64_t discarded_pages = 0;  // inflated pages given back to the host
    uint64_t reported_bytes = 0;   // free page reporting: bytes given back
    uint64_t rejected_pfns = 0;    // inflate PFNs outside guest RAM (a buggy or hostile guest)
};

/// virtio-balloon (virtio 1.2 §5.5): the host asks the guest to give memory back by setting
/// num_pages (set_target_pages(), a configuration change interrupt); the guest's driver
/// inflates the balloon with pages it takes from its allocator and lists their PFNs on the
/// inflate queue, and the device discards those pages (MADV_DONTNEED: the host frees them; the
/// guest reads zeros if it ever touches them again). Deflate PFNs need nothing: a page comes
/// back on its next fault. With VIRTIO_BALLOON_F_STATS_VQ the guest's memory statistics come
/// in on the stats queue (the device holds the buffer and returns it every stats interval to
/// ask for fresh ones); with VIRTIO_BALLOON_F_REPORTING the guest lists free page ranges on the
/// reporting queue and the device discards them too. F_DEFLATE_ON_OOM lets the guest take
/// pages back from the balloon rather than run out of memory.
///
/// Hostile guests: every PFN is checked against guest RAM (GuestMemory::host_pointer) before
/// its page is discarded; a PFN outside RAM is counted and skipped; at most k_max_pfns_per_chain
/// PFNs of one chain are looked at. Reported ranges come from validated descriptors (the queue
/// checked them against RAM) and are trimmed inward to whole pages.
/// Queues are served on the event loop thread; the control side (set_target_pages(), status())
/// may be called from any thread.
class BalloonDevice final : public VirtioDevice {
public:
    static constexpr uint64_t k_f_stats_vq = 1ull << 1;        // VIRTIO_BALLOON_F_STATS_VQ
    static constexpr uint64_t k_f_deflate_on_oom = 1ull << 2;  // VIRTIO_BALLOON_F_DEFLATE_ON_OOM
    static constexpr uint64_t k_f_free_page_hint = 1ull << 3;  // not offered
    static constexpr uint64_t k_f_page_reporting = 1ull << 5;  // VIRTIO_BALLOON_F_REPORTING
    static constexpr uint64_t k_page_size = 4096;  // balloon PFNs are 4 KiB frames whatever the guest's page size
    static constexpr uint16_t k_queue_size = 128;
    static constexpr uint32_t k_max_pfns_per_chain = 1u << 20;  // 4 GiB of pages per buffer at most
    static constexpr uint32_t k_max_stats_bytes = 1024;         // ~100 statistics; the spec defines 16 tags
    /// Queue roles; their transport indices depend on the negotiated features (§5.5.2: a queue
    /// whose feature is off does not exist, and the following ones move down).
    enum class Role : uint8_t { Inflate, Deflate, Stats, Reporting, Count };

    explicit BalloonDevice(std::shared_ptr<EventLoop> loop,
                           std::chrono::milliseconds stats_interval = std::chrono::seconds(2));
    ~BalloonDevice() override { reset(); }

    DeviceType device_type() const override { return DeviceType::Balloon; }
    uint64_t device_features() const override { return k_f_stats_vq | k_f_deflate_on_oom | k_f_page_reporting; }
    std::span<const uint16_t> queue_max_sizes() const override { return m_queue_sizes; }
    /// num_pages (le32, device-written) and actual (le32, driver-written), §5.5.4.
    uint32_t config_size() const override { return 8; }
    void read_config(uint64_t offset, std::span<uint8_t> data) override;
    void write_config(uint64_t offset, std::span<const uint8_t> data) override;
    Result<void> activate(ActivateContext context) override;
    void reset() override;
    /// Returns the held stats buffer used (the driver refills it after the restore).
    std::vector<std::optional<ActiveQueue>> quiesce() override;
    /// Section "VBAL": num_pages and actual.
    void save_state(snapshot::StateWriter& writer) const override;
    Result<void> restore_state(snapshot::StateReader& reader) override;
    DeviceCounters::Snapshot counters() const override { return m_counters.snapshot(); }

    /// Asks the guest to hold `pages` 4 KiB pages in the balloon (num_pages) and tells it with
    /// a configuration change interrupt when the driver is running.
    void set_target_pages(uint32_t pages);
    BalloonStatus status() const;

    /// Serves one queue once (what the event loop runs on its notification; tests call it).
    void process(Role role);
    /// Returns the held stats buffer to ask the guest for fresh statistics (what the stats
    /// timer runs; tests call it).
    void request_stats();

private:
    struct Queue {
        std::optional<ActiveQueue> active;
        uint16_t index = 0;  // the transport's queue index
    };
    /// Discards the pages whose PFNs `chain` lists (inflate).
    void discard_pfns(const DescriptorChain& chain);
    /// Discards the whole pages of each buffer of `chain` (free page reporting).
    void discard_ranges(const DescriptorChain& chain);
    void read_stats(const DescriptorChain& chain);
    /// Gives [host, host + length) back to the host; false when the kernel refused.
    bool discard(uint8_t* host, uint64_t length);
    /// Stops serving: the queues and the timer unwatched and dropped, the held stats buffer
    /// forgotten (reset() and a failed or repeated activate()).
    void stop();
    /// Stops watching the queues and the timer (after this no callback runs).
    void stop_watching();
    /// Returns the held stats chain used and interrupts; on the loop thread or while stopped.
    void release_stats_chain();

    std::shared_ptr<EventLoop> m_loop;
    const std::chrono::milliseconds m_stats_interval;
    const std::array<uint16_t, 4> m_queue_sizes{k_queue_size, k_queue_size, k_queue_size, k_queue_size};
    UniqueFd m_timer;  // a timerfd: every stats interval, request_stats()
    std::atomic<uint32_t> m_num_pages{0};
    std::atomic<uint32_t> m_actual{0};
    // Set in activate() before the loop watches the queues, cleared after it stopped watching.
    std::array<Queue, static_cast<size_t>(Role::Count)> m_queues;
    const GuestMemory* m_memory = nullptr;
    // Set/cleared with m_control_mutex held, so set_target_pages() never signals a reset device.
    VirtioInterrupt* m_interrupt = nullptr;
    std::mutex m_control_mutex;
    std::optional<uint16_t> m_stats_head;  // the stats buffer the device holds (loop thread)
    mutable std::mutex m_stats_mutex;      // guards m_stats and the totals below
    BalloonGuestStats m_stats;
    std::atomic<uint64_t> m_discarded_pages{0}, m_reported_bytes{0}, m_rejected_pfns{0};
    DeviceCounters m_counters;
};

}  // namespace corral::vmm::virtio
