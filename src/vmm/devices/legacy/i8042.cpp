#include "vmm/devices/legacy/i8042.h"

#include <utility>

#include "base/log.h"
#include "vmm/devices/legacy/byte_access.h"

// Command set and bit layouts: IBM PS/2 Hardware Interface Technical Reference, "Keyboard and
// Auxiliary Device Controller" (the 8042 commands, status register and command byte), checked
// against what Linux's drivers/input/serio/i8042.c sends.

namespace corral::vmm {
namespace {

constexpr uint64_t k_data_port = 0;     // 0x60
constexpr uint64_t k_command_port = 4;  // 0x64 (status on read)
constexpr uint64_t k_port_count = 5;

// Status register.
constexpr uint8_t k_status_output_full = 0x01;
// Bit 1 (input buffer full) stays clear: every write is handled before the access returns.
constexpr uint8_t k_status_system_flag = 0x04;
constexpr uint8_t k_status_last_was_command = 0x08;
constexpr uint8_t k_status_keyboard_unlocked = 0x10;  // else Linux warns "Keylock active"
constexpr uint8_t k_status_aux_data = 0x20;
constexpr uint8_t k_status_timeout = 0x40;

// Command byte (controller RAM byte 0).
constexpr uint8_t k_ctr_keyboard_interrupt = 0x01;
constexpr uint8_t k_ctr_aux_interrupt = 0x02;
constexpr uint8_t k_ctr_system_flag = 0x04;
constexpr uint8_t k_ctr_keyboard_disabled = 0x10;
constexpr uint8_t k_ctr_aux_disabled = 0x20;
constexpr uint8_t k_ctr_translate = 0x40;
// As firmware leaves it: keyboard interrupt on, system flag, scancode translation, mouse off.
constexpr uint8_t k_initial_command_byte =
    k_ctr_keyboard_interrupt | k_ctr_system_flag | k_ctr_aux_disabled | k_ctr_translate;

// Output port: bit 0 drives the CPU reset line (active low), bit 1 the A20 gate.
constexpr uint8_t k_output_port_reset_inactive = 0x01;
constexpr uint8_t k_output_port_a20 = 0x02;

// Input port: bit 7 set means the keyboard is not inhibited by the key lock.
constexpr uint8_t k_input_port = 0x80;

// Controller commands.
constexpr uint8_t k_cmd_read_ram_first = 0x20;  // 0x20-0x3F: read RAM byte (cmd & 0x1F)
constexpr uint8_t k_cmd_read_ram_last = 0x3F;
constexpr uint8_t k_cmd_write_ram_first = 0x60;  // 0x60-0x7F: write RAM byte (cmd & 0x1F)
constexpr uint8_t k_cmd_write_ram_last = 0x7F;
constexpr uint8_t k_cmd_write_command_byte = 0x60;
constexpr uint8_t k_cmd_disable_aux = 0xA7;
constexpr uint8_t k_cmd_enable_aux = 0xA8;
constexpr uint8_t k_cmd_test_aux = 0xA9;
constexpr uint8_t k_cmd_self_test = 0xAA;
constexpr uint8_t k_cmd_test_keyboard = 0xAB;
constexpr uint8_t k_cmd_disable_keyboard = 0xAD;
constexpr uint8_t k_cmd_enable_keyboard = 0xAE;
constexpr uint8_t k_cmd_read_input_port = 0xC0;
constexpr uint8_t k_cmd_read_output_port = 0xD0;
constexpr uint8_t k_cmd_write_output_port = 0xD1;
constexpr uint8_t k_cmd_write_keyboard_output = 0xD2;
constexpr uint8_t k_cmd_write_aux_output = 0xD3;
constexpr uint8_t k_cmd_write_aux_device = 0xD4;
constexpr uint8_t k_cmd_disable_a20 = 0xDD;
constexpr uint8_t k_cmd_enable_a20 = 0xDF;
constexpr uint8_t k_cmd_pulse_first = 0xF0;  // 0xF0-0xFF: pulse output port bits 0-3 whose
                                             // command bit is 0; 0xFE pulses the reset line

constexpr uint8_t k_self_test_passed = 0x55;
constexpr uint8_t k_interface_test_passed = 0x00;
// What the controller puts in the output buffer, with the time-out status bit, when the device
// it sent a byte to never clocked it in. Linux's libps2 takes it as a NAK.
constexpr uint8_t k_transmit_timeout = 0xFE;

}  // namespace

I8042::I8042(ResetCallback on_reset, InterruptLine* keyboard_irq, InterruptLine* aux_irq)
    : m_on_reset(std::move(on_reset)),
      m_keyboard_irq(keyboard_irq),
      m_aux_irq(aux_irq),
      m_output_port(k_output_port_reset_inactive | k_output_port_a20) {
    m_ram[0] = k_initial_command_byte;
}

void I8042::read(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(m_mutex);
    read_bytewise(offset, data, k_port_count, [this](uint64_t port) { return read_port(port); });
    update_interrupt_lines();
}

void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
    bool reset;
    {
        std::lock_guard lock(m_mutex);
        write_bytewise(offset, data, k_port_count,
                       [this](uint64_t port, uint8_t value) { write_port(port, value); });
        update_interrupt_lines();
        reset = std::exchange(m_reset_requested, false);
    }
    // Outside the lock: the callback may stop vCPUs or tear the VM down.
    if (reset && m_on_reset)
        m_on_reset();
}

