#pragma once

#include <array>
#include <memory>
#include <optional>
#include <vector>

#include "base/event_loop.h"
#include "display/framebuffer.h"
#include "vmm/devices/virtio/gpu/gpu_commands.h"
#include "vmm/devices/virtio/virtio_device.h"

namespace corral::vmm::virtio {

/// virtio-gpu (virtio 1.2 §5.7) in 2D mode with one scanout, shown in a display::Framebuffer:
/// controlq (GET_DISPLAY_INFO, resources, backing, transfers, scanout, flush; see
/// gpu::GpuCommands) and cursorq (accepted, not drawn). No features are offered (no VIRGL, no
/// EDID: Linux's virtio_gpu then adds the standard modes and marks the display info's size
/// preferred, which its fbdev console uses). Commands are served on the event loop thread.
///
/// Snapshots: the resources live on the host (and refer to guest pages by host pointer), so the
/// device has no saved form; the VMM refuses to snapshot or migrate a VM with a display.
class GpuDevice final : public VirtioDevice {
public:
    static constexpr uint16_t k_control_queue = 0;
    static constexpr uint16_t k_cursor_queue = 1;

    GpuDevice(std::shared_ptr<EventLoop> loop, std::shared_ptr<display::Framebuffer> display)
        : m_loop(std::move(loop)), m_display(std::move(display)) {}
    ~GpuDevice() override { reset(); }

    DeviceType device_type() const override { return DeviceType::Gpu; }
    uint64_t device_features() const override { return 0; }
    std::span<const uint16_t> queue_max_sizes() const override { return m_queue_sizes; }
    uint32_t config_size() const override;
    /// events_read 0, events_clear (write ignored: no events are ever raised), num_scanouts 1,
    /// num_capsets 0.
    void read_config(uint64_t offset, std::span<uint8_t> data) override;
    void write_config(uint64_t, std::span<const uint8_t>) override {}
    Result<void> activate(ActivateContext context) override;
    /// Stops serving and forgets every resource (a reset driver creates them anew).
    void reset() override;
    /// Commands are served synchronously, so nothing is in flight; the resources are kept.
    std::vector<std::optional<ActiveQueue>> quiesce() override;
    DeviceCounters::Snapshot counters() const override { return m_counters.snapshot(); }

    /// Serves each queue once (what the event loop runs on a notification; tests call them).
    void process_control();
    void process_cursor();

    /// Host memory the guest's resources take now (bounded by GpuCommands::k_max_host_bytes).
    uint64_t host_bytes() const { return m_commands ? m_commands->host_bytes() : 0; }

private:
    void stop();

    std::shared_ptr<EventLoop> m_loop;
    std::shared_ptr<display::Framebuffer> m_display;
    const std::array<uint16_t, 2> m_queue_sizes{256, 16};
    std::optional<ActiveQueue> m_control;
    std::optional<ActiveQueue> m_cursor;
    VirtioInterrupt* m_interrupt = nullptr;
    // Made at the first activation (it needs guest memory); kept across quiesce().
    std::unique_ptr<gpu::GpuCommands> m_commands;
    std::vector<uint8_t> m_request;
    std::array<uint8_t, gpu::GpuCommands::k_max_response_bytes> m_response{};
    DeviceCounters m_counters;
};

}  // namespace corral::vmm::virtio
