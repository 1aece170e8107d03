#include "vmm/devices/legacy/rtc.h"

#include <gtest/gtest.h>

#include <array>

namespace corral::vmm {
namespace {

using namespace std::chrono;

// Offsets within the device (0x70, 0x71) and CMOS indices as Linux's mc146818rtc.h names them.
constexpr uint64_t INDEX = 0, DATA = 1;
constexpr uint8_t RTC_SECONDS = 0x00, RTC_SECONDS_ALARM = 0x01, RTC_MINUTES = 0x02,
                  RTC_HOURS = 0x04, RTC_DAY_OF_WEEK = 0x06, RTC_DAY_OF_MONTH = 0x07,
                  RTC_MONTH = 0x08, RTC_YEAR = 0x09, RTC_REG_A = 0x0A, RTC_REG_B = 0x0B,
                  RTC_REG_C = 0x0C, RTC_REG_D = 0x0D, RTC_CENTURY = 0x32;
constexpr uint8_t RTC_SET = 0x80, RTC_UIE = 0x10, RTC_DM_BINARY = 0x04, RTC_24H = 0x02,
                  RTC_DIV_RESET2 = 0x70;

system_clock::time_point at(int y, unsigned mo, unsigned d, unsigned h, unsigned mi, unsigned s) {
    return sys_days{year{y} / month{mo} / day{d}} + hours{h} + minutes{mi} + seconds{s};
}

class RtcTest : public ::testing::Test {
protected:
    uint8_t cmos_read(uint8_t index) {
        rtc.write(INDEX, std::span<const uint8_t>(&index, 1));
        uint8_t value = 0;
        rtc.read(DATA, std::span<uint8_t>(&value, 1));
        return value;
    }
    void cmos_write(uint8_t index, uint8_t value) {
        rtc.write(INDEX, std::span<const uint8_t>(&index, 1));
        rtc.write(DATA, std::span<const uint8_t>(&value, 1));
    }
    /// mc146818_set_time() in Linux, in BCD with the century register.
    void linux_set_time(uint8_t century, uint8_t year, uint8_t month, uint8_t day, uint8_t hour,
                        uint8_t minute, uint8_t second) {
        uint8_t save_control = cmos_read(RTC_REG_B);
        cmos_write(RTC_REG_B, save_control | RTC_SET);
        uint8_t save_freq_select = cmos_read(RTC_REG_A);
        cmos_write(RTC_REG_A, save_freq_select | RTC_DIV_RESET2);
        cmos_write(RTC_YEAR, year);
        cmos_write(RTC_MONTH, month);
        cmos_write(RTC_DAY_OF_MONTH, day);
        cmos_write(RTC_HOURS, hour);
        cmos_write(RTC_MINUTES, minute);
        cmos_write(RTC_SECONDS, second);
        cmos_write(RTC_CENTURY, century);
        cmos_write(RTC_REG_B, save_control);
        cmos_write(RTC_REG_A, save_freq_select);
    }

