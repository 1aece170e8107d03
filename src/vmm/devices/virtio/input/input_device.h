#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/event_fd.h"
#include "base/event_loop.h"
#include "display/input_sink.h"
#include "vmm/devices/virtio/virtio_device.h"

namespace corral::vmm::virtio {

/// One evdev event as virtio-input carries it (virtio_input_event, §5.8.6.3).
struct InputEvent {
    uint16_t type;
    uint16_t code;
    uint32_t value;
};

/// virtio-input (virtio 1.2 §5.8): a keyboard (every key of a US layout and more, EV_KEY) or a
/// tablet (EV_ABS X/Y 0..32767, BTN_LEFT/RIGHT/MIDDLE, REL_WHEEL). Its configuration space
/// answers select/subsel (ID_NAME, ID_SERIAL, ID_DEVIDS, PROP_BITS, EV_BITS, ABS_INFO).
///
/// Host input arrives from any thread (the VNC server's) through send(): the events are queued
/// under a lock and an eventfd wakes the device on its event loop, which alone touches the
/// virtqueues. The queue is bounded (k_max_pending events): while the guest supplies no
/// buffers, newer reports are dropped whole (counted as errors), never half.
/// statusq (LED changes from the guest) is consumed and ignored.
class InputDevice final : public VirtioDevice {
public:
    enum class Kind { Keyboard, Tablet };
    static constexpr uint16_t k_event_queue = 0;
    static constexpr uint16_t k_status_queue = 1;
    static constexpr size_t k_max_pending = 1024;
    static constexpr uint32_t k_config_size = 136;  // select, subsel, size, reserved[5], u[128]
    static constexpr uint32_t k_abs_max = 32767;

    static Result<std::shared_ptr<InputDevice>> create(std::shared_ptr<EventLoop> loop, Kind kind);
    ~InputDevice() override { reset(); }

    DeviceType device_type() const override { return DeviceType::Input; }
    uint64_t device_features() const override { return 0; }
    std::span<const uint16_t> queue_max_sizes() const override { return m_queue_sizes; }
    uint32_t config_size() const override { return k_config_size; }
    void read_config(uint64_t offset, std::span<uint8_t> data) override;
    /// Only select (offset 0) and subsel (1) are writable.
    void write_config(uint64_t offset, std::span<const uint8_t> data) override;
    Result<void> activate(ActivateContext context) override;
    void reset() override;
    std::vector<std::optional<ActiveQueue>> quiesce() override;
    DeviceCounters::Snapshot counters() const override { return m_counters.snapshot(); }

    /// Queues one report (events, without the closing SYN_REPORT, which is added) for the guest;
    /// any thread. Dropped whole when the device is not active or the queue is full.
    void send(std::span<const InputEvent> events);

    /// Delivers queued events into eventq buffers (on the event loop; tests call it).
    void process_events();
    void process_status();

private:
    InputDevice(std::shared_ptr<EventLoop> loop, Kind kind, EventFd wake);
    /// The config payload (u[]) for the current select/subsel.
    std::vector<uint8_t> config_payload() const;
    void stop();

    std::shared_ptr<EventLoop> m_loop;
    Kind m_kind;
    EventFd m_wake;
    const std::array<uint16_t, 2> m_queue_sizes{64, 64};
    uint8_t m_select = 0;
    uint8_t m_subsel = 0;
    std::optional<ActiveQueue> m_events;
    std::optional<ActiveQueue> m_status;
    VirtioInterrupt* m_interrupt = nullptr;

    std::mutex m_mutex;  // guards m_pending and m_accepting (send() runs on other threads)
    std::deque<InputEvent> m_pending;
    bool m_accepting = false;
    DeviceCounters m_counters;
};

/// A viewer's keyboard and pointer, routed to the VM's virtio keyboard and tablet: RFB's button
/// mask becomes BTN_* presses and releases and wheel steps, its pixel position the tablet's
/// 0..32767 range.
class InputRouter final : public display::InputSink {
public:
    InputRouter(std::shared_ptr<InputDevice> keyboard, std::shared_ptr<InputDevice> tablet)
        : m_keyboard(std::move(keyboard)), m_tablet(std::move(tablet)) {}
    void key(std::uint16_t linux_key_code, bool down) override;
    void pointer(std::uint32_t x, std::uint32_t y, std::uint32_t width, std::uint32_t height,
                 std::uint8_t buttons) override;

private:
    std::shared_ptr<InputDevice> m_keyboard;
    std::shared_ptr<InputDevice> m_tablet;
    std::mutex m_mutex;  // guards m_buttons (viewers may share a thread or not)
    std::uint8_t m_buttons = 0;
};

}  // namespace corral::vmm::virtio
