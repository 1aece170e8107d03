#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>

#include "base/result.h"
#include "vmm/devices/bus_device.h"

namespace corral::vmm {

/// An address space (port I/O or MMIO) mapping non-overlapping ranges to devices.
/// Built before the vCPUs start and read-only afterwards, so lookups need no lock.
class Bus {
public:
    /// Places `device` at [base, base + length); fails if the range overlaps another device.
    Result<void> insert(uint64_t base, uint64_t length, std::shared_ptr<BusDevice> device);

    /// Dispatches an access; false when no device claims the address.
    bool read(uint64_t address, std::span<uint8_t> data) const;
    bool write(uint64_t address, std::span<const uint8_t> data) const;

private:
    struct Range {
        uint64_t length;
        std::shared_ptr<BusDevice> device;
    };
    /// The device whose range holds `address`, and the offset of `address` within it.
    std::pair<BusDevice*, uint64_t> find(uint64_t address) const;

    std::map<uint64_t, Range> m_ranges;  // by base
};

}  // namespace corral::vmm
