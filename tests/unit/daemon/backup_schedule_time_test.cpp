// When backup schedules are due: parsing and next_due() in UTC and in a zone with daylight
// saving time (a POSIX TZ rule, so no tzdata is needed).
#include "daemon/backup_schedule_time.h"

#include <stdlib.h>

#include <gtest/gtest.h>

namespace corral::daemon {
namespace {

/// Sets TZ for one test and puts the old value back.
class Zone {
public:
    explicit Zone(const char* tz) {
        if (const char* old = getenv("TZ"))
            m_old = old;
        setenv("TZ", tz, 1);
        tzset();
    }
    ~Zone() {
        if (m_old)
            setenv("TZ", m_old->c_str(), 1);
        else
            unsetenv("TZ");
        tzset();
    }

private:
    std::optional<std::string> m_old;
};

/// Seconds since the epoch of a UTC date and time.
time_t utc(int year, int month, int day, int hour, int minute) {
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    return timegm(&tm);
}

ScheduleTime at(const std::string& hhmm, std::optional<int> weekday = std::nullopt) {
    auto when = parse_time_of_day(hhmm);
    EXPECT_TRUE(when) << hhmm;
    when->weekday = weekday;
    return *when;
}

TEST(ScheduleTime, ParsesTimesAndDays) {
    EXPECT_EQ(*parse_time_of_day("02:00"), (ScheduleTime{2, 0, std::nullopt}));
    EXPECT_EQ(*parse_time_of_day("23:59"), (ScheduleTime{23, 59, std::nullopt}));
    for (const char* bad : {"25:00", "24:00", "12:60", "2:00", "02:0", "0200", "aa:bb", "", "02:00 "}) {
        auto parsed = parse_time_of_day(bad);
        ASSERT_FALSE(parsed) << bad;
        EXPECT_NE(parsed.error().message().find("HH:MM, 00:00 to 23:59"), std::string::npos);
    }
    EXPECT_EQ(*parse_weekday("sunday"), 0);
    EXPECT_EQ(*parse_weekday("Mon"), 1);
    EXPECT_EQ(*parse_weekday("SATURDAY"), 6);
    EXPECT_FALSE(parse_weekday("funday"));
    EXPECT_FALSE(parse_weekday("mo"));
    EXPECT_EQ(time_of_day_text(at("07:05")), "07:05");
}

TEST(ScheduleTime, DailyInUtc) {
    Zone zone("UTC0");
    EXPECT_EQ(next_due(at("02:00"), utc(2026, 12, 6, 1, 0)), utc(2026, 12, 6, 2, 0));
    EXPECT_EQ(next_due(at("02:00"), utc(2026, 12, 6, 2, 0)), utc(2026, 12, 7, 2, 0)) << "strictly after";
    EXPECT_EQ(next_due(at("02:00"), utc(2026, 12, 6, 23, 0)), utc(2026, 12, 7, 2, 0));
    EXPECT_EQ(next_due(at("00:00"), utc(2026, 12, 31, 12, 0)), utc(2027, 1, 1, 0, 0)) << "over a year's end";
}

TEST(ScheduleTime, WeeklyInUtc) {
    Zone zone("UTC0");
    // 2026-12-06 is a Sunday.
    EXPECT_EQ(next_due(at("02:00", 0), utc(2026, 12, 6, 1, 0)), utc(2026, 12, 6, 2, 0));
    EXPECT_EQ(next_due(at("02:00", 0), utc(2026, 12, 6, 3, 0)), utc(2026, 12, 13, 2, 0)) << "a week later";
    EXPECT_EQ(next_due(at("02:00", 3), utc(2026, 12, 6, 3, 0)), utc(2026, 12, 9, 2, 0)) << "Wednesday";
}

TEST(ScheduleTime, LocalTimeWithDaylightSaving) {
    // Central European time: UTC+1, summer time UTC+2 from the last Sunday of March 02:00 to the
    // last Sunday of October 03:00.
    Zone zone("CET-1CEST,M3.5.0,M10.5.0/3");
    EXPECT_EQ(next_due(at("02:00"), utc(2026, 12, 6, 0, 0)), utc(2026, 12, 6, 1, 0)) << "winter: 02:00 is 01:00 UTC";
    EXPECT_EQ(next_due(at("02:00"), utc(2026, 7, 1, 12, 0)), utc(2026, 7, 2, 0, 0)) << "summer: 02:00 is 00:00 UTC";
    // 2026-03-29: 02:30 does not exist (02:00 -> 03:00); it falls an hour on, at 03:30 CEST.
    EXPECT_EQ(next_due(at("02:30"), utc(2026, 3, 28, 12, 0)), utc(2026, 3, 29, 1, 30));
    // The day after the change, at 02:30 CEST again.
    EXPECT_EQ(next_due(at("02:30"), utc(2026, 3, 29, 1, 30)), utc(2026, 3, 30, 0, 30));
}

}  // namespace
}  // namespace corral::daemon
