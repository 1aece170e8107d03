#include "daemon/task_manager.h"

#include <cerrno>
#include <system_error>

#include <fmt/format.h>

#include "base/log.h"

namespace corral::daemon {
namespace {

class RecordingProgress final : public TaskProgress {
public:
    RecordingProgress(inventory::Inventory& inventory, EventBus& events, inventory::TaskRecord& record,
                      const std::atomic<bool>* cancel)
        : m_inventory(inventory), m_events(events), m_record(record), m_cancel(cancel) {}

    bool cancelled() const override { return m_cancel != nullptr && m_cancel->load(); }

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
    const std::atomic<bool>* m_cancel;
    std::chrono::steady_clock::time_point m_last_write{};
};

/// Why a task of `kind` that is not cancellable is not (the 409 of `task cancel` says it).
std::string not_cancellable_reason(const std::string& kind) {
    if (kind.rfind("vm.", 0) == 0)
        return "VM actions run to their end (a stop or reboot ends by its timeout; `vm kill` ends the VM at once)";
    if (kind == "image.prepare")
        return "building the default image from Debian packages cannot be stopped half-way (image imports from "
               "files can)";
    if (kind == "volume.upload") return "an upload ends when its client stops sending";
    return "only copies, imports and exports can (volume clone --full, volume import and export, image imports)";
}

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
    stop();
}

void TaskManager::stop() {
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

Result<inventory::TaskRecord> TaskManager::start(const std::string& kind, const std::string& target, Work work,
                                                 Cancellable cancellable) {
    auto record = TRY(m_inventory.create_task(kind, target));
    ignore_error(m_inventory.prune_tasks(500),
                 "housekeeping: a failed prune keeps more history, and the next task prunes again");
    std::shared_ptr<std::atomic<bool>> cancel;
    if (cancellable == Cancellable::Yes) cancel = std::make_shared<std::atomic<bool>>(false);
    std::unique_lock lock(m_mutex);
    if (m_stopping) {
        // No worker would run it (they are ending), and what its work uses is going away.
        lock.unlock();
        finish(record, fail("corrald is stopping; start the task again once it is back", ESHUTDOWN));
        return fail(fmt::format("corrald is stopping: task {} ({}) was not started", record.id, kind), ESHUTDOWN);
    }
    if (cancel) m_cancel_flags[record.id] = cancel;
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
                m_cancel_flags.erase(record.id);
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
    m_queue.push_back({record, std::move(work), std::move(cancel)});
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
        run(job);
        lock.lock();
        ++m_idle;
    }
}

void TaskManager::run(Job& job) {
    if (job.record.status == inventory::k_task_queued) {
        job.record.message.clear();
        publish(job.record, inventory::k_task_running);
    }
    auto outcome = run_guarded(job);
    bool cancel_requested = false;
    {
        std::lock_guard lock(m_mutex);
        m_cancel_flags.erase(job.record.id);
        cancel_requested = job.cancel && job.cancel->load();
    }
    finish(std::move(job.record), std::move(outcome), cancel_requested);
}

Result<inventory::TaskRecord> TaskManager::cancel(const std::string& id) {
    auto record = TRY(m_inventory.get_task(id));
    const std::string what = fmt::format("task {} ({} {})", record.id, record.kind, record.target);
    std::unique_lock lock(m_mutex);
    auto flag = m_cancel_flags.find(id);
    if (flag == m_cancel_flags.end()) {
        record = TRY(m_inventory.get_task(id));  // it may have ended since
        if (record.status != inventory::k_task_running && record.status != inventory::k_task_queued)
            return fail(fmt::format("{} has already ended ({})", what, record.status), EBUSY);
        return fail(fmt::format("{} cannot be cancelled: {}", what, not_cancellable_reason(record.kind)), EBUSY);
    }
    flag->second->store(true);
    // Not started yet: it leaves the queue and ends now, having made nothing.
    for (auto job = m_queue.begin(); job != m_queue.end(); ++job) {
        if (job->record.id != id) continue;
        inventory::TaskRecord queued = std::move(job->record);
        m_queue.erase(job);
        m_cancel_flags.erase(id);
        lock.unlock();
        finish(std::move(queued), fail("cancelled before it started", ECANCELED), true);
        return m_inventory.get_task(id);
    }
    lock.unlock();
    record = TRY(m_inventory.get_task(id));
    if (record.status == inventory::k_task_running) {
        record.message = "cancelling: stopping the work and removing what it made";
        publish(record, inventory::k_task_running);
    }
    return record;
}


void TaskManager::publish(inventory::TaskRecord& record, const char* status) {
    record.status = status;
    if (auto stored = m_inventory.update_task(record); !stored)
        log_warning("task {}: cannot store its status: {}", record.id, stored.error().describe());
    m_events.publish({{"kind", "task"}, {"task", task_json(record)}});
}

Result<std::string> TaskManager::run_guarded(Job& job) {
    inventory::TaskRecord& record = job.record;
    // The last line of every task: an exception fails the task (and is logged) instead of
    // escaping the thread, which would terminate corrald.
    try {
        RecordingProgress progress(m_inventory, m_events, record, job.cancel.get());
        return job.work(progress);
    } catch (const std::exception& error) {
        log_error("task {} ({} {}): {}", record.id, record.kind, record.target, error.what());
        return fail(fmt::format("internal error: {}", error.what()));
    } catch (...) {
        log_error("task {} ({} {}): an exception that is not a std::exception", record.id, record.kind, record.target);
        return fail("internal error");
    }
}

void TaskManager::finish(inventory::TaskRecord record, Result<std::string> outcome, bool cancel_requested) {
    if (outcome) {
        // Done before it noticed a cancel: it succeeded, and its record says so.
        record.status = inventory::k_task_succeeded;
        record.progress = 1.0;
        record.message = *outcome;
    } else if (cancel_requested) {
        record.status = inventory::k_task_cancelled;
        record.message = "cancelled on request; nothing of it was kept";
        record.error = outcome.error().errno_value() == ECANCELED
                           ? "cancelled on request"
                           : fmt::format("cancelled on request ({})", outcome.error().message());
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
