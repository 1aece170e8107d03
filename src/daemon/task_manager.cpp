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
    std::list<Worker> workers;
    {
        std::lock_guard lock(m_mutex);
        workers.swap(m_threads);
    }
    for (auto& worker : workers) worker.thread.join();
}

void TaskManager::fail_interrupted_tasks() {
    auto tasks = m_inventory.list_tasks(1000);
    if (!tasks) return;
    for (auto task : *tasks) {
        if (task.status != inventory::k_task_running) continue;
        task.status = inventory::k_task_failed;
        task.error = "corrald stopped while the task was running";
        (void)m_inventory.update_task(task);
    }
}

Result<inventory::TaskRecord> TaskManager::start(const std::string& kind, const std::string& target, Work work) {
    auto record = TRY(m_inventory.create_task(kind, target));
    (void)m_inventory.prune_tasks(500);
    m_events.publish({{"kind", "task"}, {"task", task_json(record)}});
    std::unique_lock lock(m_mutex);
    // Join the workers that have ended, so the list holds only live ones.
    for (auto it = m_threads.begin(); it != m_threads.end();) {
        if (*it->done) {
            it->thread.join();
            it = m_threads.erase(it);
        } else {
            ++it;
        }
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    try {
        m_threads.push_back({std::thread([this, record, done, work = std::move(work)]() mutable {
                                 finish(record, run_guarded(work, record));
                                 *done = true;
                             }),
                             done});
    } catch (const std::system_error& error) {
        // No thread (EAGAIN: the process or the host is out of them): the task fails now
        // instead of std::terminate ending corrald.
        auto message = fmt::format("cannot start a thread for the task: {}", error.what());
        log_error("task {} ({} {}): {}", record.id, kind, target, message);
        lock.unlock();  // finish() takes it
        finish(record, fail(message, EAGAIN));
        return fail(message, EAGAIN);
    }
    return record;
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
        if (record.status != inventory::k_task_running || std::chrono::steady_clock::now() >= deadline)
            return record;
        m_finished.wait_until(lock, deadline);
    }
}

}  // namespace corral::daemon
