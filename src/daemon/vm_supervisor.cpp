#include "daemon/vm_supervisor.h"

#include <exception>

#include "base/log.h"

namespace corral::daemon {

Result<std::unique_ptr<ExitWatcher>> ExitWatcher::start() {
    auto loop = TRY(EventLoop::start("supervisor"));
    return std::unique_ptr<ExitWatcher>(new ExitWatcher(std::move(loop)));
}

ExitWatcher::~ExitWatcher() { stop(); }

void ExitWatcher::stop() {
    if (m_loop) m_loop->stop();
}

Result<void> ExitWatcher::watch(const std::string& name, int fd, std::function<void()> on_exit) {
    return m_loop->add(fd, [this, name, fd, on_exit = std::move(on_exit)] {
        // remove() drops this very callback: keep what it needs first. Level-triggered, so
        // stop watching before handling (the pidfd stays readable).
        std::string vm_name = name;
        auto handler = on_exit;
        m_loop->remove(fd);
        // The loop serves every VM: one VM's failure must not end it (or corrald).
        try {
            handler();
        } catch (const std::exception& error) {
            log_error("VM {}: handling its exit failed: {}", vm_name, error.what());
        }
    });
}

bool RestartBudget::should_restart(const std::string& name, const std::string& policy, bool crashed,
                                   Clock::time_point now) {
    bool wanted = policy == "always" || (policy == "on-failure" && crashed);
    if (!wanted) return false;
    std::lock_guard lock(m_mutex);
    auto& times = m_restarts[name];
    while (!times.empty() && now - times.front() > k_window) times.pop_front();
    if (static_cast<int>(times.size()) >= k_limit) return false;
    times.push_back(now);
    return true;
}

void RestartBudget::forget(const std::string& name) {
    std::lock_guard lock(m_mutex);
    m_restarts.erase(name);
}

}  // namespace corral::daemon
