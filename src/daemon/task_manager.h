#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <condition_variable>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "daemon/event_bus.h"
#include "daemon/inventory/inventory.h"

namespace corral::daemon {

/// What a running task reports through: progress (0..1) and a line for humans.
class TaskProgress {
public:
    virtual ~TaskProgress() = default;
    virtual void report(double fraction, const std::string& message) = 0;
};

/// Long operations (VM start/stop, volume copies, image preparation) as tasks: each runs on a
/// thread of its own, its record lives in the inventory (so `GET /tasks/{id}` survives a daemon
/// restart), and every change is published as a "task" event. Progress writes are throttled.
class TaskManager {
public:
    /// The work: returns the final message on success, or the error that failed the task.
    using Work = std::function<Result<std::string>(TaskProgress&)>;

    TaskManager(inventory::Inventory& inventory, EventBus& events) : m_inventory(inventory), m_events(events) {}
    /// Waits for running tasks to end (their work decides how long; VM operations are bounded).
    ~TaskManager();

    /// Marks tasks left "running" by a previous daemon as failed (their threads are gone).
    void fail_interrupted_tasks();
    /// Creates the task and starts `work`; returns the task's record at once.
    Result<inventory::TaskRecord> start(const std::string& kind, const std::string& target, Work work);
    /// The task's record, waiting up to `wait` for it to finish when it is running.
    Result<inventory::TaskRecord> get(const std::string& id, std::chrono::milliseconds wait = {});

private:
    void finish(inventory::TaskRecord record, Result<std::string> outcome);
    /// Runs `work`, turning an exception into a failed outcome.
    Result<std::string> run_guarded(Work& work, inventory::TaskRecord& record);

    inventory::Inventory& m_inventory;
    EventBus& m_events;
    std::mutex m_mutex;  // guards m_threads; m_finished notifies waiters
    std::condition_variable m_finished;
    struct Worker {
        std::thread thread;
        std::shared_ptr<std::atomic<bool>> done;
    };
    std::list<Worker> m_threads;
};

/// The API's JSON for a task (docs/api.md "Tasks").
nlohmann::json task_json(const inventory::TaskRecord& task);

}  // namespace corral::daemon
