#include "vmm/devices/legacy/ps2_keyboard.h"

#include <algorithm>
#include <span>

#include "base/log.h"

// Command set: IBM PS/2 Hardware Interface Technical Reference, "Keyboards (101- and 102-Key)",
// checked against what Linux's drivers/input/keyboard/atkbd.c and serio/libps2.c send and
// expect. Scan codes: the same reference's set 1 and set 2 tables.

namespace corral::vmm {
namespace {

// Keyboard commands.
constexpr uint8_t k_cmd_set_leds = 0xED;
constexpr uint8_t k_cmd_echo = 0xEE;
constexpr uint8_t k_cmd_scancode_set = 0xF0;
constexpr uint8_t k_cmd_get_id = 0xF2;
constexpr uint8_t k_cmd_typematic = 0xF3;
constexpr uint8_t k_cmd_enable = 0xF4;
constexpr uint8_t k_cmd_default_disable = 0xF5;
constexpr uint8_t k_cmd_set_default = 0xF6;
constexpr uint8_t k_cmd_resend = 0xFE;
constexpr uint8_t k_cmd_reset = 0xFF;

// What the keyboard sends back.
constexpr uint8_t k_ack = 0xFA;
constexpr uint8_t k_resend = 0xFE;  // "I did not understand": libps2 takes it as a NAK
constexpr uint8_t k_self_test_passed = 0xAA;
constexpr uint8_t k_echo = 0xEE;
constexpr uint8_t k_id_first = 0xAB;  // MF II keyboard: 0xAB 0x83
constexpr uint8_t k_id_second = 0x83;

constexpr uint8_t k_default_typematic = 0x2B;  // 10.9 characters/s after 500 ms

// Ctrl, Alt, Delete. Set 2 releases are 0xF0 + make; set 1 releases are make | 0x80.
// Delete is an extended key (0xE0 prefix) in both sets.
constexpr uint8_t k_extended = 0xE0;
constexpr uint8_t k_set2_break = 0xF0;
constexpr uint8_t k_set2_ctrl = 0x14, k_set2_alt = 0x11, k_set2_delete = 0x71;
constexpr uint8_t k_set1_ctrl = 0x1D, k_set1_alt = 0x38, k_set1_delete = 0x53;
constexpr uint8_t k_set1_break = 0x80;

}  // namespace

void Ps2Keyboard::receive(uint8_t byte, Translation translation) {
    // Arguments are all below 0x80 (LED bits, typematic rate/delay, set number); a byte with
    // bit 7 set where an argument was expected is a new command that abandons the old one, as
    // on real keyboards (and how libps2 recovers from a lost argument).
    if (m_pending_command && byte < 0x80) {
        uint8_t command = *m_pending_command;
        m_pending_command.reset();
        receive_argument(command, byte, translation);
        return;
    }
    m_pending_command.reset();
    execute(byte, translation);
}

void Ps2Keyboard::execute(uint8_t command, Translation translation) {
    // A command makes the keyboard drop what it had not sent yet, so its answer is the next
    // byte the guest reads (libps2 waits for the ACK). Echo and resend are the exceptions.
    if (command != k_cmd_echo && command != k_cmd_resend)
        clear_queue();
    switch (command) {
        case k_cmd_reset:
            set_defaults();
            m_leds = 0;
            m_scancode_set = 2;
            m_scanning = true;
            queue(k_ack);
            queue(k_self_test_passed);  // the basic assurance test passed
            return;
        case k_cmd_resend:
            queue(m_last_sent.value_or(k_ack));
            return;
        case k_cmd_set_default:
            set_defaults();
            m_scanning = true;
            queue(k_ack);
            return;
        case k_cmd_default_disable:
            set_defaults();
            m_scanning = false;
            queue(k_ack);
            return;
        case k_cmd_enable:
            m_scanning = true;
            queue(k_ack);
            return;
        case k_cmd_get_id:
            queue(k_ack);
            queue(k_id_first);
            queue(translate(k_id_second, translation));
            return;
        case k_cmd_set_leds:
        case k_cmd_typematic:
        case k_cmd_scancode_set:
            m_pending_command = command;
            queue(k_ack);
            return;
        case k_cmd_echo:
            queue(k_echo);
            return;
        default:
            // Set 3 key-type commands (0xF7-0xFD) and anything else: not implemented, which is
            // what a keyboard without them answers. Linux's atkbd does not need them.
            log_debug("ps2 keyboard: unknown command 0x{:02x}", command);
            queue(k_resend);
            return;
    }
}

void Ps2Keyboard::receive_argument(uint8_t command, uint8_t argument, Translation translation) {
    switch (command) {
        case k_cmd_set_leds:
            m_leds = argument & 0x07;  // scroll, num, caps lock
            queue(k_ack);
            return;
        case k_cmd_typematic:
            m_typematic = argument;
            queue(k_ack);
            return;
        case k_cmd_scancode_set:
            if (argument == 0) {
                queue(k_ack);
                queue(translate(m_scancode_set, translation));
            } else if (argument == 1 || argument == 2) {
                m_scancode_set = argument;
                queue(k_ack);
            } else {
                // Set 3 is not implemented: atkbd then stays with set 2.
                queue(k_resend);
            }
            return;
        default:
            return;
    }
}

void Ps2Keyboard::set_defaults() { m_typematic = k_default_typematic; }

uint8_t Ps2Keyboard::pop_output() {
    uint8_t byte = m_queue[m_head];
    m_head = (m_head + 1) % m_queue.size();
    m_count--;
    m_last_sent = byte;
    return byte;
}

void Ps2Keyboard::queue(uint8_t byte) {
    if (m_count == m_queue.size())
        return;
    m_queue[(m_head + m_count) % m_queue.size()] = byte;
    m_count++;
}

Ps2Keyboard::KeyResult Ps2Keyboard::press_ctrl_alt_del(Translation translation) {
    if (!m_scanning)
        return KeyResult::ScanningDisabled;
    // Set 1 if the guest chose it, or if the controller would translate set 2 into it.
    static constexpr std::array<uint8_t, 8> k_set1_sequence = {
        k_set1_ctrl, k_set1_alt, k_extended, k_set1_delete,
        k_extended,  k_set1_delete | k_set1_break, k_set1_alt | k_set1_break,
        k_set1_ctrl | k_set1_break};
    static constexpr std::array<uint8_t, 11> k_set2_sequence = {
        k_set2_ctrl,   k_set2_alt,   k_extended, k_set2_delete, k_extended,  k_set2_break,
        k_set2_delete, k_set2_break, k_set2_alt, k_set2_break,  k_set2_ctrl};
    bool set1 = translation == Translation::On || m_scancode_set == 1;
    std::span<const uint8_t> sequence = set1 ? std::span<const uint8_t>(k_set1_sequence)
                                             : std::span<const uint8_t>(k_set2_sequence);
    if (m_queue.size() - m_count < sequence.size())
        return KeyResult::QueueFull;
    for (uint8_t byte : sequence) queue(byte);
    return KeyResult::Queued;
}

uint8_t Ps2Keyboard::translate(uint8_t byte, Translation translation) {
    if (translation == Translation::Off)
        return byte;
    // The entries of the 8042's set 2 -> set 1 table for the non-key bytes we send whose
    // translation differs from themselves (0xFA, 0xAA, 0xAB, 0xEE, 0xFE pass unchanged).
    switch (byte) {
        case 0x01: return 0x43;
        case 0x02: return 0x41;
        case 0x03: return 0x3F;
        case 0x83: return 0x41;
        default: return byte;
    }
}

Ps2KeyboardState Ps2Keyboard::save() const {
    Ps2KeyboardState state;
    for (size_t i = 0; i < m_count; ++i)
        state.queue.push_back(m_queue[(m_head + i) % k_queue_capacity]);
    state.pending_command = m_pending_command;
    state.last_sent = m_last_sent;
    state.scanning = m_scanning;
    state.leds = m_leds;
    state.typematic = m_typematic;
    state.scancode_set = m_scancode_set;
    return state;
}

Result<void> Ps2Keyboard::restore(const Ps2KeyboardState& state) {
    if (state.queue.size() > k_queue_capacity)
        return fail(ErrorKind::Invalid, "keyboard state: queue longer than the keyboard's");
    if (state.scancode_set != 1 && state.scancode_set != 2)
        return fail(ErrorKind::Invalid, "keyboard state: scan code set must be 1 or 2");
    if (state.pending_command && *state.pending_command != k_cmd_set_leds &&
        *state.pending_command != k_cmd_scancode_set && *state.pending_command != k_cmd_typematic)
        return fail(ErrorKind::Invalid, "keyboard state: no such command waits for an argument");
    m_queue = {};
    std::copy(state.queue.begin(), state.queue.end(), m_queue.begin());
    m_head = 0;
    m_count = state.queue.size();
    m_pending_command = state.pending_command;
    m_last_sent = state.last_sent;
    m_scanning = state.scanning;
    m_leds = state.leds;
    m_typematic = state.typematic;
    m_scancode_set = state.scancode_set;
    return {};
}

}  // namespace corral::vmm
