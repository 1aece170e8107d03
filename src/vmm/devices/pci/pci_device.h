#pragma once

#include <cstdint>
#include <span>

namespace corral::vmm {

/// One PCI function's configuration space as the host bridge sees it (PCI Local Bus 3.0, §6.1).
/// Accesses come from configuration mechanism #1: `offset` is 0-255 and an access (1, 2 or 4
/// bytes) never crosses a dword. Called from vCPU threads, serialized by the PciConfigIo lock.
class PciDevice {
public:
    virtual ~PciDevice() = default;
    virtual void read_config(uint16_t offset, std::span<uint8_t> data) = 0;
    virtual void write_config(uint16_t offset, std::span<const uint8_t> data) = 0;
};

}  // namespace corral::vmm
