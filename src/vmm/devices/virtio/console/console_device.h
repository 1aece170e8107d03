#pragma once

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "base/event_loop.h"
#include "vmm/devices/virtio/virtio_device.h"

namespace corral::vmm::virtio {

/// Host input for a console port (a unix socket today), read on the device's event loop.
class ConsoleInput {
public:
    virtual ~ConsoleInput() = default;
    /// Starts watching for input on `loop`: `ready` runs on the loop thread whenever read() may
    /// return bytes. Called on activation; watching lasts until unwatch().
    virtual Result<void> watch(EventLoop& loop, std::function<void()> ready) = 0;
    virtual void unwatch() = 0;
    /// Back-pressure: while paused, `ready` does not run (the input waits in the kernel).
    virtual void set_paused(bool paused) = 0;
    /// Reads what is there, without blocking; 0: nothing now.
    virtual size_t read(std::span<uint8_t> buffer) = 0;
};

/// virtio-console (virtio 1.2 §5.3) with one port and no features (no MULTIPORT, no SIZE, no
/// EMERG_WRITE): the guest's hvc0. What the guest transmits goes to the output sink. With an
/// input, host bytes go into receiveq0's buffers as a byte stream (a buffer takes what fits; the
/// rest goes into the next); while the guest has no receive buffer the input is paused, so
/// nothing is lost or buffered without bound. Without an input receiveq0 is left alone.
/// Requests are served on the event loop thread.
class ConsoleDevice final : public VirtioDevice {
public:
    using OutputSink = std::function<void(std::span<const uint8_t>)>;
    static constexpr uint16_t k_queue_size = 256;
    static constexpr uint16_t k_receive_queue = 0;
    static constexpr uint16_t k_transmit_queue = 1;
    static constexpr uint32_t k_config_size = 12;  // cols, rows, max_nr_ports, emerg_wr
    static constexpr size_t k_input_chunk = 4096;  // host bytes read at a time

    ConsoleDevice(std::shared_ptr<EventLoop> loop, OutputSink output, std::unique_ptr<ConsoleInput> input = nullptr);
    ~ConsoleDevice() override { reset(); }

    DeviceType device_type() const override { return DeviceType::Console; }
    uint64_t device_features() const override { return 0; }
    std::span<const uint16_t> queue_max_sizes() const override { return m_queue_sizes; }
    uint32_t config_size() const override { return k_config_size; }
    /// cols = rows = 0 (unknown), max_nr_ports = 1, emerg_wr reads 0 (§5.3.4).
    void read_config(uint64_t offset, std::span<uint8_t> data) override;
    void write_config(uint64_t, std::span<const uint8_t>) override {}
    Result<void> activate(ActivateContext context) override;
    void reset() override;
    /// Hands both queues back; host input read but not yet delivered is kept (and saved).
    std::vector<std::optional<ActiveQueue>> quiesce() override;
    /// Section "VCON": the host input bytes not yet in a guest buffer.
    void save_state(snapshot::StateWriter& writer) const override;
    Result<void> restore_state(snapshot::StateReader& reader) override;
    DeviceCounters::Snapshot counters() const override { return m_counters.snapshot(); }

    /// Serves transmitq0 once (what the event loop runs on a notification; tests call it).
    void process_transmit();
    /// Moves host input into receiveq0 (on input, and when the guest adds receive buffers).
    void process_receive();

private:
    void on_receive_notify();

    std::shared_ptr<EventLoop> m_loop;
    OutputSink m_output;
    std::unique_ptr<ConsoleInput> m_input;
    const std::array<uint16_t, 2> m_queue_sizes{k_queue_size, k_queue_size};
    std::optional<ActiveQueue> m_transmit;
    std::optional<ActiveQueue> m_receive;  // only with an input
    VirtioInterrupt* m_interrupt = nullptr;
    // Host bytes read but not yet in a guest buffer: m_input_buffer[m_input_start, m_input_end).
    std::vector<uint8_t> m_input_buffer;
    size_t m_input_start = 0;
    size_t m_input_end = 0;
    DeviceCounters m_counters;
};

}  // namespace corral::vmm::virtio
