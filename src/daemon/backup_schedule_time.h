#pragma once

// When a backup schedule is due (docs/backup.md "Schedules"): pure functions over the host's
// local time zone (TZ / /etc/localtime, as localtime_r and mktime see it), so they can be tested
// with any zone.

#include <ctime>
#include <optional>
#include <string>

#include "base/result.h"

namespace corral::daemon {

/// A schedule's time of day, and its day of the week for a weekly one.
struct ScheduleTime {
    int hour = 0;                  ///< 0-23, local time
    int minute = 0;                ///< 0-59
    std::optional<int> weekday{};  ///< 0 = Sunday ... 6 = Saturday; none = every day
    bool operator==(const ScheduleTime&) const = default;
};

/// "HH:MM" (00:00 to 23:59) as hour and minute; EINVAL saying what is allowed.
Result<ScheduleTime> parse_time_of_day(const std::string& text);
/// "monday" / "mon" ... (any case) as 0 (Sunday) to 6; EINVAL listing the days.
Result<int> parse_weekday(const std::string& text);
/// "HH:MM", and the weekday's full name.
std::string time_of_day_text(const ScheduleTime& when);
const char* weekday_name(int weekday);

/// The first moment strictly after `after` at which `when` falls, in local time. A time that a
/// daylight saving change skips (02:30 on the spring-forward night) falls at the moment mktime
/// normalises it to (03:30); one that happens twice (autumn) falls at the first.
time_t next_due(const ScheduleTime& when, time_t after);

}  // namespace corral::daemon
