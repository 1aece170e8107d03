#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <condition_variable>
#include <functional>
#include <map>
#include <deque>
#include <vector>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "daemon/event_bus.h"
#include "daemon/inventory/inventory.h"

namespace corral::daemon {

/// What a running task reports through: progress (0..1) and a line for humans; and, for work that
/// can be cancelled, whether it was.
class TaskProgress {
public:
    virtual ~TaskProgress() = default;
    virtual void report(double fraction, const std::string& message) = 0;
    /// True once `task cancel` asked a cancellable task to stop: its work then stops at its next
    /// step, removes what it made and fails with ECANCELED.
    virtual bool cancelled() const { return false; }
};

/// Whether a task's work can be stopped half-way (it checks TaskProgress::cancelled() and leaves
/// nothing behind): copies, imports and exports can; VM actions run to their end.
enum class Cancellable { No, Yes };

/// Long operations (VM start/stop, volume copies, image preparation) as tasks, run by a bounded
/// pool of worker threads (a task beyond the pool waits as "queued"); their records live in the
/// inventory (so `GET /tasks/{id}` survives a daemon restart), and every change is published as a
/// "task" event. Progress writes are throttled.
class TaskManager {
public:
    /// The work: returns the final message on success, or the error that failed the task.
    using Work = std::function<Result<std::string>(TaskProgress&)>;
    /// Workers by default: enough for several VM operations and copies at once, and a cap on
    /// the threads (and memory) a client can make corrald spend.
    static constexpr size_t k_default_workers = 8;

    TaskManager(inventory::Inventory& inventory, EventBus& events, size_t workers = k_default_workers)
        : m_inventory(inventory), m_events(events), m_max_workers(workers == 0 ? 1 : workers) {}
    /// stop().
    ~TaskManager();
    /// Runs the queued tasks and waits for them to end (their work decides how long; VM
    /// operations are bounded); a start() from then on is refused. corrald calls it before the
    /// services the tasks' work uses go away.
    void stop();

    /// Marks tasks left queued or running by a previous daemon as failed (their threads are gone).
    void fail_interrupted_tasks();
    /// Creates the task and queues `work`; returns the task's record ("running", or "queued" when
    /// every worker is busy) at once.
    Result<inventory::TaskRecord> start(const std::string& kind, const std::string& target, Work work,
                                        Cancellable cancellable = Cancellable::No);
    /// Asks a cancellable task to stop: a queued one ends "cancelled" at once, a running one when
    /// its work has stopped and removed what it made (its record says "cancelling" meanwhile).
    /// Returns the record as it is now. ENOENT for no such task; EBUSY when it has ended or
    /// cannot be cancelled (the message says why, naming the task).
    Result<inventory::TaskRecord> cancel(const std::string& id);
    /// The task's record, waiting up to `wait` for it to finish when it is queued or running.
    Result<inventory::TaskRecord> get(const std::string& id, std::chrono::milliseconds wait = {});

private:
    struct Job {
        inventory::TaskRecord record;
        Work work;
        std::shared_ptr<std::atomic<bool>> cancel;  // null: not cancellable
    };
    /// A worker: takes jobs until the manager is destroyed and the queue is empty.
    void work_loop();
    /// Runs one task's work and records how it ended.
    void run(Job& job);
    /// Records how the task ended; a failure after a cancel request is "cancelled".
    void finish(inventory::TaskRecord record, Result<std::string> outcome, bool cancel_requested = false);
    /// Stores and publishes a status change of a task that has not ended.
    void publish(inventory::TaskRecord& record, const char* status);
    /// Runs `work`, turning an exception into a failed outcome.
    Result<std::string> run_guarded(Job& job);

    inventory::Inventory& m_inventory;
    EventBus& m_events;
    const size_t m_max_workers;
    std::mutex m_mutex;  // guards the queue and the worker list; m_finished notifies waiters
    std::condition_variable m_finished;
    std::condition_variable m_work_ready;
    std::deque<Job> m_queue;
    /// The cancel flags of cancellable tasks that are queued or running, by task id.
    std::map<std::string, std::shared_ptr<std::atomic<bool>>> m_cancel_flags;
    std::vector<std::thread> m_workers;
    size_t m_idle = 0;  // workers waiting for a job
    bool m_stopping = false;
};

/// The API's JSON for a task (docs/api.md "Tasks").
nlohmann::json task_json(const inventory::TaskRecord& task);

}  // namespace corral::daemon
