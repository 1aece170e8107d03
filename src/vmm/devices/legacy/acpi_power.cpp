#include "vmm/devices/legacy/acpi_power.h"

#include <utility>

#include "base/log.h"
#include "vmm/arch/x86_64/ports.h"
#include "vmm/devices/legacy/byte_access.h"

namespace corral::vmm {
namespace {

constexpr uint64_t k_sleep_control = 0;
constexpr uint64_t k_sleep_status = 1;
constexpr uint64_t k_register_count = 2;

// ACPI 6.4 §4.8.3.7, "Sleep Control and Status Registers".
constexpr uint8_t k_sleep_type_shift = 2;
constexpr uint8_t k_sleep_type_mask = 0x07;
constexpr uint8_t k_sleep_enable = 0x20;
constexpr uint8_t k_wake_status = 0x80;

// Refused requests are logged up to this many; after that the guest could flood the log.
constexpr uint64_t k_logged_refusals = 8;

}  // namespace

AcpiSleepControl::AcpiSleepControl(PowerOffCallback on_power_off)
    : m_on_power_off(std::move(on_power_off)) {}

void AcpiSleepControl::read(uint64_t offset, std::span<uint8_t> data) {
    read_bytewise(offset, data, k_register_count, [this](uint64_t register_offset) -> uint8_t {
        if (register_offset == k_sleep_status && m_wake_status.load())
            return k_wake_status;
        return 0;
    });
}

void AcpiSleepControl::write(uint64_t offset, std::span<const uint8_t> data) {
    write_bytewise(offset, data, k_register_count, [this](uint64_t register_offset, uint8_t value) {
        if (register_offset == k_sleep_control) {
            write_sleep_control(value);
        } else if (value & k_wake_status) {
            m_wake_status.store(false);  // write 1 to clear
        }
    });
}

void AcpiSleepControl::write_sleep_control(uint8_t value) {
    // SLP_TYP alone selects a state; the transition starts only with SLP_EN.
    if (!(value & k_sleep_enable))
        return;
    unsigned sleep_type = (value >> k_sleep_type_shift) & k_sleep_type_mask;
    if (sleep_type == x86::k_acpi_s5_sleep_type) {
        log_debug("acpi: guest entered S5 (soft off)");
        if (m_on_power_off)
            m_on_power_off();
        return;
    }
    if (++m_refused_requests <= k_logged_refusals)
        log_warning("acpi: guest asked for sleep type {}, which is not supported; it wakes at once",
                    sleep_type);
    m_wake_status.store(true);
}

}  // namespace corral::vmm
