#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <vector>

#include "base/event_loop.h"
#include "base/unique_fd.h"
#include "net/tap.h"
#include "vmm/devices/rate_limiter.h"
#include "vmm/devices/virtio/net/frames.h"
#include "vmm/devices/virtio/net/rx_merge.h"
#include "vmm/devices/virtio/virtio_device.h"

namespace corral::vmm::virtio {

static_assert(k_net_header_size == net::Tap::k_vnet_header_size);

/// Counters of one NIC (read with snapshot()).
struct NetCounters {
    std::atomic<uint64_t> tx_frames{0}, tx_bytes{0};  // frames written to the tap (bytes without header)
    std::atomic<uint64_t> rx_frames{0}, rx_bytes{0};  // frames put in guest buffers
    std::atomic<uint64_t> tx_dropped{0};   // valid frames the tap refused (full queue, link down...)
    std::atomic<uint64_t> rx_dropped{0};   // frames that did not fit the RX buffer they were given
                                           // (with MRG_RXBUF: the whole ring of buffers)
    std::atomic<uint64_t> tx_rejected{0};  // TX chains refused: short header, oversized, bad header
    std::atomic<uint64_t> rx_rejected{0};  // RX chains refused: no writable buffer, too small for a header
    std::atomic<uint64_t> rx_stalls{0};    // times the tap was parked because the guest had no (or,
                                           // with MRG_RXBUF, not enough) RX buffers for a frame
    std::atomic<uint64_t> tx_throttled{0};  // TX frames the rate limit held back (each counted once)
    std::atomic<uint64_t> rx_throttled{0};  // RX frames the rate limit held back (each counted once)

    struct Snapshot {
        uint64_t tx_frames, tx_bytes, rx_frames, rx_bytes, tx_dropped, rx_dropped, tx_rejected, rx_rejected,
            rx_stalls, tx_throttled, rx_throttled;
    };
    Snapshot snapshot() const {
        return {tx_frames.load(),  tx_bytes.load(),    rx_frames.load(),   rx_bytes.load(),
                tx_dropped.load(), rx_dropped.load(),  tx_rejected.load(), rx_rejected.load(),
                rx_stalls.load(),  tx_throttled.load(), rx_throttled.load()};
    }
};

/// Rate limits of one NIC per direction (unset: unlimited); frame bytes exclude the header.
struct NetRateLimits {
    std::optional<TokenBucketConfig> rx_bytes, rx_frames;  // host -> guest
    std::optional<TokenBucketConfig> tx_bytes, tx_frames;  // guest -> host
};

/// virtio-net (virtio 1.2 §5.1) on a host tap, with the data path in user space: one receive
/// queue (0) and one transmit queue (1), no control queue.
///
/// Features: MAC, STATUS (link always up), CSUM and HOST_TSO4/6 (the tap takes checksum-partial
/// and GSO frames from us and the kernel finishes them), GUEST_CSUM / GUEST_TSO4/6 when the
/// tap supports those offloads (TUNSETOFFLOAD is set from what the driver negotiated), and
/// MRG_RXBUF: a received frame may span several RX chains (MergeableRx), so the driver posts
/// page-sized buffers and a small frame costs one of them. A driver that does not take
/// MRG_RXBUF gets each frame in one chain: with GUEST_TSO it then posts 65562-byte chains
/// ("big packets"), every ACK taking one, and without it 1526-byte ones (§5.1.6.3.1).
///
/// TX: each chain's readable part is the 12-byte header then the frame; the header is copied
/// out and checked (flags and GSO type against the negotiated features), the total bounded to
/// header + 65550 bytes, and the frame is written to the tap with writev straight from guest
/// RAM. RX: the tap fd is on the event loop; a frame is read into a bounce buffer, then copied
/// into the next RX chain's writable buffers (or, with MRG_RXBUF, as many chains as it needs,
/// published together). When the guest has no (or not enough) RX buffers the frame is
/// held and the tap is parked (not read; the kernel's tap queue absorbs or drops) until the
/// guest notifies the RX queue. Everything runs on the event loop thread.
///
/// Rate limits (one RateLimiter per direction, on frame bytes and frames) never drop a frame
/// and never spin: a TX chain the limit holds back stays unused (the guest sees its ring full)
/// and an RX frame waits in the bounce buffer with the tap parked (later frames wait in the
/// tap's queue); a timerfd on the loop fires when the tokens are there and the queue resumes.
class NetDevice final : public VirtioDevice {
public:
    static constexpr uint16_t k_queue_size = 256;
    static constexpr uint16_t k_rx_queue = 0;
    static constexpr uint16_t k_tx_queue = 1;
    static constexpr uint32_t k_header_size = k_net_header_size;
    static constexpr uint32_t k_max_frame = k_net_max_frame;
    static constexpr uint32_t k_min_frame = k_net_min_frame;
    /// Frames moved per event before yielding to other fds on the loop.
    static constexpr unsigned k_batch = 64;

