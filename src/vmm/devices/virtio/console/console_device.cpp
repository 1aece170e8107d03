#include "vmm/devices/virtio/console/console_device.h"

#include <algorithm>
#include <cstring>

#include "vmm/devices/virtio/queue_service.h"
#include "vmm/snapshot/state_stream.h"

namespace corral::vmm::virtio {

ConsoleDevice::ConsoleDevice(std::shared_ptr<EventLoop> loop, OutputSink output, std::unique_ptr<ConsoleInput> input)
    : m_loop(std::move(loop)), m_output(std::move(output)), m_input(std::move(input)) {
    if (m_input) m_input_buffer.resize(k_input_chunk);
}

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
    // A driver that leaves receiveq0 disabled just gets no input.
    if (m_input && context.queues[k_receive_queue]) m_receive.emplace(std::move(*context.queues[k_receive_queue]));
    m_interrupt = &context.interrupt;
    auto added = m_loop->add(m_transmit->notify_fd, [this] { process_transmit(); });
    if (added && m_receive) added = m_loop->add(m_receive->notify_fd, [this] { on_receive_notify(); });
    if (added && m_receive) added = m_input->watch(*m_loop, [this] { process_receive(); });
    if (!added) {
        reset();
        return added;
    }
    m_loop->run_sync([this] {
        process_transmit();
        process_receive();
    });
    return {};
}

void ConsoleDevice::reset() {
    if (!m_transmit && !m_receive) return;
    if (m_receive) {
        m_input->unwatch();  // after it returns, process_receive() no longer runs from input
        m_loop->remove(m_receive->notify_fd);
    }
    if (m_transmit) m_loop->remove(m_transmit->notify_fd);
    m_transmit.reset();
    m_receive.reset();
    m_interrupt = nullptr;
    // Bytes read but not delivered belonged to the old driver's session.
    m_input_start = m_input_end = 0;
}

std::vector<std::optional<ActiveQueue>> ConsoleDevice::quiesce() {
    std::vector<std::optional<ActiveQueue>> queues(2);
    if (!m_transmit && !m_receive) return queues;
    if (m_receive) {
        m_input->unwatch();
        m_loop->remove(m_receive->notify_fd);
    }
    if (m_transmit) m_loop->remove(m_transmit->notify_fd);
    // Transmission is synchronous: nothing is in flight once the callbacks are gone.
    queues[k_transmit_queue] = std::move(m_transmit);
    queues[k_receive_queue] = std::move(m_receive);
    m_transmit.reset();
    m_receive.reset();
    m_interrupt = nullptr;
    return queues;
}

void ConsoleDevice::save_state(snapshot::StateWriter& writer) const {
    writer.section(snapshot::tag("VCON"), 1, [&](snapshot::StateWriter& w) {
        w.bytes(std::span(m_input_buffer).subspan(m_input_start, m_input_end - m_input_start));
    });
}

Result<void> ConsoleDevice::restore_state(snapshot::StateReader& reader) {
    std::vector<uint8_t> pending;
    reader.section(snapshot::tag("VCON"), 1, [&](snapshot::StateReader& r, uint16_t) {
        pending = r.bytes(k_input_chunk);
    });
    TRY_VOID(reader.finish());
    if (pending.size() > m_input_buffer.size())
        return fail(ErrorKind::Invalid, "virtio-console state: more pending input than the device buffers");
    std::copy(pending.begin(), pending.end(), m_input_buffer.begin());
    m_input_start = 0;
    m_input_end = pending.size();
    return {};
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

void ConsoleDevice::on_receive_notify() {
    if (!m_receive) return;
    drain_event_fd(m_receive->notify_fd);
    m_input->set_paused(false);  // the guest added buffers: take input again
    process_receive();
}

void ConsoleDevice::process_receive() {
    if (!m_receive || !m_interrupt) return;
    Virtqueue& queue = m_receive->queue;
    bool used_any = false;
    for (;;) {
        if (m_input_start == m_input_end) {
            m_input_start = 0;
            m_input_end = m_input->read(m_input_buffer);
            if (m_input_end == 0) break;  // nothing more now; `ready` runs when there is
        }
        auto chain = queue.pop();
        if (!chain) {
            if (queue.enable_notifications()) continue;  // buffers arrived meanwhile (§2.7.10)
            // No buffer: hold what was read, stop reading until the driver adds buffers.
            m_input->set_paused(true);
            break;
        }
        size_t copied = 0;
        for (const GuestBuffer& buffer : chain->writable) {
            size_t take = std::min<size_t>(buffer.length, m_input_end - m_input_start);
            if (take == 0) break;
            // buffer.host covers buffer.length bytes of guest RAM (checked when popped); take <= length.
            std::memcpy(buffer.host, m_input_buffer.data() + m_input_start, take);
            m_input_start += take;
            copied += take;
        }
        if (chain->writable.empty()) ++m_counters.errors;  // a read-only receive buffer: returned unused
        else ++m_counters.requests;
        m_counters.bytes += copied;
        queue.add_used(chain->head, static_cast<uint32_t>(copied));
        used_any = true;
    }
    uint64_t rejected = queue.counters().rejected_chains;
    if (rejected != m_receive->rejected_reported) {
        m_counters.rejected_chains += rejected - m_receive->rejected_reported;
        m_receive->rejected_reported = rejected;
        used_any = true;  // malformed chains were returned used too
    }
    if (used_any && queue.should_interrupt()) m_interrupt->signal_queue(k_receive_queue);
    if (queue.broken() && !m_receive->broken_reported) {
        m_receive->broken_reported = true;
        ++m_counters.errors;
        m_interrupt->set_needs_reset();
    }
}

}  // namespace corral::vmm::virtio
