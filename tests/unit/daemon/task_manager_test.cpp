#include "daemon/task_manager.h"

#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>

#include <gtest/gtest.h>

#include "daemon/inventory/sqlite_inventory.h"

namespace corral::daemon {
namespace {

/// A real inventory (SQLite file) in a temporary folder.
class TaskManagerTest : public ::testing::Test {
protected:
    void SetUp() override {
        char pattern[] = "/tmp/corral-tasks-XXXXXX";
        m_dir = ::mkdtemp(pattern);
        auto opened = inventory::SqliteInventory::open(m_dir + "/corral.db");
        ASSERT_TRUE(opened) << opened.error().describe();
        m_inventory = std::move(*opened);
    }
    void TearDown() override {
        m_inventory.reset();
        std::filesystem::remove_all(m_dir);
    }

    std::string m_dir;
    std::unique_ptr<inventory::SqliteInventory> m_inventory;
    EventBus m_events;
};

/// Work that holds its worker until released, counting how many run at once.
struct Gate {
    std::mutex mutex;
    std::condition_variable changed;
    bool open = false;
    int running = 0;
    int most = 0;

    TaskManager::Work work() {
        return [this](TaskProgress&) -> Result<std::string> {
            std::unique_lock lock(mutex);
            most = std::max(most, ++running);
            changed.notify_all();
            changed.wait(lock, [this] { return open; });
            --running;
            return std::string("done");
        };
    }
    void release() {
        std::lock_guard lock(mutex);
        open = true;
        changed.notify_all();
    }
    bool wait_running(int count) {
        std::unique_lock lock(mutex);
        return changed.wait_for(lock, std::chrono::seconds(30), [&] { return running == count; });
    }
};

TEST_F(TaskManagerTest, TasksBeyondThePoolWaitAsQueued) {
    Gate gate;
    std::vector<std::string> ids;
    std::mutex seen_mutex;
    std::set<std::string> statuses_seen;
    const uint64_t listener = m_events.subscribe([&](const nlohmann::json& event) {
        std::lock_guard lock(seen_mutex);
        if (event.value("kind", "") == "task")
            statuses_seen.insert(event["task"].value("status", ""));
    });
    {
        TaskManager tasks(*m_inventory, m_events, 2);
        for (int i = 0; i < 5; ++i) {
            auto task = tasks.start("volume.clone", fmt::format("v{}", i), gate.work());
            ASSERT_TRUE(task) << task.error().describe();
            ids.push_back(task->id);
        }
        ASSERT_TRUE(gate.wait_running(2));
        int queued = 0;
        for (const auto& id : ids) {
            auto task = tasks.get(id);
            ASSERT_TRUE(task);
            if (task->status == inventory::k_task_queued) {
                ++queued;
                EXPECT_EQ(task->message, "waiting for a free worker");
                EXPECT_TRUE(task->finished_at.empty());
            }
        }
        EXPECT_EQ(queued, 3);
        gate.release();
        for (const auto& id : ids) {
            auto task = tasks.get(id, std::chrono::seconds(30));
            ASSERT_TRUE(task);
            EXPECT_EQ(task->status, inventory::k_task_succeeded) << id;
        }
    }
    m_events.unsubscribe(listener);
    EXPECT_EQ(gate.most, 2);  // never more threads than the pool
    EXPECT_TRUE(statuses_seen.contains("queued"));
}

TEST_F(TaskManagerTest, StopRunsWhatIsQueuedThenRefusesNewTasksSayingWhy) {
    // corrald stops the tasks before the services their work uses go away: what was running or
    // queued ends first, and a task started after that (a schedule's tick) is refused, not left
    // queued with no worker.
    Gate gate;
    TaskManager tasks(*m_inventory, m_events, 1);
    auto running = tasks.start("volume.clone", "a", gate.work());
    auto queued = tasks.start("volume.clone", "b", gate.work());
    ASSERT_TRUE(running && queued);
    ASSERT_TRUE(gate.wait_running(1));
    std::thread stopper([&] { tasks.stop(); });
    gate.release();
    stopper.join();
    EXPECT_EQ(tasks.get(running->id)->status, inventory::k_task_succeeded);
    EXPECT_EQ(tasks.get(queued->id)->status, inventory::k_task_succeeded);

    auto late = tasks.start("backup.schedule", "web", gate.work());
    ASSERT_FALSE(late);
    EXPECT_NE(late.error().message().find("corrald is stopping"), std::string::npos) << late.error().message();
    auto listed = m_inventory->list_tasks(10);
    ASSERT_TRUE(listed);
    auto record = std::find_if(listed->begin(), listed->end(), [](const auto& t) { return t.kind == "backup.schedule"; });
    ASSERT_NE(record, listed->end());
    EXPECT_EQ(record->status, inventory::k_task_failed);  // not left "queued" for the next corrald to explain
}

TEST_F(TaskManagerTest, ACancelledTaskStopsAndEndsCancelled) {
    TaskManager tasks(*m_inventory, m_events);
    std::atomic<bool> saw_cancel = false;
    std::atomic<bool> started = false;
    auto task = tasks.start(
        "volume.clone", "default/big",
        [&](TaskProgress& progress) -> Result<std::string> {
            started = true;
            // Work that checks, as a copy does between chunks (bounded: a test must not hang).
            for (int i = 0; i < 3000 && !progress.cancelled(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
            saw_cancel = progress.cancelled();
            if (saw_cancel) return fail("the copy was cancelled", ECANCELED);
            return std::string("copied");
        },
        Cancellable::Yes);
    ASSERT_TRUE(task) << task.error().describe();
    // Running, not queued (a queued one ends without running: the next test).
    for (int i = 0; i < 3000 && !started; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(started);
    auto asked = tasks.cancel(task->id);
    ASSERT_TRUE(asked) << asked.error().describe();
    auto ended = tasks.get(task->id, std::chrono::seconds(30));
    ASSERT_TRUE(ended);
    EXPECT_TRUE(saw_cancel);
    EXPECT_EQ(ended->status, inventory::k_task_cancelled);
    EXPECT_EQ(ended->error, "cancelled on request");
    EXPECT_FALSE(ended->finished_at.empty());
    // Once ended, a second cancel is refused, naming the task and its end.
    auto again = tasks.cancel(task->id);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().errno_value(), EBUSY);
    EXPECT_EQ(again.error().message(),
              fmt::format("task {} (volume.clone default/big) has already ended (cancelled)", task->id));
}

TEST_F(TaskManagerTest, AQueuedCancellableTaskEndsAtOnceWithoutRunning) {
    Gate gate;
    TaskManager tasks(*m_inventory, m_events, 1);
    auto busy = tasks.start("volume.clone", "default/a", gate.work(), Cancellable::Yes);
    ASSERT_TRUE(busy);
    ASSERT_TRUE(gate.wait_running(1));
    bool ran = false;
    auto queued = tasks.start(
        "volume.export", "default/b",
        [&](TaskProgress&) -> Result<std::string> {
            ran = true;
            return std::string("exported");
        },
        Cancellable::Yes);
    ASSERT_TRUE(queued);
    EXPECT_EQ(queued->status, inventory::k_task_queued);
    auto cancelled = tasks.cancel(queued->id);
    ASSERT_TRUE(cancelled) << cancelled.error().describe();
    EXPECT_EQ(cancelled->status, inventory::k_task_cancelled);
    gate.release();
    auto first = tasks.get(busy->id, std::chrono::seconds(30));
    ASSERT_TRUE(first);
    EXPECT_EQ(first->status, inventory::k_task_succeeded);
    EXPECT_FALSE(ran);
}

TEST_F(TaskManagerTest, ATaskThatCannotBeCancelledIsRefusedSayingWhy) {
    Gate gate;
    TaskManager tasks(*m_inventory, m_events);
    auto task = tasks.start("vm.stop", "web1", gate.work());
    ASSERT_TRUE(task);
    ASSERT_TRUE(gate.wait_running(1));
    auto refused = tasks.cancel(task->id);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().errno_value(), EBUSY);
    EXPECT_EQ(refused.error().message(),
              fmt::format("task {} (vm.stop web1) cannot be cancelled: VM actions run to their end (a stop or "
                          "reboot ends by its timeout; `vm kill` ends the VM at once)",
                          task->id));
    auto missing = tasks.cancel("t-999999");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().errno_value(), ENOENT);
    gate.release();
    auto ended = tasks.get(task->id, std::chrono::seconds(30));
    ASSERT_TRUE(ended);
    EXPECT_EQ(ended->status, inventory::k_task_succeeded);
}

TEST_F(TaskManagerTest, AQueuedTaskLeftByAnEndedDaemonIsFailed) {
    auto task = m_inventory->create_task("vm.start", "web1");
    ASSERT_TRUE(task);
    task->status = inventory::k_task_queued;
    ASSERT_TRUE(m_inventory->update_task(*task));
    TaskManager tasks(*m_inventory, m_events);
    tasks.fail_interrupted_tasks();
    auto after = tasks.get(task->id);
    ASSERT_TRUE(after);
    EXPECT_EQ(after->status, inventory::k_task_failed);
    EXPECT_EQ(after->error, "corrald stopped before the task started");
}

// Out of threads: std::thread throws std::system_error. Before, that escaped TaskManager::start
// and ended corrald; now the task fails with the reason. Run in a child as an unprivileged user
// with RLIMIT_NPROC 0 (root is exempt from that limit), so no thread can be made.
TEST(TaskManagerOutOfThreads, TheTaskFailsAndTheDaemonGoesOn) {
    if (::geteuid() != 0)
        GTEST_SKIP() << "needs root to become an unprivileged user for RLIMIT_NPROC";
    char pattern[] = "/tmp/corral-tasks-nproc-XXXXXX";
    const std::string dir = ::mkdtemp(pattern);
    ASSERT_EQ(::chown(dir.c_str(), 65534, 65534), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        rlimit none{0, 0};
        if (::setgid(65534) != 0 || ::setuid(65534) != 0 || ::setrlimit(RLIMIT_NPROC, &none) != 0)
            ::_exit(10);
        auto inventory = inventory::SqliteInventory::open(dir + "/corral.db");
        if (!inventory)
            ::_exit(11);
        EventBus events;
        TaskManager tasks(**inventory, events);
        auto task = tasks.start("vm.start", "web1",
                                [](TaskProgress&) -> Result<std::string> { return "ran"; });
        if (!task)
            ::_exit(12);
        if (task->status != inventory::k_task_failed)
            ::_exit(13);
        if (task->error.find("cannot start a worker thread") == std::string::npos)
            ::_exit(14);
        ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    std::filesystem::remove_all(dir);
    ASSERT_TRUE(WIFEXITED(status))
        << "the child ended by signal " << WTERMSIG(status) << " (aborted?)";
    EXPECT_EQ(WEXITSTATUS(status), 0)
        << "10: setup, 11: inventory, 12: start failed, 13: not failed, 14: reason";
}

}  // namespace
}  // namespace corral::daemon
