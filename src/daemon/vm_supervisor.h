#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "base/event_loop.h"
#include "base/result.h"

namespace corral::daemon {

/// Notices at once that a VM process ended: one thread (an EventLoop) watches every VM's exit fd
/// (the shim's pidfd) and calls that VM's handler once, on that thread. Stopping the watcher
/// stops noticing, never the VMs.
class ExitWatcher {
public:
    static Result<std::unique_ptr<ExitWatcher>> start();
    ~ExitWatcher();

    /// Calls `on_exit` once when `fd` becomes readable. The fd must stay open until then. A
    /// handler that throws is logged under `name`; the watcher keeps serving the other VMs.
    Result<void> watch(const std::string& name, int fd, std::function<void()> on_exit);
    /// Stops the thread; handlers not yet called are dropped. Idempotent.
    void stop();

private:
    explicit ExitWatcher(std::unique_ptr<EventLoop> loop) : m_loop(std::move(loop)) {}
    std::unique_ptr<EventLoop> m_loop;
};

/// A VM's restart policy with a budget, so a VM that crashes at boot does not loop forever:
/// "always" restarts after any end, "on-failure" after a crash, "no" never; at most k_limit
/// restarts within k_window, after which it gives up. Thread-safe.
class RestartBudget {
public:
    static constexpr int k_limit = 5;
    static constexpr std::chrono::minutes k_window{5};
    using Clock = std::chrono::steady_clock;

    /// Whether VM `name`, which just ended, restarts now; counts the restart when it does.
    bool should_restart(const std::string& name, const std::string& policy, bool crashed,
                        Clock::time_point now = Clock::now());
    /// Forgets the restarts of a deleted VM (a new VM of that name starts with a full budget).
    void forget(const std::string& name);

private:
    std::mutex m_mutex;
    std::map<std::string, std::deque<Clock::time_point>> m_restarts;
};

}  // namespace corral::daemon
