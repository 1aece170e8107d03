#include "daemon/vm_supervisor.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>

#include <gtest/gtest.h>

#include "base/event_fd.h"

namespace corral::daemon {
namespace {

using namespace std::chrono_literals;

TEST(RestartBudgetTest, PoliciesDecideWhetherAnEndRestarts) {
    RestartBudget budget;
    EXPECT_FALSE(budget.should_restart("a", "no", true));
    EXPECT_FALSE(budget.should_restart("a", "on-failure", false));
    EXPECT_TRUE(budget.should_restart("a", "on-failure", true));
    EXPECT_TRUE(budget.should_restart("a", "always", false));
    EXPECT_FALSE(budget.should_restart("a", "sometimes", true));
}

TEST(RestartBudgetTest, AtMostTheLimitWithinTheWindowPerVm) {
    RestartBudget budget;
    auto t0 = RestartBudget::Clock::time_point{} + 1h;
    for (int i = 0; i < RestartBudget::k_limit; ++i) EXPECT_TRUE(budget.should_restart("a", "always", true, t0 + 1s * i));
    EXPECT_FALSE(budget.should_restart("a", "always", true, t0 + 10s));
    EXPECT_TRUE(budget.should_restart("b", "always", true, t0 + 10s)) << "each VM has its own budget";
    // Once the first restart is older than the window, one more is allowed.
    EXPECT_TRUE(budget.should_restart("a", "always", true, t0 + RestartBudget::k_window + 1s));
    EXPECT_FALSE(budget.should_restart("a", "always", true, t0 + RestartBudget::k_window + 1s));
    budget.forget("a");
    EXPECT_TRUE(budget.should_restart("a", "always", true, t0 + RestartBudget::k_window + 2s));
}

/// Counts calls and lets a test wait for them.
struct Calls {
    std::mutex mutex;
    std::condition_variable changed;
    int count = 0;
    void add() {
        std::lock_guard lock(mutex);
        ++count;
        changed.notify_all();
    }
    bool wait_for(int wanted) {
        std::unique_lock lock(mutex);
        return changed.wait_for(lock, 20s, [&] { return count >= wanted; });
    }
};

TEST(ExitWatcherTest, CallsEachHandlerOnceEvenWhenOneThrows) {
    auto watcher = ExitWatcher::start();
    ASSERT_TRUE(watcher) << watcher.error().describe();
    auto first = EventFd::create();
    auto second = EventFd::create();
    ASSERT_TRUE(first && second);
    Calls calls;
    ASSERT_TRUE((*watcher)->watch("a", first->fd(), [&] {
        calls.add();
        throw std::runtime_error("handler failed");
    }));
    ASSERT_TRUE((*watcher)->watch("b", second->fd(), [&] { calls.add(); }));
    // Like a pidfd, the fds stay readable: a handler must still run only once.
    first->signal();
    ASSERT_TRUE(calls.wait_for(1));
    second->signal();
    ASSERT_TRUE(calls.wait_for(2)) << "the watcher stopped serving after a handler threw";
    (*watcher)->stop();
    EXPECT_EQ(calls.count, 2);
}

}  // namespace
}  // namespace corral::daemon
