#pragma once

#include <cstdint>
#include <span>

namespace corral::vmm {

/// A device on the port I/O or MMIO bus. It sees offsets within its own range, not absolute
/// addresses, so it does not care where it is placed. Called from vCPU threads: a device that
/// also has other threads (input, I/O completion) protects its own state.
class BusDevice {
public:
    virtual ~BusDevice() = default;
    /// Fills `data` (1, 2, 4 or 8 bytes) for a guest read at `offset`.
    virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
    /// Handles a guest write of `data` at `offset`.
    virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

/// An interrupt line a device drives (an ISA IRQ on the in-kernel PIC/IOAPIC in the monitor;
/// a recorder in unit tests).
class InterruptLine {
public:
    virtual ~InterruptLine() = default;
    virtual void set_level(bool high) = 0;
};

}  // namespace corral::vmm
