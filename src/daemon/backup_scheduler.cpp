#include "daemon/backup_scheduler.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "base/log.h"
#include "base/private_file.h"
#include "daemon/backup_service.h"
#include "daemon/event_bus.h"
#include "daemon/task_manager.h"

namespace corral::daemon {

using nlohmann::json;

namespace {

constexpr const char* k_file = "backup-schedules.json";
/// How often the thread looks at the clock: a schedule runs at most this late (and a changed
/// system clock or time zone is noticed within it).
constexpr auto k_tick = std::chrono::seconds(20);

json to_json(const BackupScheduleRecord& s) {
    return {{"id", s.id},
            {"vm", s.vm},
            {"repository", s.repository},
            {"hour", s.when.hour},
            {"minute", s.when.minute},
            {"weekday", s.when.weekday ? json(*s.when.weekday) : json()},
            {"keep_last", s.keep.keep_last},
            {"keep_daily", s.keep.keep_daily},
            {"keep_weekly", s.keep.keep_weekly},
            {"keep_monthly", s.keep.keep_monthly},
            {"verify_boot", s.verify_boot},
            {"created_at", s.created_at},
            {"next_run", s.next_run},
            {"last_run", s.last_run},
            {"last_result", s.last_result},
            {"last_message", s.last_message},
            {"last_backup", s.last_backup}};
}

BackupScheduleRecord from_json(const json& j) {
    BackupScheduleRecord s;
    s.id = j.value("id", "");
    s.vm = j.value("vm", "");
    s.repository = j.value("repository", "");
    s.when.hour = j.value("hour", 0);
    s.when.minute = j.value("minute", 0);
    if (j.contains("weekday") && j["weekday"].is_number_integer())
        s.when.weekday = j["weekday"].get<int>();
    s.keep.keep_last = j.value("keep_last", 0);
    s.keep.keep_daily = j.value("keep_daily", 0);
    s.keep.keep_weekly = j.value("keep_weekly", 0);
    s.keep.keep_monthly = j.value("keep_monthly", 0);
    s.verify_boot = j.value("verify_boot", false);
    s.created_at = j.value("created_at", "");
    s.next_run = j.value("next_run", time_t{0});
    s.last_run = j.value("last_run", time_t{0});
    s.last_result = j.value("last_result", "");
    s.last_message = j.value("last_message", "");
    s.last_backup = j.value("last_backup", "");
    return s;
}

bool keeps_something(const storage::backup::PruneOptions& keep) {
    return keep.keep_last + keep.keep_daily + keep.keep_weekly + keep.keep_monthly > 0;
}

}  // namespace

BackupScheduler::BackupScheduler(std::filesystem::path state_dir, BackupService& backups, TaskManager& tasks)
    : m_file(state_dir / k_file), m_backups(backups), m_tasks(tasks) {}

BackupScheduler::~BackupScheduler() {
    {
        std::lock_guard lock(m_mutex);
        m_stop = true;
    }
    m_wake.notify_all();
    if (m_thread.joinable())
        m_thread.join();
    // Runs started here hold `this` until they end; the task manager runs them to their end (it
    // outlives this object), so wait for them rather than leave them a destroyed scheduler.
    std::unique_lock lock(m_mutex);
    m_wake.wait(lock, [this] { return m_running.empty(); });
}

void BackupScheduler::start() {
    m_thread = std::thread([this] { loop(); });
}

Result<std::vector<BackupScheduleRecord>> BackupScheduler::load() const {
    std::vector<BackupScheduleRecord> out;
    std::ifstream in(m_file);
    if (!in) {
        if (!std::filesystem::exists(m_file))
            return out;
        return fail_errno(fmt::format("reading {}", m_file.string()));
    }
    std::stringstream text;
    text << in.rdbuf();
    auto list = json::parse(text.str(), nullptr, false);
    if (!list.is_array())
        return fail(fmt::format("{} is not a JSON array of backup schedules", m_file.string()));
    for (const auto& item : list)
        if (item.is_object())
            out.push_back(from_json(item));
    return out;
}

Result<void> BackupScheduler::save(const std::vector<BackupScheduleRecord>& schedules) const {
    json list = json::array();
    for (const auto& s : schedules)
        list.push_back(to_json(s));
    return write_file_atomically(m_file.string(), list.dump(2) + "\n", 0600);
}

template <typename F>
void BackupScheduler::update(const std::string& id, F&& change) {
    std::lock_guard lock(m_mutex);
    auto schedules = load();
    if (!schedules) {
        log_warning("backup schedule {}: {}", id, schedules.error().describe());
        return;
    }
    for (auto& s : *schedules)
        if (s.id == id) {
            change(s);
            if (auto saved = save(*schedules); !saved)
                log_warning("backup schedule {}: {}", id, saved.error().describe());
            return;
        }
}

Result<BackupScheduleRecord> BackupScheduler::create(BackupScheduleRecord record) {
    {
        std::lock_guard lock(m_mutex);
        auto schedules = TRY(load());
        do
            record.id = fmt::format("{}-{}", record.vm, random_hex(3));
        while (std::any_of(schedules.begin(), schedules.end(), [&](const auto& s) { return s.id == record.id; }));
        record.created_at = utc_now();
        record.next_run = next_due(record.when, std::time(nullptr));
        record.last_run = 0;
        record.last_result.clear();
        record.last_message.clear();
        record.last_backup.clear();
        schedules.push_back(record);
        TRY_VOID(save(schedules));
    }
    m_wake.notify_all();
    return record;
}

Result<std::vector<BackupScheduleRecord>> BackupScheduler::list() {
    std::lock_guard lock(m_mutex);
    return load();
}

Result<BackupScheduleRecord> BackupScheduler::get(const std::string& id) {
    for (auto& s : TRY(list()))
        if (s.id == id)
            return s;
    return fail(fmt::format("no backup schedule {} (see corral backup schedule list)", id), ENOENT);
}

Result<void> BackupScheduler::remove(const std::string& id) {
    std::lock_guard lock(m_mutex);
    auto schedules = TRY(load());
    auto it = std::find_if(schedules.begin(), schedules.end(), [&](const auto& s) { return s.id == id; });
    if (it == schedules.end())
        return fail(fmt::format("no backup schedule {} (see corral backup schedule list)", id), ENOENT);
    schedules.erase(it);
    return save(schedules);
}

Result<inventory::TaskRecord> BackupScheduler::run_now(const std::string& id) {
    return launch(id, false);
}

Result<inventory::TaskRecord> BackupScheduler::launch(const std::string& id, bool reschedule) {
    BackupScheduleRecord schedule;
    {
        std::lock_guard lock(m_mutex);
        auto schedules = TRY(load());
        auto it = std::find_if(schedules.begin(), schedules.end(), [&](const auto& s) { return s.id == id; });
        if (it == schedules.end())
            return fail(fmt::format("no backup schedule {} (see corral backup schedule list)", id), ENOENT);
        if (m_running.contains(id))
            return fail(fmt::format("backup schedule {} is running now; wait for its task", id), EBUSY);
        // Whether or not the run can start, a due schedule moves on: a failing one is not retried
        // every tick.
        if (reschedule) {
            it->next_run = next_due(it->when, std::time(nullptr));
            TRY_VOID(save(schedules));
        }
        schedule = *it;
        m_running.insert(id);
    }
    auto task = m_tasks.start(
        "backup.schedule", schedule.vm,
        [this, schedule](TaskProgress& progress) {
            auto outcome = run(schedule, progress);
            std::lock_guard lock(m_mutex);
            m_running.erase(schedule.id);
            m_wake.notify_all();  // under the lock: the destructor may be waiting for this
            return outcome;
        },
        Cancellable::Yes);
    if (!task) {
        std::lock_guard lock(m_mutex);
        m_running.erase(id);
    }
    return task;
}

Result<std::string> BackupScheduler::run(const BackupScheduleRecord& schedule, TaskProgress& progress) {
    const time_t started = std::time(nullptr);
    update(schedule.id, [&](BackupScheduleRecord& s) {
        s.last_run = started;
        s.last_result = "running";
        s.last_message.clear();
    });
    std::string backup_id;
    auto work = [&]() -> Result<std::string> {
        auto repo = TRY(m_backups.get_repo(schedule.repository));
        // A running VM is refused here (backups of running VMs are not there yet): a failed run
        // saying so, recorded on the schedule.
        TRY_VOID(m_backups.check_backup(schedule.vm));
        auto made = TRY(m_backups.run_backup(repo, schedule.vm, progress));
        backup_id = made.id;
        std::string message = std::move(made.message);
        if (keeps_something(schedule.keep)) {
            auto options = schedule.keep;
            options.vm = schedule.vm;
            options.dry_run = false;
            auto pruned = TRY(m_backups.prune(repo, options));
            message += fmt::format("; prune: {} kept, {} removed", pruned.kept.size(), pruned.removed.size());
        }
        if (schedule.verify_boot && !backup_id.empty())
            message += "; " + TRY(m_backups.run_boot_check(repo, backup_id, {}, progress));
        return message;
    };
    auto outcome = work();
    update(schedule.id, [&](BackupScheduleRecord& s) {
        s.last_result = outcome ? "succeeded" : "failed";
        s.last_message = outcome ? *outcome : outcome.error().message();
        s.last_backup = backup_id;
    });
    return outcome;
}

void BackupScheduler::loop() {
    std::unique_lock lock(m_mutex);
    while (!m_stop) {
        const time_t now = std::time(nullptr);
        std::vector<std::string> due;
        if (auto schedules = load(); schedules) {
            for (const auto& s : *schedules)
                if (s.next_run <= now && !m_running.contains(s.id))
                    due.push_back(s.id);
        } else {
            log_warning("backup schedules: {}", schedules.error().describe());
        }
        lock.unlock();
        for (const auto& id : due) {
            auto task = launch(id, true);
            if (!task)
                log_warning("backup schedule {}: {}", id, task.error().describe());
            else
                log_info("backup schedule {}: started task {}", id, task->id);
        }
        lock.lock();
        m_wake.wait_for(lock, k_tick, [this] { return m_stop; });
    }
}

}  // namespace corral::daemon
