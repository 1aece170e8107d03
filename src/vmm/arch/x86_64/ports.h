#pragma once

#include <cstdint>

/// The port I/O map of a Corral x86-64 VM and the ISA IRQs of its legacy devices.
namespace corral::vmm::x86 {

constexpr uint16_t k_i8042_port = 0x60;  // 0x60 data, 0x64 command/status: 5 ports, offsets 0 and 4
constexpr uint16_t k_i8042_port_count = 5;
constexpr uint32_t k_keyboard_irq = 1;
constexpr uint32_t k_mouse_irq = 12;
// 0x61 (system control port B) is emulated by KVM's in-kernel PIT (KVM_PIT_SPEAKER_DUMMY).
constexpr uint16_t k_rtc_port = 0x70;  // index, data
constexpr uint16_t k_rtc_port_count = 2;
constexpr uint16_t k_com1_port = 0x3F8;
constexpr uint16_t k_com1_port_count = 8;
constexpr uint32_t k_com1_irq = 4;
/// Boot-timing port: the guest writes a byte code, the monitor logs the time since its start.
constexpr uint16_t k_boot_timing_port = 0x402;
/// ACPI hardware-reduced sleep control (FADT SLEEP_CONTROL_REG) and status registers.
constexpr uint16_t k_acpi_sleep_control_port = 0x600;
constexpr uint16_t k_acpi_sleep_status_port = 0x601;
/// Reset control register (chipset RC at 0xCF9; also FADT RESET_REG, value 0x06).
constexpr uint16_t k_reset_control_port = 0xCF9;
constexpr uint8_t k_reset_control_value = 0x06;
/// The value Linux writes to SLEEP_CONTROL_REG for S5 with our DSDT's _S5 = 5:
/// SLP_TYP (5) << 2 | SLP_EN (1 << 5).
constexpr uint8_t k_acpi_s5_sleep_type = 5;

}  // namespace corral::vmm::x86
