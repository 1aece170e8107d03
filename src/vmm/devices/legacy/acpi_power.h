#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>

#include "vmm/devices/bus_device.h"
#include "vmm/devices/legacy/rtc_state.h"

namespace corral::vmm {

/// The ACPI hardware-reduced sleep registers (ACPI 6.4 §4.8.3.7, FADT SLEEP_CONTROL_REG and
/// SLEEP_STATUS_REG) as one 2-byte device at 0x600: offset 0 is sleep control, offset 1 sleep
/// status.
///
/// Sleep control: writing SLP_EN (bit 5) asks for the sleep state in SLP_TYP (bits 2-4). Type
/// x86::k_acpi_s5_sleep_type (our DSDT's _S5) calls the power-off callback. Other types (S3 and
/// friends) are not supported: they are logged and refused. The register reads 0 (SLP_EN is
/// write-only).
///
/// Sleep status: WAK_STS (bit 7) is set by the platform when the system has woken from a sleep
/// state and cleared by the guest writing 1 to it; the register otherwise reads 0. Linux's
/// acpi_hw_extended_sleep() writes SLP_EN and then spins until WAK_STS is set, so a refused
/// sleep sets WAK_STS at once: the guest sees a sleep that ended immediately and resumes,
/// instead of hanging with its devices suspended.
///
/// Thread safety: vCPU threads; the state is one atomic flag. The callback runs on the vCPU
/// thread that wrote the register.
class AcpiSleepControl final : public BusDevice {
public:
    using PowerOffCallback = std::function<void()>;

    /// `on_power_off` is called once per S5 request.
    explicit AcpiSleepControl(PowerOffCallback on_power_off);

    /// Offset 0 reads 0, offset 1 reads WAK_STS; wider accesses are split into bytes
    /// (see read_bytewise()).
    void read(uint64_t offset, std::span<uint8_t> data) override;
    /// Offset 0: sleep requests; offset 1: write 1 to WAK_STS to clear it.
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    /// WAK_STS, for a snapshot.
    AcpiSleepState save() const { return AcpiSleepState{m_wake_status.load()}; }
    void restore(const AcpiSleepState& state) { m_wake_status.store(state.wake_status); }

private:
    void write_sleep_control(uint8_t value);

    const PowerOffCallback m_on_power_off;
    std::atomic<bool> m_wake_status{false};
    std::atomic<uint64_t> m_refused_requests{0};
};

}  // namespace corral::vmm