bool I8042::send_ctrl_alt_del() {
    std::lock_guard lock(m_mutex);
    auto result = m_keyboard.press_ctrl_alt_del(translation());
    take_keyboard_byte();
    update_interrupt_lines();
    return result == Ps2Keyboard::KeyResult::Queued;
}

uint8_t I8042::read_port(uint64_t offset) {
    if (offset == k_data_port) {
        uint8_t value = read_data();
        // The next keyboard byte follows at once. read_data() has already lowered IRQ 1, so
        // this raises it again: one edge per byte, as the edge-triggered ISA line needs.
        take_keyboard_byte();
        update_interrupt_lines();
        return value;
    }
    if (offset == k_command_port)
        return status();
    return k_open_bus_byte;
}

void I8042::write_port(uint64_t offset, uint8_t value) {
    if (offset == k_data_port) {
        write_data(value);
    } else if (offset == k_command_port) {
        write_command(value);
    }
    // A keyboard answer, or a port the guest just enabled (0xAE, or the command byte).
    take_keyboard_byte();
}

void I8042::take_keyboard_byte() {
    if (m_output || !m_keyboard.has_output() || (command_byte() & k_ctr_keyboard_disabled))
        return;
    m_output = OutputByte{m_keyboard.pop_output(), Port::Keyboard, false};
}

Translation I8042::translation() const {
    return (command_byte() & k_ctr_translate) ? Translation::On : Translation::Off;
}

uint8_t I8042::status() const {
    uint8_t value = k_status_keyboard_unlocked;
    if (m_system_flag)
        value |= k_status_system_flag;
    if (m_last_write_was_command)
        value |= k_status_last_was_command;
    if (m_output) {
        value |= k_status_output_full;
        if (m_output->port == Port::Aux)
            value |= k_status_aux_data;
        if (m_output->timeout)
            value |= k_status_timeout;
    }
    return value;
}

uint8_t I8042::read_data() {
    if (m_output) {
        m_last_data = m_output->value;
        m_output.reset();
        update_interrupt_lines();
    }
    return m_last_data;
}

void I8042::write_data(uint8_t value) {
    m_last_write_was_command = false;
    uint8_t command = std::exchange(m_pending_command, 0);
    if (command >= k_cmd_write_ram_first && command <= k_cmd_write_ram_last) {
        m_ram[command & 0x1F] = value;
        // The command byte's system flag is copied to the status register.
        if (command == k_cmd_write_command_byte)
            m_system_flag = (value & k_ctr_system_flag) != 0;
        return;
    }
    switch (command) {
        case k_cmd_write_output_port:
            write_output_port(value);
            return;
        case k_cmd_write_keyboard_output:
            push_output(value);
            return;
        case k_cmd_write_aux_output:
            push_output(value, Port::Aux);
            return;
        case k_cmd_write_aux_device:
            push_transmit_timeout(Port::Aux);
            return;
        default:
            // Data with no command waiting goes to the keyboard, which also re-enables the
            // keyboard interface. Its answer comes through take_keyboard_byte().
            command_byte() &= ~k_ctr_keyboard_disabled;
            m_keyboard.receive(value, translation());
            return;
    }
}

