#include "vmm/devices/virtio/input/input_device.h"

#include <linux/input.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <cstring>

#include "vmm/devices/virtio/queue_service.h"

namespace corral::vmm::virtio {
namespace {

// virtio_input_config.select (§5.8.5).
constexpr uint8_t k_cfg_id_name = 0x01;
constexpr uint8_t k_cfg_id_serial = 0x02;
constexpr uint8_t k_cfg_id_devids = 0x03;
constexpr uint8_t k_cfg_prop_bits = 0x10;
constexpr uint8_t k_cfg_ev_bits = 0x11;
constexpr uint8_t k_cfg_abs_info = 0x12;
constexpr size_t k_payload_offset = 8;
constexpr size_t k_payload_max = 128;

/// A bitmap with the bits `codes` set, as long as its highest set byte.
std::vector<uint8_t> bitmap(std::initializer_list<std::pair<unsigned, unsigned>> ranges) {
    std::vector<uint8_t> bits;
    for (auto [first, last] : ranges)
        for (unsigned code = first; code <= last; ++code) {
            if (bits.size() <= code / 8) bits.resize(code / 8 + 1, 0);
            bits[code / 8] |= static_cast<uint8_t>(1u << (code % 8));
        }
    return bits;
}

void put_le16(std::vector<uint8_t>& out, uint16_t value) {
    out.push_back(static_cast<uint8_t>(value));
    out.push_back(static_cast<uint8_t>(value >> 8));
}
void put_le32(std::vector<uint8_t>& out, uint32_t value) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

}  // namespace

Result<std::shared_ptr<InputDevice>> InputDevice::create(std::shared_ptr<EventLoop> loop, Kind kind) {
    auto wake = TRY(EventFd::create(EFD_NONBLOCK));
    return std::shared_ptr<InputDevice>(new InputDevice(std::move(loop), kind, std::move(wake)));
}

InputDevice::InputDevice(std::shared_ptr<EventLoop> loop, Kind kind, EventFd wake)
    : m_loop(std::move(loop)), m_kind(kind), m_wake(std::move(wake)) {}

std::vector<uint8_t> InputDevice::config_payload() const {
    bool keyboard = m_kind == Kind::Keyboard;
    std::vector<uint8_t> out;
    switch (m_select) {
        case k_cfg_id_name: {
            std::string name = keyboard ? "Corral virtio keyboard" : "Corral virtio tablet";
            if (m_subsel == 0) out.assign(name.begin(), name.end());
            break;
        }
        case k_cfg_id_serial: break;  // none
        case k_cfg_id_devids:
            if (m_subsel != 0) break;
            put_le16(out, BUS_VIRTUAL);
            put_le16(out, 0x0627);  // the vendor QEMU's virtio-input devices use (guests know it)
            put_le16(out, keyboard ? 0x0001 : 0x0003);
            put_le16(out, 1);
            break;
        case k_cfg_prop_bits: break;  // no INPUT_PROP_*
        case k_cfg_ev_bits:
            if (keyboard && m_subsel == EV_KEY) {
                // Every key code up to KEY_MICMUTE: the US layout's keys and the usual extras. No
                // EV_REP: the viewer's own autorepeat sends repeated presses, and a guest repeat
                // would double keys when a slow guest reads the release late.
                out = bitmap({{KEY_ESC, KEY_MICMUTE}});
            } else if (!keyboard && m_subsel == EV_KEY) {
                out = bitmap({{BTN_LEFT, BTN_MIDDLE}});
            } else if (!keyboard && m_subsel == EV_REL) {
                out = bitmap({{REL_WHEEL, REL_WHEEL}});
            } else if (!keyboard && m_subsel == EV_ABS) {
                out = bitmap({{ABS_X, ABS_Y}});
            }
            break;
        case k_cfg_abs_info:
            if (!keyboard && (m_subsel == ABS_X || m_subsel == ABS_Y)) {
                put_le32(out, 0);          // min
                put_le32(out, k_abs_max);  // max
                put_le32(out, 0);          // fuzz
                put_le32(out, 0);          // flat
                put_le32(out, 0);          // res
            }
            break;
        default: break;
    }
    out.resize(std::min(out.size(), k_payload_max));
    return out;
}

void InputDevice::read_config(uint64_t offset, std::span<uint8_t> data) {
    std::array<uint8_t, k_config_size> config{};
    config[0] = m_select;
    config[1] = m_subsel;
    auto payload = config_payload();
    config[2] = static_cast<uint8_t>(payload.size());
    std::copy(payload.begin(), payload.end(), config.begin() + k_payload_offset);
    for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < config.size() ? config[offset + i] : 0;
}

void InputDevice::write_config(uint64_t offset, std::span<const uint8_t> data) {
    for (size_t i = 0; i < data.size(); ++i) {
        if (offset + i == 0) m_select = data[i];
        if (offset + i == 1) m_subsel = data[i];
    }
}

Result<void> InputDevice::activate(ActivateContext context) {
    reset();
    if (context.queues.empty() || !context.queues[k_event_queue])
        return fail("virtio-input: the event queue is not enabled");
    m_events.emplace(std::move(*context.queues[k_event_queue]));
    if (context.queues.size() > k_status_queue && context.queues[k_status_queue])
        m_status.emplace(std::move(*context.queues[k_status_queue]));
    m_interrupt = &context.interrupt;
    auto added = m_loop->add(m_events->notify_fd, [this] { process_events(); });
    if (added) added = m_loop->add(m_wake.fd(), [this] { process_events(); });
    if (added && m_status) added = m_loop->add(m_status->notify_fd, [this] { process_status(); });
    if (!added) {
        reset();
        return added;
    }
    {
        std::lock_guard lock(m_mutex);
        m_accepting = true;
    }
    m_loop->run_sync([this] {
        process_events();
        process_status();
    });
    return {};
}

void InputDevice::stop() {
    {
        std::lock_guard lock(m_mutex);
        m_accepting = false;
    }
    // After remove() the callbacks are neither running nor will they run again.
    m_loop->remove(m_wake.fd());
    if (m_events) m_loop->remove(m_events->notify_fd);
    if (m_status) m_loop->remove(m_status->notify_fd);
    m_interrupt = nullptr;
}

void InputDevice::reset() {
    if (!m_events && !m_status) return;
    stop();
    m_events.reset();
    m_status.reset();
    std::lock_guard lock(m_mutex);
    m_pending.clear();  // input meant for the old driver
}

std::vector<std::optional<ActiveQueue>> InputDevice::quiesce() {
    std::vector<std::optional<ActiveQueue>> queues(2);
    if (!m_events && !m_status) return queues;
    stop();
    queues[k_event_queue] = std::move(m_events);
    queues[k_status_queue] = std::move(m_status);
    m_events.reset();
    m_status.reset();
    return queues;
}

void InputDevice::send(std::span<const InputEvent> events) {
    {
        std::lock_guard lock(m_mutex);
        if (!m_accepting || m_pending.size() + events.size() + 1 > k_max_pending) {
            ++m_counters.errors;  // dropped: no driver, or it takes no buffers
            return;
        }
        m_pending.insert(m_pending.end(), events.begin(), events.end());
        m_pending.push_back({EV_SYN, SYN_REPORT, 0});
    }
    m_wake.signal();
}

void InputDevice::process_events() {
    if (!m_events || !m_interrupt) return;
    m_wake.consume();
    drain_event_fd(m_events->notify_fd);
    Virtqueue& queue = m_events->queue;
    bool used_any = false;
    std::unique_lock lock(m_mutex);
    for (;;) {
        if (m_pending.empty()) break;
        auto chain = queue.pop();
        if (!chain) {
            if (queue.enable_notifications()) continue;  // buffers arrived meanwhile (§2.7.10)
            break;  // events wait (bounded) until the driver adds buffers
        }
        // One event per buffer (§5.8.6.2); a buffer too small for one is returned unused.
        uint32_t written = 0;
        if (!chain->writable.empty() && chain->writable[0].length >= sizeof(InputEvent)) {
            InputEvent event = m_pending.front();
            m_pending.pop_front();
            uint8_t bytes[8];
            std::memcpy(bytes, &event.type, 2);
            std::memcpy(bytes + 2, &event.code, 2);
            std::memcpy(bytes + 4, &event.value, 4);
            std::memcpy(chain->writable[0].host, bytes, sizeof bytes);
            written = sizeof bytes;
            ++m_counters.requests;
            m_counters.bytes += written;
        } else {
            ++m_counters.errors;
        }
        queue.add_used(chain->head, written);
        used_any = true;
    }
    lock.unlock();
    uint64_t rejected = queue.counters().rejected_chains;
    if (rejected != m_events->rejected_reported) {
        m_counters.rejected_chains += rejected - m_events->rejected_reported;
        m_events->rejected_reported = rejected;
        used_any = true;
    }
    if (used_any && queue.should_interrupt()) m_interrupt->signal_queue(k_event_queue);
    if (queue.broken() && !m_events->broken_reported) {
        m_events->broken_reported = true;
        ++m_counters.errors;
        m_interrupt->set_needs_reset();
    }
}

void InputDevice::process_status() {
    if (!m_status || !m_interrupt) return;
    // LED states and the like: nothing to show them on.
    serve_queue(*m_status, k_status_queue, *m_interrupt, m_counters, [](const DescriptorChain&) { return uint32_t{0}; });
}

void InputRouter::key(std::uint16_t linux_key_code, bool down) {
    if (linux_key_code == 0 || linux_key_code > KEY_MICMUTE) return;  // not a key the keyboard has
    InputEvent event{EV_KEY, linux_key_code, down ? 1u : 0u};
    m_keyboard->send(std::span(&event, 1));
}

void InputRouter::pointer(std::uint32_t x, std::uint32_t y, std::uint32_t width, std::uint32_t height,
                          std::uint8_t buttons) {
    auto scale = [](std::uint32_t position, std::uint32_t size) {
        if (size <= 1) return 0u;
        uint64_t clamped = std::min(position, size - 1);
        return static_cast<uint32_t>(clamped * InputDevice::k_abs_max / (size - 1));
    };
    std::vector<InputEvent> events{{EV_ABS, ABS_X, scale(x, width)}, {EV_ABS, ABS_Y, scale(y, height)}};
    std::lock_guard lock(m_mutex);
    // RFB's mask: bit 0 left, 1 middle, 2 right; 3 and 4 are wheel up and down, pressed and
    // released for each step.
    constexpr std::pair<uint8_t, uint16_t> k_buttons[] = {{1, BTN_LEFT}, {2, BTN_MIDDLE}, {4, BTN_RIGHT}};
    for (auto [bit, code] : k_buttons)
        if ((buttons ^ m_buttons) & bit) events.push_back({EV_KEY, code, (buttons & bit) ? 1u : 0u});
    uint8_t pressed = static_cast<uint8_t>(buttons & ~m_buttons);
    if (pressed & 8) events.push_back({EV_REL, REL_WHEEL, 1});
    if (pressed & 16) events.push_back({EV_REL, REL_WHEEL, static_cast<uint32_t>(-1)});
    m_buttons = buttons;
    m_tablet->send(events);
}

}  // namespace corral::vmm::virtio
