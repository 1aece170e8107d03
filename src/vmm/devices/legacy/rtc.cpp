#include "vmm/devices/legacy/rtc.h"

#include <algorithm>
#include <utility>

#include "base/log.h"
#include "vmm/devices/legacy/byte_access.h"

// Register map and formats: Motorola MC146818A datasheet ("Address Map", "Time, Calendar and
// Alarm Locations", "Register A" to "Register D"); the century byte at 0x32 is the IBM PC AT
// convention that ACPI's FADT CENTURY field points at.

namespace corral::vmm {
namespace {

using namespace std::chrono;

constexpr uint64_t k_index_port = 0;
constexpr uint64_t k_data_port = 1;
constexpr uint64_t k_port_count = 2;
constexpr uint8_t k_index_mask = 0x7F;  // bit 7 masks NMIs on PCs, nothing to do with the RTC

constexpr uint8_t k_seconds = 0x00;
constexpr uint8_t k_minutes = 0x02;
constexpr uint8_t k_hours = 0x04;
constexpr uint8_t k_day_of_week = 0x06;
constexpr uint8_t k_day_of_month = 0x07;
constexpr uint8_t k_month = 0x08;
constexpr uint8_t k_year = 0x09;
constexpr uint8_t k_register_a = 0x0A;
constexpr uint8_t k_register_b = 0x0B;
constexpr uint8_t k_register_c = 0x0C;
constexpr uint8_t k_register_d = 0x0D;
constexpr uint8_t k_century = 0x32;

constexpr std::array<uint8_t, 8> k_time_registers = {
    k_seconds, k_minutes, k_hours, k_day_of_week, k_day_of_month, k_month, k_year, k_century};

constexpr uint8_t k_a_update_in_progress = 0x80;
constexpr uint8_t k_a_initial = 0x26;  // 32.768 kHz time base, 1024 Hz rate
constexpr uint8_t k_b_set = 0x80;
constexpr uint8_t k_b_binary = 0x04;
constexpr uint8_t k_b_24_hour = 0x02;
constexpr uint8_t k_b_initial = k_b_24_hour;  // BCD, 24 hours, no interrupts
constexpr uint8_t k_d_valid_ram_and_time = 0x80;
constexpr uint8_t k_hour_pm = 0x80;

constexpr seconds k_snapshot_lifetime{2};

bool is_time_register(uint8_t index) {
    return std::ranges::find(k_time_registers, index) != k_time_registers.end();
}

/// `value` in the register format `mode` (register B) selects: binary or two BCD digits.
uint8_t encode(unsigned value, uint8_t mode) {
    if (mode & k_b_binary)
        return static_cast<uint8_t>(value);
    return static_cast<uint8_t>(((value / 10) % 10) << 4 | (value % 10));
}

std::optional<unsigned> decode(uint8_t raw, uint8_t mode) {
    if (mode & k_b_binary)
        return raw;
    unsigned high = raw >> 4;
    unsigned low = raw & 0x0F;
    if (high > 9 || low > 9)
        return std::nullopt;
    return high * 10 + low;
}

uint8_t encode_hour(unsigned hour, uint8_t mode) {
    if (mode & k_b_24_hour)
        return encode(hour, mode);
    // 12-hour form: 12 AM, 1 AM .. 11 AM, 12 PM, 1 PM .. 11 PM, bit 7 meaning PM.
    unsigned twelve = hour % 12 == 0 ? 12 : hour % 12;
    return encode(twelve, mode) | (hour >= 12 ? k_hour_pm : 0);
}

std::optional<unsigned> decode_hour(uint8_t raw, uint8_t mode) {
    if (mode & k_b_24_hour)
        return decode(raw, mode);
    auto twelve = decode(raw & ~k_hour_pm, mode);
    if (!twelve || *twelve < 1 || *twelve > 12)
        return std::nullopt;
    return *twelve % 12 + ((raw & k_hour_pm) ? 12 : 0);
}

uint8_t encode_time_register(sys_seconds time, uint8_t index, uint8_t mode) {
    sys_days day = floor<days>(time);
    year_month_day date{day};
    hh_mm_ss clock{time - day};
    unsigned year = static_cast<unsigned>(static_cast<int>(date.year()));
    switch (index) {
        case k_seconds:
            return encode(static_cast<unsigned>(clock.seconds().count()), mode);
        case k_minutes:
            return encode(static_cast<unsigned>(clock.minutes().count()), mode);
        case k_hours:
            return encode_hour(static_cast<unsigned>(clock.hours().count()), mode);
        case k_day_of_week:
            return encode(weekday{day}.c_encoding() + 1, mode);  // 1 = Sunday
        case k_day_of_month:
            return encode(static_cast<unsigned>(date.day()), mode);
        case k_month:
            return encode(static_cast<unsigned>(date.month()), mode);
        case k_year:
            return encode(year % 100, mode);
        case k_century:
            return encode(year / 100, mode);
        default:
            return 0;
    }
}

/// The time the registers hold, or nothing when they do not hold a valid time. The day of week
/// is not checked: it follows from the date (Linux does not even write it).
std::optional<sys_seconds> decode_time_registers(const std::array<uint8_t, 128>& cmos,
                                                 uint8_t mode) {
    auto second = decode(cmos[k_seconds], mode);
    auto minute = decode(cmos[k_minutes], mode);
    auto hour = decode_hour(cmos[k_hours], mode);
    auto day_of_month = decode(cmos[k_day_of_month], mode);
    auto month_number = decode(cmos[k_month], mode);
    auto year_in_century = decode(cmos[k_year], mode);
    auto century = decode(cmos[k_century], mode);
    if (!second || !minute || !hour || !day_of_month || !month_number || !year_in_century ||
        !century)
        return std::nullopt;
    if (*second > 59 || *minute > 59 || *hour > 23 || *year_in_century > 99)
        return std::nullopt;
    year_month_day date{year{static_cast<int>(*century * 100 + *year_in_century)},
                        month{*month_number}, day{*day_of_month}};
    if (!date.ok())
        return std::nullopt;
    return sys_days{date} + hours{*hour} + minutes{*minute} + seconds{*second};
}

}  // namespace

Rtc::Rtc(WallClock clock) : m_clock(std::move(clock)) {
    m_cmos[k_register_a] = k_a_initial;
    m_cmos[k_register_b] = k_b_initial;
}

void Rtc::read(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(m_mutex);
    read_bytewise(offset, data, k_port_count, [this](uint64_t port) -> uint8_t {
        return port == k_data_port ? read_data() : k_open_bus_byte;
    });
}

void Rtc::write(uint64_t offset, std::span<const uint8_t> data) {
    std::lock_guard lock(m_mutex);
    write_bytewise(offset, data, k_port_count, [this](uint64_t port, uint8_t value) {
        if (port == k_index_port) {
            m_index = value & k_index_mask;
        } else {
            write_data(value);
        }
    });
}

RtcState Rtc::save() const {
    std::lock_guard lock(m_mutex);
    return RtcState{m_index, m_cmos, m_offset.count()};
}

Result<void> Rtc::restore(const RtcState& state) {
    // An offset of more than ~3000 years is no clock a guest set through these registers (the
    // year register covers 0000-9999 from the century); refusing it also keeps the time
    // arithmetic from overflowing.
    constexpr int64_t k_max_offset = int64_t{100'000'000'000};
    if (state.index > k_index_mask)
        return fail(ErrorKind::Invalid, "RTC state: index register above 0x7F");
    if (state.offset_seconds > k_max_offset || state.offset_seconds < -k_max_offset)
        return fail(ErrorKind::Invalid, "RTC state: clock offset out of range");
    std::lock_guard lock(m_mutex);
    m_index = state.index;
    m_cmos = state.cmos;
    m_offset = std::chrono::seconds(state.offset_seconds);
    m_snapshot_taken.reset();  // a readout in progress restarts from the new host time
    return {};
}

std::chrono::seconds Rtc::guest_offset() const {
    std::lock_guard lock(m_mutex);
    return m_offset;
}

uint8_t Rtc::read_data() {
    uint8_t mode = m_cmos[k_register_b];
    switch (m_index) {
        case k_register_a:
            snapshot(/*refresh=*/true);
            // UIP never shows: see m_snapshot for how readouts stay consistent without it.
            return m_cmos[k_register_a] & ~k_a_update_in_progress;
        case k_register_b:
            return mode;
        case k_register_c:
            // Interrupt flags; no RTC interrupt is emulated, so none is ever set. Reading
            // clears them, which leaves them at 0.
            return 0;
        case k_register_d:
            return k_d_valid_ram_and_time;
        default:
            break;
    }
    if (is_time_register(m_index) && !(mode & k_b_set))
        return encode_time_register(snapshot(m_index == k_seconds), m_index, mode);
    return m_cmos[m_index];
}

void Rtc::write_data(uint8_t value) {
    uint8_t mode = m_cmos[k_register_b];
    switch (m_index) {
        case k_register_a:
            m_cmos[k_register_a] = value & ~k_a_update_in_progress;  // UIP is read-only
            return;
        case k_register_b:
            // "Register B", SET: while it is 1 the clock does not update and the program may
            // initialize the time bytes. Hold the running time in the registers on the way
            // up; take what was written as the new time on the way down.
            if ((value & k_b_set) && !(mode & k_b_set))
                store_time_registers(guest_now(), value);
            m_cmos[k_register_b] = value;
            if ((mode & k_b_set) && !(value & k_b_set))
                commit_time_registers(value);
            return;
        case k_register_c:
        case k_register_d:
            return;  // read-only
        default:
            break;
    }
    if (is_time_register(m_index) && !(mode & k_b_set)) {
        // Written while the clock runs: the clock goes on from the new value at once.
        store_time_registers(guest_now(), mode);
        m_cmos[m_index] = value;
        commit_time_registers(mode);
        return;
    }
    m_cmos[m_index] = value;
}

std::chrono::sys_seconds Rtc::host_now() const {
    return floor<seconds>(m_clock ? m_clock() : system_clock::now());
}

std::chrono::sys_seconds Rtc::guest_now() const {
    return host_now() + m_offset;
}

std::chrono::sys_seconds Rtc::snapshot(bool refresh) {
    sys_seconds now = host_now();
    bool stale = !m_snapshot_taken || now < *m_snapshot_taken ||
                 now - *m_snapshot_taken >= k_snapshot_lifetime;
    if (refresh || stale) {
        m_snapshot_taken = now;
        m_snapshot = now + m_offset;
    }
    return m_snapshot;
}

void Rtc::store_time_registers(std::chrono::sys_seconds time, uint8_t mode) {
    for (uint8_t index : k_time_registers)
        m_cmos[index] = encode_time_register(time, index, mode);
}

void Rtc::commit_time_registers(uint8_t mode) {
    auto time = decode_time_registers(m_cmos, mode);
    if (!time) {
        // Guest-controlled values; the clock keeps its old setting, as the guest will see.
        log_debug("rtc: guest wrote an invalid time; keeping the clock as it was");
        return;
    }
    m_offset = *time - host_now();
    m_snapshot_taken.reset();
    log_debug("rtc: guest set the clock {} s from host time", m_offset.count());
}

}  // namespace corral::vmm
