#include "daemon/task_manager.h"

#include <cerrno>
#include <system_error>

#include <fmt/format.h>

#include "base/log.h"

namespace corral::daemon {
namespace {

class RecordingProgress final : public TaskProgress {
public:
    RecordingProgress(inventory::Inventory& inventory, EventBus& events, inventory::TaskRecord& record)
        : m_inventory(inventory), m_events(events), m_record(record) {}

    void report(double fraction, const std::string& message) override {
        fraction = std::clamp(fraction, 0.0, 1.0);
        auto now = std::chrono::steady_clock::now();
        bool message_changed = message != m_record.message;
        m_record.progress = fraction;
        m_record.message = message;
        // A copy reports thousands of times; the inventory and the event stream need ~4 a second.
        if (!message_changed && now - m_last_write < std::chrono::milliseconds(250)) return;
        m_last_write = now;
        if (auto stored = m_inventory.update_task(m_record); !stored)
            log_warning("task {}: cannot store progress: {}", m_record.id, stored.error().describe());
        m_events.publish({{"kind", "task"}, {"task", task_json(m_record)}});
    }

private:
    inventory::Inventory& m_inventory;
    EventBus& m_events;
    inventory::TaskRecord& m_record;
    std::chrono::steady_clock::time_point m_last_write{};
};

}  // namespace

nlohmann::json task_json(const inventory::TaskRecord& task) {
    auto null_if_empty = [](const std::string& text) -> nlohmann::json {
        return text.empty() ? nlohmann::json(nullptr) : nlohmann::json(text);
    };
    return {{"id", task.id},
            {"kind", task.kind},
            {"target", task.target},
            {"status", task.status},
            {"progress", task.progress},
            {"message", task.message},
            {"error", null_if_empty(task.error)},
            {"created_at", task.created_at},
            {"finished_at", null_if_empty(task.finished_at)}};
}

TaskManager::~TaskManager() {
    std::vector<std::thread> workers;
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
        workers.swap(m_workers);
    }
    m_work_ready.notify_all();
    for (auto& worker : workers) worker.join();
}

void TaskManager::fail_interrupted_tasks() {
    auto tasks = m_inventory.list_tasks(1000);
    if (!tasks) return;
    for (auto task : *tasks) {
        if (task.status != inventory::k_task_running && task.status != inventory::k_task_queued) continue;
        task.error = task.status == inventory::k_task_queued ? "corrald stopped before the task started"
                                                            : "corrald stopped while the task was running";
        task.status = inventory::k_task_failed;
        // Not fatal to start-up, but the task would show as running for ever: say so.
        if (auto updated = m_inventory.update_task(task); !updated)
            log_warning("task {}: cannot mark it failed: {}", task.id, updated.error().describe());
    }
}

Result<inventory::TaskRecord> TaskManager::start(const std::string& kind, const std::string& target, Work work) {
    auto record = TRY(m_inventory.create_task(kind, target));
    ignore_error(m_inventory.prune_tasks(500),
                 "housekeeping: a failed prune keeps more history, and the next task prunes again");
    std::unique_lock lock(m_mutex);
    // A worker per job up to the cap; past it, jobs wait in order.
    if (m_queue.size() >= m_idle && m_workers.size() < m_max_workers) {
        try {
            m_workers.emplace_back([this] { work_loop(); });
            ++m_idle;
        } catch (const std::system_error& error) {
            // Out of threads (RLIMIT_NPROC, memory): the job waits for a worker that exists, or
            // fails when there is none; corrald goes on either way.
            log_warning("task {}: cannot start a worker thread: {}", record.id, error.what());
            if (m_workers.empty()) {
                lock.unlock();
                finish(record, fail(fmt::format("cannot start a worker thread: {}", error.what()), EAGAIN));
                return m_inventory.get_task(record.id);
            }
        }
    }
    if (m_queue.size() >= m_idle) {
        // Stored before a worker can see the job, so "running" never comes before "queued".
        record.message = "waiting for a free worker";
        publish(record, inventory::k_task_queued);
    } else {
        m_events.publish({{"kind", "task"}, {"task", task_json(record)}});
    }
    m_queue.push_back({record, std::move(work)});
    lock.unlock();
    m_work_ready.notify_one();
    return record;
}

void TaskManager::work_loop() {
    std::unique_lock lock(m_mutex);
    while (true) {
        m_work_ready.wait(lock, [this] { return m_stopping || !m_queue.empty(); });
        if (m_queue.empty()) return;  // stopping, and nothing left to run
        Job job = std::move(m_queue.front());
        m_queue.pop_front();
        --m_idle;
        lock.unlock();
        run(std::move(job.record), job.work);
        lock.lock();
        ++m_idle;
    }
}

void TaskManager::run(inventory::TaskRecord record, Work& work) {
    if (record.status == inventory::k_task_queued) {
        record.message.clear();
        publish(record, inventory::k_task_running);
    }
    auto outcome = run_guarded(work, record);
    finish(std::move(record), std::move(outcome));
}

void TaskManager::publish(inventory::TaskRecord& record, const char* status) {
    record.status = status;
    if (auto stored = m_inventory.update_task(record); !stored)
        log_warning("task {}: cannot store its status: {}", record.id, stored.error().describe());
    m_events.publish({{"kind", "task"}, {"task", task_json(record)}});
}

Result<std::string> TaskManager::run_guarded(Work& work, inventory::TaskRecord& record) {
    // The last line of every task: an exception fails the task (and is logged) instead of
    // escaping the thread, which would terminate corrald.
    try {
        RecordingProgress progress(m_inventory, m_events, record);
        return work(progress);
    } catch (const std::exception& error) {
        log_error("task {} ({} {}): {}", record.id, record.kind, record.target, error.what());
        return fail(fmt::format("internal error: {}", error.what()));
    } catch (...) {
        log_error("task {} ({} {}): an exception that is not a std::exception", record.id, record.kind, record.target);
        return fail("internal error");
    }
}

void TaskManager::finish(inventory::TaskRecord record, Result<std::string> outcome) {
    if (outcome) {
        record.status = inventory::k_task_succeeded;
        record.progress = 1.0;
        record.message = *outcome;
    } else {
        record.status = inventory::k_task_failed;
        record.error = outcome.error().message();
    }
    if (auto stored = m_inventory.update_task(record); stored) {
        record = *stored;
    } else {
        log_warning("task {}: cannot store its end: {}", record.id, stored.error().describe());
    }
    m_events.publish({{"kind", "task"}, {"task", task_json(record)}});
    std::lock_guard lock(m_mutex);
    m_finished.notify_all();
}

Result<inventory::TaskRecord> TaskManager::get(const std::string& id, std::chrono::milliseconds wait) {
    auto deadline = std::chrono::steady_clock::now() + wait;
    std::unique_lock lock(m_mutex);
    while (true) {
        auto record = TRY(m_inventory.get_task(id));
        const bool ended = record.status != inventory::k_task_running && record.status != inventory::k_task_queued;
        if (ended || std::chrono::steady_clock::now() >= deadline)
            return record;
        m_finished.wait_until(lock, deadline);
    }
}

}  // namespace corral::daemon