    NetDevice(std::shared_ptr<EventLoop> loop, net::Tap tap, std::array<uint8_t, 6> mac,
              NetRateLimits limits = {});
    ~NetDevice() override;

    DeviceType device_type() const override { return DeviceType::Net; }
    uint64_t device_features() const override;
    std::span<const uint16_t> queue_max_sizes() const override { return m_queue_sizes; }
    /// mac[6], status, max_virtqueue_pairs (§5.1.4).
    uint32_t config_size() const override { return 10; }
    void read_config(uint64_t offset, std::span<uint8_t> data) override;
    void write_config(uint64_t, std::span<const uint8_t>) override {}  // the MAC is read-only
    Result<void> activate(ActivateContext context) override;
    void reset() override;
    /// Stops serving, transmits a TX chain the rate limit was holding back (ignoring the limit),
    /// and hands both queues back. A received frame still waiting for a guest buffer is dropped
    /// (as by a NIC whose ring is full); the tap's queue keeps later ones.
    std::vector<std::optional<ActiveQueue>> quiesce() override;
    DeviceCounters::Snapshot counters() const override { return m_counters.snapshot(); }
    NetCounters::Snapshot net_counters() const { return m_net_counters.snapshot(); }
    /// Changes the NIC's limits while the guest runs (the control action `limits`); a bucket
    /// absent or of rate 0 is unlimited. A frame already held back waits out its timer.
    void set_rate_limits(const NetRateLimits& limits);

    const net::Tap& tap() const { return m_tap; }
    /// What the event loop runs (tests call them directly).
    void process_tx();
    void process_rx();
    void on_rx_notify();

private:
    void transmit(const DescriptorChain& chain);
    void finish(ActiveQueue& active, uint16_t index, bool used_any);
    /// Counts the frame in m_bounce as received and frees the bounce buffer.
    void delivered();
    void arm_tap();
    void park_tap();
    /// Takes `bytes` worth of tokens from `limiter` (null: unlimited), or arms `timer` for when
    /// they will be there and returns false.
    bool admit(RateLimiter* limiter, const UniqueFd& timer, uint64_t bytes);
    void on_rx_timer();
    void on_tx_timer();

    std::shared_ptr<EventLoop> m_loop;
    net::Tap m_tap;
    std::array<uint8_t, 6> m_mac;
    const std::array<uint16_t, 2> m_queue_sizes{k_queue_size, k_queue_size};

    // Set in activate() before the loop watches the fds, cleared in reset() after it stopped.
    std::optional<ActiveQueue> m_rx;
    std::optional<ActiveQueue> m_tx;
    VirtioInterrupt* m_interrupt = nullptr;
    uint64_t m_features = 0;
    bool m_tap_armed = false;
    // A frame read from the tap (header included) waiting for an RX buffer; loop thread only.
    std::vector<uint8_t> m_bounce;
    size_t m_pending = 0;  // bytes of m_bounce holding a frame; 0: none
    bool m_pending_admitted = false;  // the RX rate limit already let m_bounce's frame through
    bool m_rx_held = false;           // m_bounce's frame is counted in rx_throttled
    // A TX chain popped but held back by the rate limit; sent first when the TX timer fires.
    std::optional<DescriptorChain> m_tx_held;
    // MRG_RXBUF negotiated: frames go through m_merge (which holds the chains of a frame that
    // waits for more buffers).
    bool m_mergeable = false;
    MergeableRx m_merge;

    // Always there (unlimited ones admit at once, and set_rate_limits() may limit them later),
    // each with its timer from the first activation.
    std::unique_ptr<RateLimiter> m_rx_limiter;
    std::unique_ptr<RateLimiter> m_tx_limiter;
    UniqueFd m_rx_timer;
    UniqueFd m_tx_timer;

    DeviceCounters m_counters;
    NetCounters m_net_counters;
};

}  // namespace corral::vmm::virtio
