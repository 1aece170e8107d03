#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>

#include "base/result.h"
#include "vmm/devices/bus_device.h"
#include "vmm/devices/legacy/rtc_state.h"

namespace corral::vmm {

/// The PC's CMOS RAM and MC146818 real-time clock: 2 ports, offset 0 the index register (0x70;
/// bit 7, NMI disable, is ignored) and offset 1 the data register (0x71).
///
/// The clock reads the host's UTC time plus an offset the guest sets: seconds, minutes, hours,
/// day of week (1 = Sunday), day of month, month, year (0x00-0x09) and the century (0x32, the
/// register ACPI's FADT CENTURY names), in BCD or binary per register B bit 2 and in 24- or
/// 12-hour form per bit 1 (default B = 0x02: BCD, 24 hours). Register A reads 0x26 with UIP
/// always clear, register C reads 0, register D reads 0x80 (valid RAM and time). The other
/// bytes, alarms included, are plain RAM.
///
/// Setting the clock: with register B's SET bit up, time writes go to the registers and the
/// clock stands still; clearing SET makes the written time current (Linux's
/// mc146818_set_time(), behind hwclock --systohc). A time register written with SET clear
/// takes effect at once. Invalid times are ignored.
///
/// Not emulated: the periodic, alarm and update-ended interrupts (IRQ 8) and their flags in
/// register C. Register B keeps the guest's PIE/AIE/UIE/SQWE bits, but nothing ever fires, so
/// a guest must not wait for one (the platform should not promise an RTC IRQ). The divider
/// bits of register A are kept but do not stop the clock.
///
/// Thread safety: vCPU threads only; a mutex makes concurrent accesses safe.
class Rtc final : public BusDevice {
public:
    /// The host's UTC time; injectable for tests.
    using WallClock = std::function<std::chrono::system_clock::time_point()>;

    /// `clock` defaults to std::chrono::system_clock.
    explicit Rtc(WallClock clock = {});

    /// Index (offset 0: reads 0xFF, the register is write-only on PC chipsets) and data
    /// (offset 1) ports; wider accesses are split into bytes (see read_bytewise()), so
    /// `outw 0x70` with the index in the low byte and the value in the high byte works.
    void read(uint64_t offset, std::span<uint8_t> data) override;
    /// Index and data writes, split into bytes like read().
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    /// How far the guest has set its clock from the host's (zero until it sets it).
    std::chrono::seconds guest_offset() const;

    /// The RTC's state, for a snapshot.
    RtcState save() const;
    /// Replaces the state with a checked saved one (unchanged on error).
    Result<void> restore(const RtcState& state);

private:
    uint8_t read_data();
    void write_data(uint8_t value);
    std::chrono::sys_seconds host_now() const;
    std::chrono::sys_seconds guest_now() const;
    std::chrono::sys_seconds snapshot(bool refresh);
    void store_time_registers(std::chrono::sys_seconds time, uint8_t mode);
    void commit_time_registers(uint8_t mode);

    const WallClock m_clock;

    mutable std::mutex m_mutex;
    uint8_t m_index = 0;
    std::array<uint8_t, 128> m_cmos{};  // time registers hold live values only while SET is up
    std::chrono::seconds m_offset{0};
    // The time registers of one guest readout come from one host time, taken when the guest
    // reads the seconds or register A (where readouts start: Linux reads the seconds, checks
    // UIP in A, and reads the seconds again before the rest) or when the last one is 2 s old.
    // Reading the host time per register could pair 12:59:59 with the 13:00 hour: a real RTC
    // avoids that with UIP, which needs timing a vCPU that may be descheduled cannot give.
    std::optional<std::chrono::sys_seconds> m_snapshot_taken;  // host time
    std::chrono::sys_seconds m_snapshot{};                     // guest time then
};

}  // namespace corral::vmm
