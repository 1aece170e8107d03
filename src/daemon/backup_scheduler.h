#pragma once

// Backup schedules that corrald runs (docs/backup.md "Schedules", docs/api.md "Backup schedules"):
// kept in STATE/backup-schedules.json (written atomically), run by a thread of their own as
// `backup.schedule` tasks: a backup, then a prune with the schedule's keep rules, then a boot
// check when asked. Times are the host's local time (backup_schedule_time.h).

#include <condition_variable>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "daemon/backup_schedule_time.h"
#include "storage/backup/operations.h"

namespace corral::inventory {
struct TaskRecord;
}

namespace corral::daemon {

class BackupService;
class TaskManager;
class TaskProgress;

/// A schedule and what became of its last run.
struct BackupScheduleRecord {
    std::string id;
    std::string vm;
    std::string repository;
    ScheduleTime when;
    storage::backup::PruneOptions keep;  ///< all 0: no prune
    bool verify_boot = false;
    std::string created_at;
    time_t next_run = 0;
    time_t last_run = 0;       ///< 0: never ran
    std::string last_result;   ///< "", "running", "succeeded" or "failed"
    std::string last_message;  ///< what the run did, or why it failed
    std::string last_backup;   ///< the backup the last run made
};

class BackupScheduler {
public:
    BackupScheduler(std::filesystem::path state_dir, BackupService& backups, TaskManager& tasks);
    /// Stops the thread, and waits for the runs it started (tasks) to end.
    ~BackupScheduler();
    BackupScheduler(const BackupScheduler&) = delete;
    BackupScheduler& operator=(const BackupScheduler&) = delete;

    /// Starts the thread. A schedule whose next run passed while corrald was down runs once now.
    void start();

    /// Adds a schedule (its id and next run are made here).
    Result<BackupScheduleRecord> create(BackupScheduleRecord record);
    Result<std::vector<BackupScheduleRecord>> list();
    /// ENOENT naming the id.
    Result<BackupScheduleRecord> get(const std::string& id);
    Result<void> remove(const std::string& id);
    /// Runs the schedule now as a task (its next run stays); EBUSY while a run of it is going on.
    Result<inventory::TaskRecord> run_now(const std::string& id);

private:
    Result<std::vector<BackupScheduleRecord>> load() const;
    Result<void> save(const std::vector<BackupScheduleRecord>& schedules) const;
    /// Starts the schedule's run as a task; with `reschedule`, its next run moves past now.
    Result<inventory::TaskRecord> launch(const std::string& id, bool reschedule);
    /// The task's work: backup, prune, boot check; records the outcome on the schedule.
    Result<std::string> run(const BackupScheduleRecord& schedule, TaskProgress& progress);
    /// Updates the stored schedule `id` with `change` (nothing when it was deleted meanwhile).
    template <typename F>
    void update(const std::string& id, F&& change);
    void loop();

    std::filesystem::path m_file;
    BackupService& m_backups;
    TaskManager& m_tasks;
    std::mutex m_mutex;  // guards m_file's read-modify-write, m_running and m_stop
    std::condition_variable m_wake;
    std::set<std::string> m_running;
    bool m_stop = false;
    std::thread m_thread;
};

}  // namespace corral::daemon
