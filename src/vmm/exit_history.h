#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace corral::vmm {

/// The last exits of one vCPU to the monitor, to say how far a guest had got when it ended in a
/// way that leaves no registers to look at: KVM resets a vCPU on KVM_EXIT_SHUTDOWN (a triple
/// fault) before returning it. The I/O port or MMIO address of each exit tells the boot stage
/// (the serial port written: the console is up; the PIT or port 0x61: timer calibration...).
/// Used by the vCPU's own thread only.
class ExitHistory {
public:
    static constexpr size_t k_kept = 8;

    /// Records an exit: `reason` is KVM's exit reason; `address` the port or guest-physical
    /// address of an I/O or MMIO exit (0 otherwise); `write` its direction.
    void note(uint32_t reason, uint64_t address, bool write);
    uint64_t count() const { return m_count; }
    /// "1234 exits; the last: io write 0x3f8, mmio read 0xfee00030, ..." (oldest first), or
    /// "no exits" before the first.
    std::string describe() const;

private:
    struct Entry {
        uint32_t reason = 0;
        uint64_t address = 0;
        bool write = false;
    };
    std::array<Entry, k_kept> m_ring{};
    uint64_t m_count = 0;
};

}  // namespace corral::vmm
