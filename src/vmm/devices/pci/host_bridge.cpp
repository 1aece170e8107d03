#include "vmm/devices/pci/host_bridge.h"

namespace corral::vmm {

PciHostBridge::PciHostBridge()
    : m_config(PciIds{.vendor = k_vendor,
                      .device = k_device,
                      .class_code = 0x060000,
                      .revision = 0,
                      .subsystem_vendor = 0,
                      .subsystem = 0}) {}

void PciHostBridge::read_config(uint16_t offset, std::span<uint8_t> data) { m_config.read(offset, data); }

void PciHostBridge::write_config(uint16_t offset, std::span<const uint8_t> data) {
    m_config.write(offset, data);
}

}  // namespace corral::vmm
