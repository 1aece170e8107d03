#pragma once

#include "vmm/devices/pci/config_space.h"
#include "vmm/devices/pci/pci_device.h"

namespace corral::vmm {

/// The PCI host bridge at 00:00.0 (class 06 00 00). Linux's type 1 probe
/// (arch/x86/pci/direct.c, pci_sanity_check) looks for a host bridge or a display controller on
/// bus 0 before trusting configuration mechanism #1, so there must be one. It has no BARs.
class PciHostBridge final : public PciDevice {
public:
    static constexpr uint16_t k_vendor = 0x8086;
    static constexpr uint16_t k_device = 0x0d57;

    PciHostBridge();
    void read_config(uint16_t offset, std::span<uint8_t> data) override;
    void write_config(uint16_t offset, std::span<const uint8_t> data) override;

private:
    PciConfigSpace m_config;
};

}  // namespace corral::vmm