void I8042::write_command(uint8_t command) {
    m_last_write_was_command = true;
    // A new command abandons one that was still waiting for its data byte.
    m_pending_command = 0;
    if (command >= k_cmd_read_ram_first && command <= k_cmd_read_ram_last) {
        push_output(m_ram[command & 0x1F]);
        return;
    }
    if (command >= k_cmd_write_ram_first && command <= k_cmd_write_ram_last) {
        m_pending_command = command;
        return;
    }
    if (command >= k_cmd_pulse_first) {
        if (!(command & k_output_port_reset_inactive))
            m_reset_requested = true;
        return;
    }
    switch (command) {
        case k_cmd_disable_aux:
            command_byte() |= k_ctr_aux_disabled;
            return;
        case k_cmd_enable_aux:
            command_byte() &= ~k_ctr_aux_disabled;
            return;
        case k_cmd_test_aux:
        case k_cmd_test_keyboard:
            push_output(k_interface_test_passed);
            return;
        case k_cmd_self_test:
            m_system_flag = true;
            push_output(k_self_test_passed);
            return;
        case k_cmd_disable_keyboard:
            command_byte() |= k_ctr_keyboard_disabled;
            return;
        case k_cmd_enable_keyboard:
            command_byte() &= ~k_ctr_keyboard_disabled;
            return;
        case k_cmd_read_input_port:
            push_output(k_input_port);
            return;
        case k_cmd_read_output_port:
            push_output(m_output_port);
            return;
        case k_cmd_write_output_port:
        case k_cmd_write_keyboard_output:
        case k_cmd_write_aux_output:
        case k_cmd_write_aux_device:
            m_pending_command = command;
            return;
        case k_cmd_disable_a20:
            m_output_port &= ~k_output_port_a20;
            return;
        case k_cmd_enable_a20:
            m_output_port |= k_output_port_a20;
            return;
        default:
            // Vendor commands (password, diagnostics, MUX) are not implemented; ignoring them
            // is what a controller without the feature does.
            log_debug("i8042: ignoring command 0x{:02x}", command);
            return;
    }
}

void I8042::write_output_port(uint8_t value) {
    m_output_port = value;
    // Bit 0 low asserts the CPU reset line (the classic 0xD1, 0xFE sequence).
    if (!(value & k_output_port_reset_inactive)) {
        m_reset_requested = true;
        m_output_port |= k_output_port_reset_inactive;
    }
}

void I8042::push_output(uint8_t value, Port port) {
    m_output = OutputByte{value, port, false};
}

void I8042::push_transmit_timeout(Port port) {
    m_output = OutputByte{k_transmit_timeout, port, true};
}

I8042State I8042::save() {
    std::lock_guard lock(m_mutex);
    I8042State state;
    state.ram = m_ram;
    if (m_output)
        state.output = I8042State::OutputByte{m_output->value, m_output->port == Port::Aux,
                                              m_output->timeout};
    state.output_port = m_output_port;
    state.last_data = m_last_data;
    state.pending_command = m_pending_command;
    state.last_write_was_command = m_last_write_was_command;
    state.system_flag = m_system_flag;
    state.keyboard = m_keyboard.save();
    return state;
}

Result<void> I8042::restore(const I8042State& state) {
    std::lock_guard lock(m_mutex);
    // The keyboard checks its part first, so a refusal leaves the controller as it was.
    TRY_VOID(m_keyboard.restore(state.keyboard));
    m_ram = state.ram;
    m_output.reset();
    if (state.output)
        m_output = OutputByte{state.output->value, state.output->aux ? Port::Aux : Port::Keyboard,
                              state.output->timeout};
    m_output_port = state.output_port;
    m_last_data = state.last_data;
    m_pending_command = state.pending_command;
    m_last_write_was_command = state.last_write_was_command;
    m_system_flag = state.system_flag;
    m_reset_requested = false;
    // The restored interrupt controller holds the saved line levels; driving a line to the
    // level it already has makes no edge, so this only brings the lines and the device into
    // agreement.
    update_interrupt_lines();
    return {};
}

void I8042::update_interrupt_lines() {
    // The output buffer drives IRQ 1 (IRQ 12 for AUX data) while it is full and the command
    // byte enables that interrupt.
    bool keyboard = false;
    bool aux = false;
    if (m_output) {
        if (m_output->port == Port::Aux) {
            aux = (command_byte() & k_ctr_aux_interrupt) != 0;
        } else {
            keyboard = (command_byte() & k_ctr_keyboard_interrupt) != 0;
        }
    }
    // ISA lines are edge-triggered: only changes are worth a KVM_IRQ_LINE ioctl.
    auto drive = [](InterruptLine* line, bool& current, bool level) {
        if (current == level)
            return;
        current = level;
        if (line)
            line->set_level(level);
    };
    drive(m_keyboard_irq, m_keyboard_level, keyboard);
    drive(m_aux_irq, m_aux_level, aux);
}

}  // namespace corral::vmm
