#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>

#include "base/result.h"
#include "vmm/devices/bus_device.h"
#include "vmm/devices/legacy/i8042_state.h"
#include "vmm/devices/legacy/ps2_keyboard.h"

namespace corral::vmm {

/// An 8042 PS/2 keyboard controller with an AT keyboard (Ps2Keyboard) on its keyboard port and
/// nothing on its AUX port, placed at 0x60 with 5 ports: offset 0 is the data port (0x60),
/// offset 4 the status/command port (0x64); offsets 1-3 read as open bus (0x61 itself is KVM's).
///
/// It is there for two lines to the guest. The reset line: command 0xFE (and any 0xF0-0xFF
/// pulse command that includes output port bit 0), or writing an output port value with bit 0
/// clear through command 0xD1, calls the reset callback. And the keyboard, through which the
/// host asks the guest to shut down with Ctrl-Alt-Del (send_ctrl_alt_del(), as Firecracker's
/// SendCtrlAltDel does). Around that, it answers everything Linux's i8042 driver asks at probe
/// time at once, so probing costs no timeouts: controller self-test (0xAA -> 0x55), command
/// byte read/write (0x20/0x60, and the rest of the 32-byte controller RAM at 0x21-0x3F/
/// 0x61-0x7F), interface tests (0xAB/0xA9 -> 0x00), port enable/disable (0xAD/0xAE/0xA7/0xA8),
/// output port read/write (0xD0/0xD1), and the loopback writes (0xD2/0xD3) Linux uses to find
/// the AUX port and test its interrupt. Bytes sent to the absent mouse are answered with a
/// transmit time-out (0xFE with status bit 6), so psmouse gives up after one retry.
///
/// The output buffer holds one byte, as on the real chip. A controller answer replaces a byte
/// the guest has not read, which keeps a stale byte from being taken as the answer to the next
/// command. Keyboard bytes wait in the keyboard's own bounded queue and move into the output
/// buffer when it is empty and the keyboard port is enabled (command byte bit 4 clear, 0xAE):
/// reading the data port brings in the next one, with a new edge on IRQ 1.
///
/// Thread safety: vCPU threads access the ports, the monitor's main thread calls
/// send_ctrl_alt_del(); a mutex keeps them apart. The interrupt lines are driven with it held;
/// the reset callback runs without it.
class I8042 final : public BusDevice {
public:
    using ResetCallback = std::function<void()>;

    /// `on_reset` is called, on a vCPU thread and without the device lock held, once per guest
    /// access that pulses the reset line. `keyboard_irq` (ISA IRQ 1) and `aux_irq` (ISA IRQ 12)
    /// may be null; without them Linux still probes correctly, only slower: its AUX interrupt
    /// test waits 250 ms and atkbd's probe twice 200 ms for answers it never hears of.
    explicit I8042(ResetCallback on_reset, InterruptLine* keyboard_irq = nullptr,
                   InterruptLine* aux_irq = nullptr);

    /// Data port (offset 0) and status register (offset 4); wider accesses are split into
    /// bytes (see read_bytewise()).
    void read(uint64_t offset, std::span<uint8_t> data) override;
    /// Data port (offset 0) and command register (offset 4), split into bytes like read().
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    /// Presses and releases Ctrl-Alt-Delete on the keyboard (scan codes in the set the guest
    /// reads, see Ps2Keyboard), raising IRQ 1 as the guest reads them. Any thread. Returns
    /// false, queueing nothing, when the guest's keyboard is not scanning (not probed yet, or
    /// disabled) or its queue has no room for the whole sequence.
    bool send_ctrl_alt_del();

    /// The controller's and keyboard's state, for a snapshot (the vCPUs are paused).
    I8042State save();
    /// Replaces the state with a checked saved one (unchanged on error) and drives IRQ 1 and
    /// IRQ 12 to the restored levels.
    Result<void> restore(const I8042State& state);

private:
    /// Which side a byte in the output buffer comes from (controller answers count as keyboard).
    enum class Port : uint8_t { Keyboard, Aux };
    struct OutputByte {
        uint8_t value;
        Port port;
        bool timeout;
    };

    uint8_t read_port(uint64_t offset);
    void write_port(uint64_t offset, uint8_t value);
    uint8_t status() const;
    uint8_t read_data();
    void write_data(uint8_t value);
    void write_command(uint8_t command);
    void write_output_port(uint8_t value);
    void push_output(uint8_t value, Port port = Port::Keyboard);
    void push_transmit_timeout(Port port);
    /// Moves the keyboard's next byte into an empty output buffer if the keyboard port is on.
    void take_keyboard_byte();
    Translation translation() const;
    uint8_t& command_byte() { return m_ram[0]; }
    uint8_t command_byte() const { return m_ram[0]; }
    void update_interrupt_lines();

    const ResetCallback m_on_reset;
    InterruptLine* const m_keyboard_irq;
    InterruptLine* const m_aux_irq;

    std::mutex m_mutex;
    std::array<uint8_t, 32> m_ram{};  // controller RAM; byte 0 is the command byte
    std::optional<OutputByte> m_output;
    Ps2Keyboard m_keyboard;
    uint8_t m_output_port;
    uint8_t m_last_data = 0;        // returned again when the output buffer is empty
    uint8_t m_pending_command = 0;  // a command waiting for its data byte, or 0
    bool m_last_write_was_command = false;
    bool m_system_flag = true;  // set by a passed self-test; firmware has run it before us
    bool m_reset_requested = false;
    bool m_keyboard_level = false;
    bool m_aux_level = false;
};

}  // namespace corral::vmm
