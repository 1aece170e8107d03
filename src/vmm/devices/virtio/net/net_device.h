#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <vector>

#include "base/event_loop.h"
#include "net/tap.h"
#include "vmm/devices/virtio/virtio_device.h"

namespace corral::vmm::virtio {

/// virtio-net feature bits (virtio 1.2 §5.1.3).
constexpr uint64_t k_net_f_csum = 1ull << 0;
constexpr uint64_t k_net_f_guest_csum = 1ull << 1;
constexpr uint64_t k_net_f_mac = 1ull << 5;
constexpr uint64_t k_net_f_guest_tso4 = 1ull << 7;
constexpr uint64_t k_net_f_guest_tso6 = 1ull << 8;
constexpr uint64_t k_net_f_host_tso4 = 1ull << 11;
constexpr uint64_t k_net_f_host_tso6 = 1ull << 12;
constexpr uint64_t k_net_f_mrg_rxbuf = 1ull << 15;
constexpr uint64_t k_net_f_status = 1ull << 16;

/// virtio_net_hdr_v1 (§5.1.6): the 12 bytes in front of every frame, both directions.
struct VirtioNetHeader {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
    uint16_t num_buffers;
};
static_assert(sizeof(VirtioNetHeader) == net::Tap::k_vnet_header_size);
constexpr uint8_t k_net_hdr_f_needs_csum = 1;
constexpr uint8_t k_net_hdr_gso_none = 0;
constexpr uint8_t k_net_hdr_gso_tcpv4 = 1;
constexpr uint8_t k_net_hdr_gso_tcpv6 = 4;

/// Counters of one NIC (read with snapshot()).
struct NetCounters {
    std::atomic<uint64_t> tx_frames{0}, tx_bytes{0};  // frames written to the tap (bytes without header)
    std::atomic<uint64_t> rx_frames{0}, rx_bytes{0};  // frames put in guest buffers
    std::atomic<uint64_t> tx_dropped{0};   // valid frames the tap refused (full queue, link down...)
    std::atomic<uint64_t> rx_dropped{0};   // frames that did not fit the RX buffer they were given
    std::atomic<uint64_t> tx_rejected{0};  // TX chains refused: short header, oversized, bad header
    std::atomic<uint64_t> rx_rejected{0};  // RX chains refused: no writable buffer, too small for a header
    std::atomic<uint64_t> rx_stalls{0};    // times the tap was parked because the guest had no RX buffer

    struct Snapshot {
        uint64_t tx_frames, tx_bytes, rx_frames, rx_bytes, tx_dropped, rx_dropped, tx_rejected, rx_rejected,
            rx_stalls;
    };
    Snapshot snapshot() const {
        return {tx_frames.load(),  tx_bytes.load(),    rx_frames.load(),   rx_bytes.load(), tx_dropped.load(),
                rx_dropped.load(), tx_rejected.load(), rx_rejected.load(), rx_stalls.load()};
    }
};

/// virtio-net (virtio 1.2 §5.1) on a host tap, with the data path in user space: one receive
/// queue (0) and one transmit queue (1), no control queue.
///
/// Features: MAC, STATUS (link always up), CSUM and HOST_TSO4/6 (the tap takes checksum-partial
/// and GSO frames from us and the kernel finishes them), and GUEST_CSUM / GUEST_TSO4/6 when the
/// tap supports those offloads (TUNSETOFFLOAD is set from what the driver negotiated).
/// MRG_RXBUF is not offered: each received frame goes into one chain, so with GUEST_TSO the
/// driver posts 65562-byte chains ("big packets") and without it 1526-byte ones (§5.1.6.3.1).
/// Simpler and validated once per frame; costlier in descriptors than merged buffers.
///
/// TX: each chain's readable part is the 12-byte header then the frame; the header is copied
/// out and checked (flags and GSO type against the negotiated features), the total bounded to
/// header + 65550 bytes, and the frame is written to the tap with writev straight from guest
/// RAM. RX: the tap fd is on the event loop; a frame is read into a bounce buffer, then copied
/// into the next RX chain's writable buffers. When the guest has no RX buffer the frame is
/// held and the tap is parked (not read; the kernel's tap queue absorbs or drops) until the
/// guest notifies the RX queue. Everything runs on the event loop thread.
class NetDevice final : public VirtioDevice {
public:
    static constexpr uint16_t k_queue_size = 256;
    static constexpr uint16_t k_rx_queue = 0;
    static constexpr uint16_t k_tx_queue = 1;
    static constexpr uint32_t k_header_size = sizeof(VirtioNetHeader);
    /// Largest frame, header excluded: 65562 - 12, the buffer size §5.1.6.3.1 asks of drivers
    /// that take unsegmented TSO frames (a 64 KiB IP packet plus Ethernet and VLAN headers).
    static constexpr uint32_t k_max_frame = 65550;
    static constexpr uint32_t k_min_frame = 14;  // an Ethernet header
    /// Frames moved per event before yielding to other fds on the loop.
    static constexpr unsigned k_batch = 64;

    NetDevice(std::shared_ptr<EventLoop> loop, net::Tap tap, std::array<uint8_t, 6> mac);
    ~NetDevice() override { reset(); }

    DeviceType device_type() const override { return DeviceType::Net; }
    uint64_t device_features() const override;
    std::span<const uint16_t> queue_max_sizes() const override { return m_queue_sizes; }
    /// mac[6], status, max_virtqueue_pairs (§5.1.4).
    uint32_t config_size() const override { return 10; }
    void read_config(uint64_t offset, std::span<uint8_t> data) override;
    void write_config(uint64_t, std::span<const uint8_t>) override {}  // the MAC is read-only
    Result<void> activate(ActivateContext context) override;
    void reset() override;
    DeviceCounters::Snapshot counters() const override { return m_counters.snapshot(); }
    NetCounters::Snapshot net_counters() const { return m_net_counters.snapshot(); }

    const net::Tap& tap() const { return m_tap; }
    /// What the event loop runs (tests call them directly).
    void process_tx();
    void process_rx();
    void on_rx_notify();

private:
    uint32_t transmit(const DescriptorChain& chain);
    void finish(ActiveQueue& active, uint16_t index, bool used_any);
    void arm_tap();
    void park_tap();

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

    DeviceCounters m_counters;
    NetCounters m_net_counters;
};

}  // namespace corral::vmm::virtio
