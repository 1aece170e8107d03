#include "vmm/devices/virtio/net/net_device.h"

#include <sys/uio.h>

#include <algorithm>
#include <cstring>

#include "base/log.h"
#include "vmm/devices/virtio/queue_service.h"

namespace corral::vmm::virtio {

NetDevice::NetDevice(std::shared_ptr<EventLoop> loop, net::Tap tap, std::array<uint8_t, 6> mac)
    : m_loop(std::move(loop)), m_tap(std::move(tap)), m_mac(mac), m_bounce(k_header_size + k_max_frame) {}

uint64_t NetDevice::device_features() const {
    uint64_t features = k_net_f_mac | k_net_f_status | k_net_f_csum | k_net_f_host_tso4 | k_net_f_host_tso6;
    net::TapOffloads tap = m_tap.supported_offloads();
    if (tap.csum) features |= k_net_f_guest_csum;
    if (tap.csum && tap.tso4) features |= k_net_f_guest_tso4;
    if (tap.csum && tap.tso6) features |= k_net_f_guest_tso6;
    return features;
}

void NetDevice::read_config(uint64_t offset, std::span<uint8_t> data) {
    std::array<uint8_t, 10> config{};
    std::copy(m_mac.begin(), m_mac.end(), config.begin());
    config[6] = 1;  // status: VIRTIO_NET_S_LINK_UP (little endian u16)
    config[8] = 1;  // max_virtqueue_pairs (meaningful only with MQ, which is not offered)
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = offset + i < config.size() ? config[offset + i] : 0;  // offset+size checked by the transport
}

Result<void> NetDevice::activate(ActivateContext context) {
    reset();
    if (context.queues.size() < 2 || !context.queues[k_rx_queue] || !context.queues[k_tx_queue])
        return fail("virtio-net: the receive and transmit queues must both be enabled");
    m_features = context.features;
    // What the kernel may hand us for the guest: only what the driver said it can take (§5.1.6.4).
    net::TapOffloads offloads;
    offloads.csum = (m_features & k_net_f_guest_csum) != 0;
    offloads.tso4 = offloads.csum && (m_features & k_net_f_guest_tso4) != 0;
    offloads.tso6 = offloads.csum && (m_features & k_net_f_guest_tso6) != 0;
    TRY_VOID(m_tap.set_offloads(offloads));

    m_rx.emplace(std::move(*context.queues[k_rx_queue]));
    m_tx.emplace(std::move(*context.queues[k_tx_queue]));
    m_interrupt = &context.interrupt;
    m_pending = 0;
    auto added = m_loop->add(m_tx->notify_fd, [this] { process_tx(); });
    if (added) added = m_loop->add(m_rx->notify_fd, [this] { on_rx_notify(); });
    if (!added) {
        reset();
        return added;
    }
    // Buffers made available before DRIVER_OK were notified to unwatched eventfds: serve now.
    m_loop->run_sync([this] {
        process_tx();
        arm_tap();
        process_rx();
    });
    return {};
}

void NetDevice::reset() {
    if (!m_rx && !m_tx) return;
    // After remove() the callbacks are neither running nor will they run again.
    m_loop->remove(m_tap.fd());
    m_tap_armed = false;
    if (m_tx) m_loop->remove(m_tx->notify_fd);
    if (m_rx) m_loop->remove(m_rx->notify_fd);
    m_rx.reset();
    m_tx.reset();
    m_interrupt = nullptr;
    m_pending = 0;
    (void)m_tap.set_offloads({});
}

void NetDevice::arm_tap() {
    if (m_tap_armed) return;
    auto added = m_loop->add(m_tap.fd(), [this] { process_rx(); });
    if (!added) {
        log_error("virtio-net {}: cannot watch the tap: {}", m_tap.name(), added.error().describe());
        return;
    }
    m_tap_armed = true;
}

void NetDevice::park_tap() {
    if (!m_tap_armed) return;
    m_loop->remove(m_tap.fd());  // on the loop thread: takes effect at once
    m_tap_armed = false;
}

void NetDevice::finish(ActiveQueue& active, uint16_t index, bool used_any) {
    Virtqueue& queue = active.queue;
    uint64_t rejected = queue.counters().rejected_chains;
    if (rejected != active.rejected_reported) {
        m_counters.rejected_chains += rejected - active.rejected_reported;
        active.rejected_reported = rejected;
        used_any = true;  // malformed chains were returned used too
    }
    if (used_any && queue.should_interrupt()) m_interrupt->signal_queue(index);
    if (queue.broken() && !active.broken_reported) {
        active.broken_reported = true;
        ++m_counters.errors;
        m_interrupt->set_needs_reset();
    }
}

void NetDevice::process_tx() {
    if (!m_tx || !m_interrupt) return;
    serve_queue(*m_tx, k_tx_queue, *m_interrupt, m_counters, [this](const DescriptorChain& chain) {
        return transmit(chain);
    });
}

uint32_t NetDevice::transmit(const DescriptorChain& chain) {
    // Guest-controlled sizes, bounded before anything is read: a header, then an Ethernet frame
    // of at most k_max_frame bytes. Writable buffers in a TX chain are ignored (nothing to say).
    auto reject = [this] {
        ++m_net_counters.tx_rejected;
        ++m_counters.rejected_chains;
        return 0u;
    };
    if (chain.readable_bytes < k_header_size + k_min_frame) return reject();
    if (chain.readable_bytes > k_header_size + k_max_frame) return reject();

    // Copy the header out (it may span descriptors) so that what is checked is what the tap
    // gets; the guest cannot change it after the check.
    VirtioNetHeader header;
    auto* header_bytes = reinterpret_cast<uint8_t*>(&header);
    size_t copied = 0, buffer_index = 0, buffer_offset = 0;
    while (copied < k_header_size) {
        const GuestBuffer& buffer = chain.readable[buffer_index];
        size_t take = std::min<size_t>(buffer.length, k_header_size - copied);
        // buffer.host covers buffer.length bytes of guest RAM (checked when the chain was popped).
        std::memcpy(header_bytes + copied, buffer.host, take);
        copied += take;
        if (take == buffer.length) {
            ++buffer_index;
        } else {
            buffer_offset = take;
        }
    }
    // §5.1.6.2: NEEDS_CSUM only with CSUM; GSO types only as negotiated; no ECN, no UFO.
    if (header.flags & ~k_net_hdr_f_needs_csum) return reject();
    if ((header.flags & k_net_hdr_f_needs_csum) && !(m_features & k_net_f_csum)) return reject();
    switch (header.gso_type) {
    case k_net_hdr_gso_none: break;
    case k_net_hdr_gso_tcpv4:
        if (!(m_features & k_net_f_host_tso4)) return reject();
        break;
    case k_net_hdr_gso_tcpv6:
        if (!(m_features & k_net_f_host_tso6)) return reject();
        break;
    default: return reject();
    }
    header.num_buffers = 0;

    // At most queue-size readable buffers (the queue bounds chain length) plus the header.
    std::vector<iovec> parts;
    parts.reserve(chain.readable.size() + 1);
    parts.push_back({&header, k_header_size});
    for (size_t i = buffer_index; i < chain.readable.size(); ++i) {
        const GuestBuffer& buffer = chain.readable[i];
        size_t skip = i == buffer_index ? buffer_offset : 0;
        parts.push_back({buffer.host + skip, buffer.length - skip});
    }
    uint64_t frame_bytes = chain.readable_bytes - k_header_size;
    auto written = m_tap.write(parts);
    if (!written) {
        // EIO: the tap is down; EINVAL: the kernel refused the header's offsets. Count, go on.
        ++m_net_counters.tx_dropped;
        return 0;
    }
    ++m_net_counters.tx_frames;
    m_net_counters.tx_bytes += frame_bytes;
    ++m_counters.requests;
    m_counters.bytes += frame_bytes;
    return 0;  // TX buffers are device-readable only: nothing written
}

void NetDevice::on_rx_notify() {
    if (!m_rx) return;
    drain_event_fd(m_rx->notify_fd);
    arm_tap();  // the guest added buffers: read the tap again
    process_rx();
}

void NetDevice::process_rx() {
    if (!m_rx || !m_interrupt) return;
    Virtqueue& queue = m_rx->queue;
    bool used_any = false;
    for (unsigned frames = 0; frames < k_batch;) {
        if (m_pending == 0) {
            auto n = m_tap.read(m_bounce);
            if (!n) {
                log_warning("virtio-net {}: {}", m_tap.name(), n.error().describe());
                ++m_counters.errors;
                break;
            }
            if (*n == 0) break;  // nothing waiting
            if (*n < k_header_size + k_min_frame) {
                ++m_net_counters.rx_dropped;
                continue;
            }
            m_pending = *n;
        }
        auto chain = queue.pop();
        if (!chain) {
            if (queue.enable_notifications()) continue;  // buffers arrived meanwhile
            // No buffer: keep the frame, stop reading until the driver notifies the RX queue.
            ++m_net_counters.rx_stalls;
            park_tap();
            break;
        }
        if (chain->writable_bytes < k_header_size + k_min_frame) {
            // A read-only or tiny RX chain: the guest's fault; the frame waits for a good one.
            ++m_net_counters.rx_rejected;
            ++m_counters.rejected_chains;
            queue.add_used(chain->head, 0);
            used_any = true;
            continue;
        }
        if (chain->writable_bytes < m_pending) {
            // Without MRG_RXBUF a frame must fit one chain; the driver sized it too small.
            ++m_net_counters.rx_dropped;
            m_pending = 0;
            queue.add_used(chain->head, 0);
            used_any = true;
            continue;
        }
        // num_buffers: 1 chain per frame (the tap leaves these two bytes alone).
        m_bounce[10] = 1;
        m_bounce[11] = 0;
        size_t done = 0;
        for (const GuestBuffer& buffer : chain->writable) {
            if (done == m_pending) break;
            size_t take = std::min<size_t>(buffer.length, m_pending - done);
            // buffer.host covers buffer.length bytes of guest RAM (checked when popped); take <= length.
            std::memcpy(buffer.host, m_bounce.data() + done, take);
            done += take;
        }
        queue.add_used(chain->head, static_cast<uint32_t>(m_pending));
        used_any = true;
        ++frames;
        ++m_net_counters.rx_frames;
        m_net_counters.rx_bytes += m_pending - k_header_size;
        ++m_counters.requests;
        m_counters.bytes += m_pending - k_header_size;
        m_pending = 0;
    }
    finish(*m_rx, k_rx_queue, used_any);
}

}  // namespace corral::vmm::virtio