    system_clock::time_point now = at(2024, 2, 29, 13, 45, 56);  // a Thursday
    Rtc rtc{[this] { return now; }};
};

TEST_F(RtcTest, ReadsTheHostTimeInBcd) {
    EXPECT_EQ(cmos_read(RTC_SECONDS), 0x56);
    EXPECT_EQ(cmos_read(RTC_MINUTES), 0x45);
    EXPECT_EQ(cmos_read(RTC_HOURS), 0x13);
    EXPECT_EQ(cmos_read(RTC_DAY_OF_WEEK), 5) << "1 = Sunday, so Thursday is 5";
    EXPECT_EQ(cmos_read(RTC_DAY_OF_MONTH), 0x29);
    EXPECT_EQ(cmos_read(RTC_MONTH), 0x02);
    EXPECT_EQ(cmos_read(RTC_YEAR), 0x24);
    EXPECT_EQ(cmos_read(RTC_CENTURY), 0x20);
}

TEST_F(RtcTest, BinaryModeFollowsRegisterB) {
    cmos_write(RTC_REG_B, RTC_DM_BINARY | RTC_24H);
    EXPECT_EQ(cmos_read(RTC_SECONDS), 56);
    EXPECT_EQ(cmos_read(RTC_MINUTES), 45);
    EXPECT_EQ(cmos_read(RTC_HOURS), 13);
    EXPECT_EQ(cmos_read(RTC_DAY_OF_MONTH), 29);
    EXPECT_EQ(cmos_read(RTC_MONTH), 2);
    EXPECT_EQ(cmos_read(RTC_YEAR), 24);
    EXPECT_EQ(cmos_read(RTC_CENTURY), 20);
    cmos_write(RTC_REG_B, RTC_24H);
    EXPECT_EQ(cmos_read(RTC_SECONDS), 0x56);
}

TEST_F(RtcTest, TwelveHourMode) {
    cmos_write(RTC_REG_B, 0);
    EXPECT_EQ(cmos_read(RTC_HOURS), 0x81) << "1 PM: BCD 1 with the PM bit";
    now = at(2024, 3, 1, 0, 5, 0);
    EXPECT_EQ(cmos_read(RTC_SECONDS), 0x00);
    EXPECT_EQ(cmos_read(RTC_HOURS), 0x12) << "midnight is 12 AM";
    now = at(2024, 3, 1, 12, 5, 0);
    EXPECT_EQ(cmos_read(RTC_SECONDS), 0x00);
    EXPECT_EQ(cmos_read(RTC_HOURS), 0x92) << "noon is 12 PM";
    cmos_write(RTC_REG_B, RTC_DM_BINARY);
    EXPECT_EQ(cmos_read(RTC_HOURS), 0x80 | 12);
}

TEST_F(RtcTest, StatusRegisters) {
    EXPECT_EQ(cmos_read(RTC_REG_A), 0x26) << "32.768 kHz time base, UIP clear";
    EXPECT_EQ(cmos_read(RTC_REG_B), RTC_24H) << "BCD, 24 hours";
    EXPECT_EQ(cmos_read(RTC_REG_C), 0);
    EXPECT_EQ(cmos_read(RTC_REG_D), 0x80) << "valid RAM and time";
    cmos_write(RTC_REG_A, 0xA6);
    EXPECT_EQ(cmos_read(RTC_REG_A), 0x26) << "UIP is read-only";
    cmos_write(RTC_REG_C, 0xFF);
    cmos_write(RTC_REG_D, 0x00);
    EXPECT_EQ(cmos_read(RTC_REG_C), 0);
    EXPECT_EQ(cmos_read(RTC_REG_D), 0x80);
}

TEST_F(RtcTest, RegisterBKeepsInterruptEnables) {
    cmos_write(RTC_REG_B, RTC_24H | RTC_UIE);
    EXPECT_EQ(cmos_read(RTC_REG_B), RTC_24H | RTC_UIE);
    EXPECT_EQ(cmos_read(RTC_REG_C), 0) << "no interrupt is emulated, so no flag ever shows";
}

TEST_F(RtcTest, CmosBytesArePlainStorage) {
    for (unsigned index = 0x0E; index < 0x80; ++index) {
        if (index == RTC_CENTURY)
            continue;
        cmos_write(static_cast<uint8_t>(index), static_cast<uint8_t>(index ^ 0xA5));
    }
    for (unsigned index = 0x0E; index < 0x80; ++index) {
        if (index == RTC_CENTURY)
            continue;
        EXPECT_EQ(cmos_read(static_cast<uint8_t>(index)), index ^ 0xA5) << "index " << index;
    }
    cmos_write(RTC_SECONDS_ALARM, 0x30);
    EXPECT_EQ(cmos_read(RTC_SECONDS_ALARM), 0x30);
}

TEST_F(RtcTest, IndexBitSevenIsTheNmiMaskAndIgnored) {
    cmos_write(0x40, 0x12);
    EXPECT_EQ(cmos_read(0x80 | 0x40), 0x12);
    EXPECT_EQ(cmos_read(0x80 | RTC_REG_D), 0x80);
}

TEST_F(RtcTest, GuestSetsTheClockLikeHwclock) {
    linux_set_time(0x20, 0x30, 0x01, 0x15, 0x08, 0x30, 0x00);  // 2030-01-15 08:30:00
    EXPECT_EQ(cmos_read(RTC_REG_B), RTC_24H);
    EXPECT_EQ(cmos_read(RTC_REG_A), 0x26);
    EXPECT_EQ(rtc.guest_offset(), at(2030, 1, 15, 8, 30, 0) - at(2024, 2, 29, 13, 45, 56));
    EXPECT_EQ(cmos_read(RTC_SECONDS), 0x00);
    EXPECT_EQ(cmos_read(RTC_HOURS), 0x08);
    EXPECT_EQ(cmos_read(RTC_YEAR), 0x30);
    EXPECT_EQ(cmos_read(RTC_DAY_OF_WEEK), 3) << "computed from the date: a Tuesday";

    // The clock runs on from the new time.
    now += seconds(75);
    EXPECT_EQ(cmos_read(RTC_SECONDS), 0x15);
    EXPECT_EQ(cmos_read(RTC_MINUTES), 0x31);
}

TEST_F(RtcTest, TimeStandsStillWhileSet) {
    cmos_write(RTC_REG_B, RTC_24H | RTC_SET);
    now += seconds(30);
    EXPECT_EQ(cmos_read(RTC_SECONDS), 0x56);
    cmos_write(RTC_MINUTES, 0x10);
    EXPECT_EQ(cmos_read(RTC_MINUTES), 0x10);
    cmos_write(RTC_REG_B, RTC_24H);
    EXPECT_EQ(cmos_read(RTC_SECONDS), 0x56);
    EXPECT_EQ(cmos_read(RTC_MINUTES), 0x10);
    EXPECT_EQ(cmos_read(RTC_HOURS), 0x13);
}

TEST_F(RtcTest, SettingInBinaryTwelveHourMode) {
    cmos_write(RTC_REG_B, RTC_DM_BINARY | RTC_SET);
    cmos_write(RTC_HOURS, 0x80 | 11);  // 11 PM
    cmos_write(RTC_REG_B, RTC_DM_BINARY);
    cmos_write(RTC_REG_B, RTC_DM_BINARY | RTC_24H);
    EXPECT_EQ(cmos_read(RTC_HOURS), 23);
    EXPECT_EQ(cmos_read(RTC_MINUTES), 45);
}

TEST_F(RtcTest, WriteWithoutSetTakesEffectAtOnce) {
    cmos_write(RTC_MINUTES, 0x00);
    EXPECT_EQ(rtc.guest_offset(), -minutes(45));
    EXPECT_EQ(cmos_read(RTC_SECONDS), 0x56);
    EXPECT_EQ(cmos_read(RTC_MINUTES), 0x00);
    EXPECT_EQ(cmos_read(RTC_HOURS), 0x13);
}

TEST_F(RtcTest, InvalidTimesAreIgnored) {
    linux_set_time(0x20, 0x30, 0x13, 0x01, 0x00, 0x00, 0x00);  // month 13
    EXPECT_EQ(rtc.guest_offset(), seconds(0));
    linux_set_time(0x20, 0x23, 0x02, 0x29, 0x00, 0x00, 0x00);  // 2023 has no February 29
    EXPECT_EQ(rtc.guest_offset(), seconds(0));
    linux_set_time(0x20, 0x24, 0x02, 0x29, 0x24, 0x00, 0x00);  // hour 24
    EXPECT_EQ(rtc.guest_offset(), seconds(0));
    cmos_write(RTC_SECONDS, 0x5A);  // not BCD
    EXPECT_EQ(rtc.guest_offset(), seconds(0));
    EXPECT_EQ(cmos_read(RTC_SECONDS), 0x56);
}

TEST_F(RtcTest, OneReadoutNeverMixesTwoSeconds) {
    now = at(2024, 2, 29, 12, 59, 59) + milliseconds(999);
    // Linux's mc146818_get_time(): seconds, UIP, seconds again, then the rest.
    uint8_t second = cmos_read(RTC_SECONDS);
    EXPECT_EQ(cmos_read(RTC_REG_A) & 0x80, 0);
    EXPECT_EQ(cmos_read(RTC_SECONDS), second);
    now += milliseconds(2);  // the host clock ticks into 13:00:00 mid-readout
    EXPECT_EQ(cmos_read(RTC_MINUTES), 0x59);
    EXPECT_EQ(cmos_read(RTC_HOURS), 0x12);
    // Linux then re-checks the seconds, sees them change and reads again.
    EXPECT_NE(cmos_read(RTC_SECONDS), second);
    EXPECT_EQ(cmos_read(RTC_MINUTES), 0x00);
    EXPECT_EQ(cmos_read(RTC_HOURS), 0x13);
}

TEST_F(RtcTest, AStaleReadoutIsRefreshed) {
    EXPECT_EQ(cmos_read(RTC_MINUTES), 0x45);
    now += minutes(1);
    EXPECT_EQ(cmos_read(RTC_MINUTES), 0x46) << "a guest that never reads the seconds";
}

TEST_F(RtcTest, WordWriteSetsIndexAndData) {
    // outw 0x70 with the index in AL and the value in AH.
    std::array<uint8_t, 2> index_and_value = {0x50, 0x77};
    rtc.write(INDEX, index_and_value);
    EXPECT_EQ(cmos_read(0x50), 0x77);
    std::array<uint8_t, 2> index_then_data{};
    rtc.read(INDEX, index_then_data);
    EXPECT_EQ(index_then_data, (std::array<uint8_t, 2>{0xFF, 0x77}))
        << "the index register is write-only";
}

TEST(Rtc, DefaultClockIsTheHostClock) {
    Rtc rtc;
    uint8_t index = RTC_CENTURY;
    rtc.write(INDEX, std::span<const uint8_t>(&index, 1));
    uint8_t century = 0;
    rtc.read(DATA, std::span<uint8_t>(&century, 1));
    EXPECT_EQ(century, 0x20);
}

}  // namespace
}  // namespace corral::vmm
