#include "daemon/backup_schedule_time.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace corral::daemon {

namespace {
constexpr std::array<const char*, 7> k_days = {"sunday",   "monday", "tuesday", "wednesday",
                                               "thursday", "friday", "saturday"};
}

Result<ScheduleTime> parse_time_of_day(const std::string& text) {
    auto bad = [&] {
        return fail(fmt::format("'{}' is not a time of day: give HH:MM, 00:00 to 23:59 (local time)", text), EINVAL);
    };
    if (text.size() != 5 || text[2] != ':')
        return bad();
    for (size_t i : {0, 1, 3, 4})
        if (!std::isdigit(static_cast<unsigned char>(text[i])))
            return bad();
    ScheduleTime when;
    when.hour = (text[0] - '0') * 10 + (text[1] - '0');
    when.minute = (text[3] - '0') * 10 + (text[4] - '0');
    if (when.hour > 23 || when.minute > 59)
        return bad();
    return when;
}

Result<int> parse_weekday(const std::string& text) {
    std::string lower = text;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    for (int day = 0; day < 7; ++day)
        if (lower == k_days[day] || (lower.size() == 3 && std::string(k_days[day]).starts_with(lower)))
            return day;
    return fail(fmt::format("'{}' is not a day of the week: give monday, tuesday, wednesday, thursday, friday, "
                            "saturday or sunday (or their first three letters)",
                            text),
                EINVAL);
}

std::string time_of_day_text(const ScheduleTime& when) {
    return fmt::format("{:02}:{:02}", when.hour, when.minute);
}

const char* weekday_name(int weekday) {
    return weekday >= 0 && weekday < 7 ? k_days[weekday] : "?";
}

time_t next_due(const ScheduleTime& when, time_t after) {
    std::tm base{};
    localtime_r(&after, &base);
    // Today's and the next 7 days' candidates: one of them is the next (8 covers a weekly one
    // whose day is today but whose time has passed).
    for (int day = 0; day <= 8; ++day) {
        std::tm candidate{};
        candidate.tm_year = base.tm_year;
        candidate.tm_mon = base.tm_mon;
        candidate.tm_mday = base.tm_mday + day;
        candidate.tm_hour = when.hour;
        candidate.tm_min = when.minute;
        candidate.tm_sec = 0;
        candidate.tm_isdst = -1;  // whatever is in force on that day
        const time_t t = mktime(&candidate);
        if (t == static_cast<time_t>(-1) || t <= after)
            continue;
        // mktime set tm_wday of the (normalised) day.
        if (when.weekday && candidate.tm_wday != *when.weekday)
            continue;
        return t;
    }
    return after + 7 * 24 * 3600;  // unreachable with a valid ScheduleTime
}

}  // namespace corral::daemon
