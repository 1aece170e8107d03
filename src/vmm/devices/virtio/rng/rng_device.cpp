#include "vmm/devices/virtio/rng/rng_device.h"

#include <sys/random.h>

#include <cerrno>

#include "base/log.h"
#include "vmm/devices/virtio/queue_service.h"

namespace corral::vmm::virtio {

Result<void> RngDevice::activate(ActivateContext context) {
    reset();
    if (context.queues.empty() || !context.queues[0]) return fail("virtio-rng: the request queue is not enabled");
    m_queue.emplace(std::move(*context.queues[0]));
    m_interrupt = &context.interrupt;
    int fd = m_queue->notify_fd;
    auto added = m_loop->add(fd, [this] { process_queue(); });
    if (!added) {
        m_queue.reset();
        m_interrupt = nullptr;
        return added;
    }
    // Buffers made available before DRIVER_OK were notified to an unwatched eventfd: serve now.
    m_loop->run_sync([this] { process_queue(); });
    return {};
}

void RngDevice::reset() {
    if (!m_queue) return;
    m_loop->remove(m_queue->notify_fd);  // after this, process_queue() is not running
    m_queue.reset();
    m_interrupt = nullptr;
}

std::vector<std::optional<ActiveQueue>> RngDevice::quiesce() {
    std::vector<std::optional<ActiveQueue>> queues(1);
    if (!m_queue) return queues;
    m_loop->remove(m_queue->notify_fd);  // after this, process_queue() is not running
    queues[0] = std::move(m_queue);
    m_queue.reset();
    m_interrupt = nullptr;
    return queues;
}

uint32_t RngDevice::fill(const DescriptorChain& chain) {
    uint32_t written = 0;
    for (const GuestBuffer& buffer : chain.writable) {
        uint32_t want = std::min(buffer.length, k_max_bytes_per_request - written);
        uint32_t done = 0;
        while (done < want) {
            // buffer.host covers buffer.length bytes of guest RAM (checked when popped).
            ssize_t n = ::getrandom(buffer.host + done, want - done, 0);
            if (n < 0) {
                if (errno == EINTR) continue;
                ++m_counters.errors;
                return written + done;
            }
            done += static_cast<uint32_t>(n);
        }
        written += done;
        if (written >= k_max_bytes_per_request) break;
    }
    return written;
}

void RngDevice::process_queue() {
    if (!m_queue || !m_interrupt) return;
    serve_queue(*m_queue, 0, *m_interrupt, m_counters, [this](const DescriptorChain& chain) {
        uint32_t written = fill(chain);
        ++m_counters.requests;
        m_counters.bytes += written;
        return written;
    });
}

}  // namespace corral::vmm::virtio
