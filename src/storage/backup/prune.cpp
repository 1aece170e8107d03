#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <map>
#include <set>

#include "storage/backup/operations.h"

namespace corral::storage::backup {

namespace {

std::tm utc(int64_t seconds) {
    std::tm tm{};
    const time_t t = static_cast<time_t>(seconds);
    gmtime_r(&t, &tm);
    return tm;
}

int64_t day_of(int64_t seconds) {
    const std::tm tm = utc(seconds);
    return int64_t(tm.tm_year) * 1000 + tm.tm_yday;
}

int64_t week_of(int64_t seconds) {
    // ISO 8601 week-numbering year and week (%G, %V): a week never splits across a year end.
    const std::tm tm = utc(seconds);
    char text[16] = {};
    std::strftime(text, sizeof text, "%G%V", &tm);
    return std::atoll(text);
}

int64_t month_of(int64_t seconds) {
    const std::tm tm = utc(seconds);
    return int64_t(tm.tm_year) * 100 + tm.tm_mon;
}

Result<void> check_keep(const char* field, int value) {
    if (value < 0)
        return fail(fmt::format("{} {} is invalid (allowed: 0 or more)", field, value), EINVAL);
    return {};
}

/// Marks, newest first, the first backup of each new period until `count` periods are kept.
void keep_periods(const std::vector<const BackupRecord*>& newest_first, int count,
                  int64_t (*period)(int64_t), std::set<std::string>& keep) {
    std::optional<int64_t> last;
    int kept = 0;
    for (const BackupRecord* record : newest_first) {
        if (kept >= count)
            break;
        const int64_t p = period(record->created);
        if (last && *last == p)
            continue;
        last = p;
        keep.insert(record->id);
        ++kept;
    }
}

}  // namespace

Result<PruneResult> prune_backups(Repository& repo, const PruneOptions& options) {
    TRY_VOID(check_keep("keep_last", options.keep_last));
    TRY_VOID(check_keep("keep_daily", options.keep_daily));
    TRY_VOID(check_keep("keep_weekly", options.keep_weekly));
    TRY_VOID(check_keep("keep_monthly", options.keep_monthly));
    if (!options.keep_last && !options.keep_daily && !options.keep_weekly && !options.keep_monthly)
        return fail("prune needs at least one of keep_last, keep_daily, keep_weekly, keep_monthly "
                    "above 0 (it would remove every backup)",
                    EINVAL);
    if (options.vm)
        TRY_VOID(validate_name("vm", *options.vm));
    RepositoryLock lock = TRY(repo.lock(LockMode::Shared));
    const auto records = TRY(repo.catalogue().list(options.vm));
    std::map<std::string, std::vector<const BackupRecord*>> by_vm;
    for (const auto& record : records)
        by_vm[record.vm].push_back(&record);
    PruneResult result;
    for (auto& [vm, list] : by_vm) {
        // Newest first. The catalogue lists in the order backups were made, which also orders
        // two of the same second (their ids' random suffixes do not).
        std::reverse(list.begin(), list.end());
        std::stable_sort(list.begin(), list.end(),
                         [](const BackupRecord* a, const BackupRecord* b) { return a->created > b->created; });
        std::set<std::string> keep;
        for (int i = 0; i < options.keep_last && i < static_cast<int>(list.size()); ++i)
            keep.insert(list[i]->id);
        keep_periods(list, options.keep_daily, day_of, keep);
        keep_periods(list, options.keep_weekly, week_of, keep);
        keep_periods(list, options.keep_monthly, month_of, keep);
        for (const BackupRecord* record : list)
            (keep.count(record->id) ? result.kept : result.removed).push_back(record->id);
    }
    if (options.dry_run)
        return result;
    for (const auto& id : result.removed) {
        TRY_VOID(repo.catalogue().remove(id));
        TRY_VOID(repo.remove_index(id));
    }
    return result;
}

}  // namespace corral::storage::backup
