#include "vmm/devices/virtio/console/console_device.h"

#include "vmm/devices/virtio/queue_service.h"

namespace corral::vmm::virtio {

void ConsoleDevice::read_config(uint64_t offset, std::span<uint8_t> data) {
    std::array<uint8_t, k_config_size> config{};
    config[4] = 1;  // max_nr_ports (le32) = 1
    for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < config.size() ? config[offset + i] : 0;
}

Result<void> ConsoleDevice::activate(ActivateContext context) {
    reset();
    if (context.queues.size() <= k_transmit_queue || !context.queues[k_transmit_queue])
        return fail("virtio-console: transmitq0 is not enabled");
    m_transmit.emplace(std::move(*context.queues[k_transmit_queue]));
    m_interrupt = &context.interrupt;
    auto added = m_loop->add(m_transmit->notify_fd, [this] { process_transmit(); });
    if (!added) {
        m_transmit.reset();
        m_interrupt = nullptr;
        return added;
    }
    m_loop->run_sync([this] { process_transmit(); });
    return {};
}

void ConsoleDevice::reset() {
    if (!m_transmit) return;
    m_loop->remove(m_transmit->notify_fd);
    m_transmit.reset();
    m_interrupt = nullptr;
}

void ConsoleDevice::process_transmit() {
    if (!m_transmit || !m_interrupt) return;
    serve_queue(*m_transmit, k_transmit_queue, *m_interrupt, m_counters, [this](const DescriptorChain& chain) {
        // Written straight from guest RAM: each buffer's host range was checked when popped,
        // and nothing is copied or allocated by guest-chosen sizes.
        for (const GuestBuffer& buffer : chain.readable)
            if (m_output) m_output(std::span<const uint8_t>(buffer.host, buffer.length));
        if (!chain.writable.empty()) ++m_counters.errors;  // transmit buffers are read-only
        ++m_counters.requests;
        m_counters.bytes += chain.readable_bytes;
        return uint32_t{0};
    });
}

}  // namespace corral::vmm::virtio
