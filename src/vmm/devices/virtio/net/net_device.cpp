#include "vmm/devices/virtio/net/net_device.h"

#include <sys/timerfd.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "vmm/devices/virtio/queue_service.h"

namespace corral::vmm::virtio {

namespace {

// Always a limiter (an unlimited one admits at once), so that set_rate_limits() can limit a NIC
// that started without limits.
std::unique_ptr<RateLimiter> make_limiter(const std::optional<TokenBucketConfig>& bytes,
                                          const std::optional<TokenBucketConfig>& frames) {
    return std::make_unique<RateLimiter>(bytes, frames);
}

}  // namespace

NetDevice::NetDevice(std::shared_ptr<EventLoop> loop, net::Tap tap, std::array<uint8_t, 6> mac, NetRateLimits limits)
    : m_loop(std::move(loop)), m_tap(std::move(tap)), m_mac(mac), m_bounce(k_header_size + k_max_frame),
      m_rx_limiter(make_limiter(limits.rx_bytes, limits.rx_frames)),
      m_tx_limiter(make_limiter(limits.tx_bytes, limits.tx_frames)) {}

NetDevice::~NetDevice() {
    reset();
    // A limit bit: say how often (no API shows the counters yet).
    if (auto counters = m_net_counters.snapshot(); counters.rx_throttled != 0 || counters.tx_throttled != 0) {
        log_info("virtio-net {}: the rate limit held back {} received and {} sent frames", m_tap.name(),
                 counters.rx_throttled, counters.tx_throttled);
    }
}

void NetDevice::set_rate_limits(const NetRateLimits& limits) {
    m_rx_limiter->reconfigure(limits.rx_bytes, limits.rx_frames);
    m_tx_limiter->reconfigure(limits.tx_bytes, limits.tx_frames);
}

uint64_t NetDevice::device_features() const {
    uint64_t features =
        k_net_f_mac | k_net_f_status | k_net_f_csum | k_net_f_host_tso4 | k_net_f_host_tso6 | k_net_f_mrg_rxbuf;
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
    m_mergeable = (m_features & k_net_f_mrg_rxbuf) != 0;
    // What the kernel may hand us for the guest: only what the driver said it can take (§5.1.6.4).
    net::TapOffloads offloads;
    offloads.csum = (m_features & k_net_f_guest_csum) != 0;
    offloads.tso4 = offloads.csum && (m_features & k_net_f_guest_tso4) != 0;
    offloads.tso6 = offloads.csum && (m_features & k_net_f_guest_tso6) != 0;
    TRY_VOID(m_tap.set_offloads(offloads));
    for (UniqueFd* timer : {&m_rx_timer, &m_tx_timer}) {
        if (timer->valid())
            continue;
        *timer = UniqueFd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
        if (!timer->valid()) return fail_errno("virtio-net: timerfd_create");
    }

    m_rx.emplace(std::move(*context.queues[k_rx_queue]));
    m_tx.emplace(std::move(*context.queues[k_tx_queue]));
    m_interrupt = &context.interrupt;
    m_pending = 0;
    auto added = m_loop->add(m_tx->notify_fd, [this] { process_tx(); });
    if (added) added = m_loop->add(m_rx->notify_fd, [this] { on_rx_notify(); });
    if (added && m_rx_timer.valid()) added = m_loop->add(m_rx_timer.get(), [this] { on_rx_timer(); });
    if (added && m_tx_timer.valid()) added = m_loop->add(m_tx_timer.get(), [this] { on_tx_timer(); });
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
    if (m_rx_timer.valid()) m_loop->remove(m_rx_timer.get());
    if (m_tx_timer.valid()) m_loop->remove(m_tx_timer.get());
    m_rx.reset();
    m_tx.reset();
    m_interrupt = nullptr;
    m_pending = 0;
    m_pending_admitted = false;
    m_rx_held = false;
    m_tx_held.reset();  // the driver resets its rings too: the held chain is forgotten with them
    m_merge.reset();
    ignore_error(m_tap.set_offloads({}),
                 "a reset cannot fail; the next activation sets the offloads the driver accepts, and fails there");
}

std::vector<std::optional<ActiveQueue>> NetDevice::quiesce() {
    std::vector<std::optional<ActiveQueue>> queues(2);
    if (!m_rx && !m_tx) return queues;
    // After remove() the callbacks are neither running nor will they run again.
    m_loop->remove(m_tap.fd());
    m_tap_armed = false;
    if (m_tx) m_loop->remove(m_tx->notify_fd);
    if (m_rx) m_loop->remove(m_rx->notify_fd);
    if (m_rx_timer.valid()) m_loop->remove(m_rx_timer.get());
    if (m_tx_timer.valid()) m_loop->remove(m_tx_timer.get());
    if (m_tx && m_tx_held) {
        DescriptorChain chain = std::move(*m_tx_held);
        m_tx_held.reset();
        transmit(chain);
        m_tx->queue.add_used(chain.head, 0);
        finish(*m_tx, k_tx_queue, true);
    }
    if (m_rx && m_merge.held() > 0) {
        // Chains popped for a frame still waiting for more buffers were never used: hand them back
        // to the avail ring (the frame itself is lost, as the README says of a held frame), or the
        // snapshot's next_avail would skip them and the restored guest would never get them back.
        QueuePosition position = m_rx->queue.position();
        position.next_avail = static_cast<uint16_t>(position.next_avail - m_merge.held());
        m_rx->queue.set_position(position);
    }
    m_merge.reset();
    queues[k_rx_queue] = std::move(m_rx);
    queues[k_tx_queue] = std::move(m_tx);
    m_rx.reset();
    m_tx.reset();
    m_interrupt = nullptr;
    m_pending = 0;
    m_pending_admitted = false;
    m_rx_held = false;
    return queues;
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

bool NetDevice::admit(RateLimiter* limiter, const UniqueFd& timer, uint64_t bytes) {
    if (!limiter || limiter->consume(bytes)) return true;
    auto delay = limiter->time_until_available(bytes);
    if (delay <= std::chrono::nanoseconds(0)) delay = std::chrono::nanoseconds(1);  // 0 would disarm
    itimerspec spec{};
    spec.it_value.tv_sec = static_cast<time_t>(delay.count() / 1'000'000'000);
    spec.it_value.tv_nsec = static_cast<long>(delay.count() % 1'000'000'000);
    if (::timerfd_settime(timer.get(), 0, &spec, nullptr) != 0)
        log_error("virtio-net {}: timerfd_settime failed: {}", m_tap.name(), std::strerror(errno));
    return false;
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

void NetDevice::on_tx_timer() {
    drain_event_fd(m_tx_timer.get());  // reads the expiration count
    process_tx();
}

void NetDevice::process_tx() {
    if (!m_tx || !m_interrupt) return;
    drain_event_fd(m_tx->notify_fd);
    Virtqueue& queue = m_tx->queue;
    bool used_any = false;
    for (;;) {
        std::optional<DescriptorChain> chain = std::exchange(m_tx_held, std::nullopt);
        bool was_held = chain.has_value();
        if (!chain) chain = queue.pop();
        if (!chain) {
            if (queue.enable_notifications()) continue;  // more arrived meanwhile (§2.7.10)
            break;
        }
        // The cost is what the frame would put on the wire; a malformed chain costs its size too,
        // so a guest cannot dodge the limit with junk.
        uint64_t cost = chain->readable_bytes - std::min<uint64_t>(chain->readable_bytes, k_header_size);
        if (!admit(m_tx_limiter.get(), m_tx_timer, cost)) {
            // Not used: the guest keeps seeing it in flight. Resumes from on_tx_timer().
            if (!was_held) ++m_net_counters.tx_throttled;
            m_tx_held = std::move(chain);
            break;
        }
        transmit(*chain);
        queue.add_used(chain->head, 0);  // TX buffers are device-readable only: nothing written
        used_any = true;
    }
    finish(*m_tx, k_tx_queue, used_any);
}

void NetDevice::transmit(const DescriptorChain& chain) {
    auto frame = parse_tx_chain(chain, m_features);
    if (!frame) {
        ++m_net_counters.tx_rejected;
        ++m_counters.rejected_chains;
        return;
    }
    // Header first (our checked copy), then the frame straight from guest RAM.
    std::vector<iovec> parts;
    parts.reserve(frame->frame.size() + 1);
    parts.push_back({&frame->header, k_header_size});
    parts.insert(parts.end(), frame->frame.begin(), frame->frame.end());
    auto written = m_tap.write(parts);
    if (!written) {
        // EIO: the tap is down; EINVAL: the kernel refused the header's offsets. Count, go on.
        ++m_net_counters.tx_dropped;
        return;
    }
    ++m_net_counters.tx_frames;
    m_net_counters.tx_bytes += frame->frame_bytes;
    ++m_counters.requests;
    m_counters.bytes += frame->frame_bytes;
}

void NetDevice::on_rx_notify() {
    if (!m_rx) return;
    drain_event_fd(m_rx->notify_fd);
    arm_tap();  // the guest added buffers: read the tap again
    process_rx();
}

void NetDevice::on_rx_timer() {
    drain_event_fd(m_rx_timer.get());  // reads the expiration count
    arm_tap();
    process_rx();
}

void NetDevice::delivered() {
    ++m_net_counters.rx_frames;
    m_net_counters.rx_bytes += m_pending - k_header_size;
    ++m_counters.requests;
    m_counters.bytes += m_pending - k_header_size;
    m_pending = 0;
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
            m_pending_admitted = false;
        }
        if (!m_pending_admitted) {
            if (!admit(m_rx_limiter.get(), m_rx_timer, m_pending - k_header_size)) {
                // Keep the frame, leave the rest in the tap; on_rx_timer() resumes.
                if (!m_rx_held) ++m_net_counters.rx_throttled;
                m_rx_held = true;
                park_tap();
                break;
            }
            m_pending_admitted = true;
            m_rx_held = false;
        }
        if (m_mergeable) {
            RxMergeResult merged = m_merge.place(queue, std::span(m_bounce).first(m_pending));
            if (merged.rejected) {
                // Chains without room for a header: the guest's fault; returned used, length 0.
                m_net_counters.rx_rejected += merged.rejected;
                m_counters.rejected_chains += merged.rejected;
                used_any = true;
            }
            if (merged.outcome == RxMerge::NeedBuffers) {
                // Keep the frame (and the chains taken for it), stop reading until the driver
                // notifies the RX queue.
                ++m_net_counters.rx_stalls;
                park_tap();
                break;
            }
            used_any = true;
            if (merged.outcome == RxMerge::Dropped) {
                ++m_net_counters.rx_dropped;
                m_pending = 0;
                continue;
            }
            delivered();
            ++frames;
            continue;
        }
        auto chain = queue.pop();
        if (!chain) {
            if (queue.enable_notifications()) continue;  // buffers arrived meanwhile
            // No buffer: keep the frame, stop reading until the driver notifies the RX queue.
            ++m_net_counters.rx_stalls;
            park_tap();
            break;
        }
        switch (place_rx_frame(*chain, std::span(m_bounce).first(m_pending))) {
            case RxPlacement::ChainRejected:
                // A read-only or tiny RX chain: the guest's fault; the frame waits for a good one.
                ++m_net_counters.rx_rejected;
                ++m_counters.rejected_chains;
                queue.add_used(chain->head, 0);
                used_any = true;
                continue;
            case RxPlacement::FrameTooBig:
                // Without MRG_RXBUF a frame must fit one chain; the driver sized it too small.
                ++m_net_counters.rx_dropped;
                m_pending = 0;
                queue.add_used(chain->head, 0);
                used_any = true;
                continue;
            case RxPlacement::Delivered: break;
        }
        queue.add_used(chain->head, static_cast<uint32_t>(m_pending));
        used_any = true;
        ++frames;
        delivered();
    }
    finish(*m_rx, k_rx_queue, used_any);
}

}  // namespace corral::vmm::virtio
