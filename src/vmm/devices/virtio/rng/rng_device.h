#pragma once

#include <array>
#include <memory>
#include <optional>

#include "base/event_loop.h"
#include "vmm/devices/virtio/virtio_device.h"

namespace corral::vmm::virtio {

/// virtio-rng, the entropy device (virtio 1.2 §5.4): one request queue whose device-writable
/// buffers are filled from the host's getrandom(). At most k_max_bytes_per_request bytes are
/// written per chain, whatever the guest offers (the driver accepts short fills).
/// Requests are served on the event loop thread; activate()/reset() come from the transport.
class RngDevice final : public VirtioDevice {
public:
    static constexpr uint32_t k_max_bytes_per_request = 64 * 1024;
    static constexpr uint16_t k_queue_size = 256;

    explicit RngDevice(std::shared_ptr<EventLoop> loop) : m_loop(std::move(loop)) {}
    ~RngDevice() override { reset(); }

    DeviceType device_type() const override { return DeviceType::Entropy; }
    uint64_t device_features() const override { return 0; }
    std::span<const uint16_t> queue_max_sizes() const override { return m_queue_sizes; }
    uint32_t config_size() const override { return 0; }
    void read_config(uint64_t, std::span<uint8_t> data) override { std::fill(data.begin(), data.end(), 0); }
    void write_config(uint64_t, std::span<const uint8_t>) override {}
    Result<void> activate(ActivateContext context) override;
    void reset() override;
    /// Requests are served synchronously: nothing is ever in flight.
    std::vector<std::optional<ActiveQueue>> quiesce() override;
    DeviceCounters::Snapshot counters() const override { return m_counters.snapshot(); }

    /// Serves the queue once (what the event loop runs on a notification; tests call it).
    void process_queue();

private:
    uint32_t fill(const DescriptorChain& chain);

    std::shared_ptr<EventLoop> m_loop;
    const std::array<uint16_t, 1> m_queue_sizes{k_queue_size};
    // Set in activate() before the loop watches the queue, cleared in reset() after it stopped.
    std::optional<ActiveQueue> m_queue;
    VirtioInterrupt* m_interrupt = nullptr;
    DeviceCounters m_counters;
};

}  // namespace corral::vmm::virtio
