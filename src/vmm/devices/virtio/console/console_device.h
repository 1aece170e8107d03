#pragma once

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <span>

#include "base/event_loop.h"
#include "vmm/devices/virtio/virtio_device.h"

namespace corral::vmm::virtio {

/// virtio-console (virtio 1.2 §5.3) with one port and no features (no MULTIPORT, no SIZE, no
/// EMERG_WRITE): the guest's hvc0. What the guest transmits goes to the output sink (the
/// monitor passes the same stdout writer as the serial console). Input is not implemented:
/// receiveq0 is accepted and left alone, so the guest reads nothing.
/// Requests are served on the event loop thread.
class ConsoleDevice final : public VirtioDevice {
public:
    using OutputSink = std::function<void(std::span<const uint8_t>)>;
    static constexpr uint16_t k_queue_size = 256;
    static constexpr uint16_t k_receive_queue = 0;
    static constexpr uint16_t k_transmit_queue = 1;
    static constexpr uint32_t k_config_size = 12;  // cols, rows, max_nr_ports, emerg_wr

    ConsoleDevice(std::shared_ptr<EventLoop> loop, OutputSink output)
        : m_loop(std::move(loop)), m_output(std::move(output)) {}
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
    DeviceCounters::Snapshot counters() const override { return m_counters.snapshot(); }

    /// Serves transmitq0 once (what the event loop runs on a notification; tests call it).
    void process_transmit();

private:
    std::shared_ptr<EventLoop> m_loop;
    OutputSink m_output;
    const std::array<uint16_t, 2> m_queue_sizes{k_queue_size, k_queue_size};
    std::optional<ActiveQueue> m_transmit;
    VirtioInterrupt* m_interrupt = nullptr;
    DeviceCounters m_counters;
};

}  // namespace corral::vmm::virtio
