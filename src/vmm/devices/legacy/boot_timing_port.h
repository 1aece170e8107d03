#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

#include "vmm/devices/bus_device.h"

namespace corral::vmm {

/// One byte the guest wrote to the boot-timing port, and when.
struct BootMark {
    uint8_t code;
    /// Time since the monitor started.
    std::chrono::nanoseconds time;
};

/// The boot-timing port (0x402, one port): a guest byte write records (code, time since the
/// monitor started) and logs "guest boot mark <code> at <ms> ms". A guest init writes a code at
/// milestones so the monitor can measure boot time from the outside, as Firecracker's
/// boot-timer device does with an MMIO write.
///
/// Reads return 0: there is nothing to read, and 0 (rather than the open-bus 0xFF) tells a
/// probing guest that something sits there. The guest decides how many marks it writes, so
/// only the first k_max_stored_marks are kept and logged; later ones are only counted.
///
/// Thread safety: write() on vCPU threads, marks() and mark_count() on any thread.
class BootTimingPort final : public BusDevice {
public:
    /// Time since the monitor started; injectable for tests.
    using Clock = std::function<std::chrono::nanoseconds()>;

    static constexpr size_t k_max_stored_marks = 64;

    /// `since_start` gives the time since the monitor started (see clock_since()); empty
    /// counts from this device's construction, which the builder does just before the vCPUs
    /// start (so the marks then time one boot, also after a guest reboot).
    explicit BootTimingPort(Clock since_start = {});

    /// A Clock counting from `monitor_start` on the steady clock.
    static Clock clock_since(std::chrono::steady_clock::time_point monitor_start);

    /// Reads as 0 (wider accesses: 0 for the port's byte, 0xFF beyond it).
    void read(uint64_t offset, std::span<uint8_t> data) override;
    /// Records a mark for the byte at offset 0; bytes past the port are dropped.
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    /// The stored marks, oldest first (at most k_max_stored_marks).
    std::vector<BootMark> marks() const;
    /// All marks the guest wrote, stored or not.
    uint64_t mark_count() const;

private:
    void record(uint8_t code);

    const Clock m_since_start;
    mutable std::mutex m_mutex;
    std::vector<BootMark> m_marks;
    uint64_t m_mark_count = 0;
};

}  // namespace corral::vmm
