#include "vmm/devices/virtio/gpu/gpu_device.h"

#include <algorithm>
#include <cstring>

#include "vmm/devices/virtio/gpu/gpu_protocol.h"
#include "vmm/devices/virtio/queue_service.h"

namespace corral::vmm::virtio {
namespace {

/// Copies up to `limit` bytes of the chain's readable buffers into `out`.
void gather(const DescriptorChain& chain, size_t limit, std::vector<uint8_t>& out) {
    out.clear();
    for (const GuestBuffer& buffer : chain.readable) {
        size_t take = std::min<size_t>(buffer.length, limit - out.size());
        // buffer.host covers buffer.length bytes of guest RAM (checked when popped).
        out.insert(out.end(), buffer.host, buffer.host + take);
        if (out.size() == limit) break;
    }
}

/// Writes `bytes` across the chain's writable buffers; false (nothing written) when they are too small.
bool scatter(const DescriptorChain& chain, std::span<const uint8_t> bytes) {
    if (chain.writable_bytes < bytes.size()) return false;
    for (const GuestBuffer& buffer : chain.writable) {
        size_t take = std::min<size_t>(buffer.length, bytes.size());
        std::memcpy(buffer.host, bytes.data(), take);
        bytes = bytes.subspan(take);
        if (bytes.empty()) break;
    }
    return true;
}

}  // namespace

uint32_t GpuDevice::config_size() const { return gpu::k_config_size; }

void GpuDevice::read_config(uint64_t offset, std::span<uint8_t> data) {
    std::array<uint8_t, gpu::k_config_size> config{};
    config[8] = 1;  // num_scanouts (le32)
    for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < config.size() ? config[offset + i] : 0;
}

Result<void> GpuDevice::activate(ActivateContext context) {
    stop();
    if (context.queues.empty() || !context.queues[k_control_queue])
        return fail("virtio-gpu: the control queue is not enabled");
    if (!m_commands) m_commands = std::make_unique<gpu::GpuCommands>(context.memory, m_display);
    m_control.emplace(std::move(*context.queues[k_control_queue]));
    if (context.queues.size() > k_cursor_queue && context.queues[k_cursor_queue])
        m_cursor.emplace(std::move(*context.queues[k_cursor_queue]));
    m_interrupt = &context.interrupt;
    auto added = m_loop->add(m_control->notify_fd, [this] { process_control(); });
    if (added && m_cursor) added = m_loop->add(m_cursor->notify_fd, [this] { process_cursor(); });
    if (!added) {
        reset();
        return added;
    }
    // Buffers made available before DRIVER_OK were notified to an unwatched eventfd: serve now.
    m_loop->run_sync([this] {
        process_control();
        process_cursor();
    });
    return {};
}

void GpuDevice::stop() {
    // After remove() the callbacks are neither running nor will they run again.
    if (m_control) m_loop->remove(m_control->notify_fd);
    if (m_cursor) m_loop->remove(m_cursor->notify_fd);
    m_interrupt = nullptr;
}

void GpuDevice::reset() {
    stop();
    m_control.reset();
    m_cursor.reset();
    if (m_commands) m_commands->reset();
}

std::vector<std::optional<ActiveQueue>> GpuDevice::quiesce() {
    std::vector<std::optional<ActiveQueue>> queues(2);
    stop();
    queues[k_control_queue] = std::move(m_control);
    queues[k_cursor_queue] = std::move(m_cursor);
    m_control.reset();
    m_cursor.reset();
    return queues;
}

void GpuDevice::process_control() {
    if (!m_control || !m_interrupt || !m_commands) return;
    serve_queue(*m_control, k_control_queue, *m_interrupt, m_counters, [this](const DescriptorChain& chain) {
        gather(chain, gpu::GpuCommands::k_max_request_bytes, m_request);
        size_t length = m_commands->execute(m_request, m_response);
        ++m_counters.requests;
        m_counters.bytes += m_request.size();
        uint32_t answer = gpu::read_le<uint32_t>(m_response, 0);
        if (answer >= gpu::k_resp_err_unspec) ++m_counters.errors;
        if (!scatter(chain, std::span(m_response).first(length))) {
            ++m_counters.errors;  // no room for the answer: the driver gets none
            return uint32_t{0};
        }
        return static_cast<uint32_t>(length);
    });
}

void GpuDevice::process_cursor() {
    if (!m_cursor || !m_interrupt || !m_commands) return;
    serve_queue(*m_cursor, k_cursor_queue, *m_interrupt, m_counters, [this](const DescriptorChain& chain) {
        gather(chain, gpu::GpuCommands::k_max_response_bytes, m_request);
        m_commands->execute_cursor(m_request);
        ++m_counters.requests;
        return uint32_t{0};  // cursor commands have no answer
    });
}

}  // namespace corral::vmm::virtio
