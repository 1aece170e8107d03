#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "base/result.h"
#include "vmm/devices/legacy/i8042_state.h"

namespace corral::vmm {

/// Whether the i8042 translates what the keyboard sends from scan code set 2 to set 1 (the
/// command byte's XLATE bit, which Linux and firmware leave on).
enum class Translation : uint8_t { Off, On };

/// An AT (MF II) keyboard as seen through an 8042: the command set Linux's atkbd driver uses to
/// probe and configure it, and a few keys the host can press. It has no lock and no device
/// interface of its own: I8042 owns it, feeds it the bytes the guest sends to the keyboard and
/// moves what it queues into its one-byte output buffer.
///
/// Translation: the real controller rewrites every byte the keyboard sends while XLATE is on.
/// Instead of emulating that stream rewrite, the keyboard generates what would come out of the
/// controller: set-1 codes for keys when translation is on (or set 1 was selected), set 2
/// otherwise, and the translated form of the two non-key bytes that differ (the ID's 0x83 and
/// the scan code set number). The XLATE state at the time a byte is queued decides.
class Ps2Keyboard {
public:
    /// Bytes the keyboard holds until the controller takes them. 15, not the 16 of a real
    /// keyboard, so that queue plus the controller's output buffer never exceed the 16 reads
    /// Linux's i8042_flush() allows before it declares the controller dead.
    static constexpr size_t k_queue_capacity = 15;

    /// What happened to keys the host pressed.
    enum class KeyResult : uint8_t {
        Queued,
        ScanningDisabled,  // the guest disabled the keyboard (0xF5) or has not enabled it since
        QueueFull,         // the guest is not reading; nothing was queued
    };

    /// A byte the guest sent to the keyboard (a command, or a command's argument).
    void receive(uint8_t byte, Translation translation);

    bool has_output() const { return m_count > 0; }
    /// The next byte for the controller; call only when has_output().
    uint8_t pop_output();

    /// Queues Ctrl, Alt and Delete presses, then their releases (Delete, Alt, Ctrl), all or
    /// nothing, so that the guest never sees half the sequence and keeps a key held down.
    KeyResult press_ctrl_alt_del(Translation translation);

    size_t queued() const { return m_count; }
    bool scanning() const { return m_scanning; }
    uint8_t leds() const { return m_leds; }
    uint8_t scancode_set() const { return m_scancode_set; }

    /// The keyboard's state, for a snapshot.
    Ps2KeyboardState save() const;
    /// Replaces the state with a checked saved one (unchanged on error).
    Result<void> restore(const Ps2KeyboardState& state);

private:
    void execute(uint8_t command, Translation translation);
    void receive_argument(uint8_t command, uint8_t argument, Translation translation);
    void set_defaults();
    void clear_queue() { m_count = 0; }
    /// Appends `byte`; a full queue drops it (the keyboard's own overrun).
    void queue(uint8_t byte);
    /// A byte the controller would rewrite under translation, as the guest then reads it.
    static uint8_t translate(uint8_t byte, Translation translation);

    std::array<uint8_t, k_queue_capacity> m_queue{};
    size_t m_head = 0;
    size_t m_count = 0;
    std::optional<uint8_t> m_pending_command;  // 0xED, 0xF0 or 0xF3 waiting for its argument
    std::optional<uint8_t> m_last_sent;        // for the resend command (0xFE)
    bool m_scanning = true;                    // a keyboard scans after its power-on self-test
    uint8_t m_leds = 0;
    uint8_t m_typematic = 0;
    uint8_t m_scancode_set = 2;
};

}  // namespace corral::vmm
