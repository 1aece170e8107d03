#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>

#include "vmm/devices/bus_device.h"

namespace corral::vmm {

/// The chipset's reset control register at 0xCF9 (1 byte; Intel PCH datasheets, "RST_CNT"),
/// also the FADT RESET_REG with RESET_VALUE x86::k_reset_control_value (0x06).
///
/// Writing a value with RST_CPU (bit 2) set calls the reset callback. Linux's reboot=pci path
/// (arch/x86/kernel/reboot.c) writes 0x02 (SYS_RST: make it a hard reset), then 0x06 for a warm
/// or 0x0E (FULL_RST too) for a cold reboot; ACPI's reset writes 0x06 at once. RST_CPU acts on its
/// 0 -> 1 transition and the register never keeps it, so every write with bit 2 set is such a
/// transition: reads return the last value written with bit 2 clear.
///
/// Note for whoever places it: 0xCF9 sits inside the PCI configuration ports 0xCF8-0xCFF. The
/// PCI host bridge takes 0xCF8 as a 1-port range (32-bit CONFIG_ADDRESS accesses start there)
/// and 0xCFC-0xCFF, leaving 0xCF9 to this device.
///
/// Thread safety: vCPU threads; the state is one atomic byte. The callback runs on the vCPU
/// thread that wrote the register.
class ResetControl final : public BusDevice {
public:
    using ResetCallback = std::function<void()>;

    /// `on_reset` is called once per write with RST_CPU set.
    explicit ResetControl(ResetCallback on_reset);

    /// The last value written, RST_CPU clear; wider accesses are split into bytes
    /// (see read_bytewise()).
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

private:
    const ResetCallback m_on_reset;
    std::atomic<uint8_t> m_value{0};
};

}  // namespace corral::vmm
