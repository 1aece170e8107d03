#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/event_fd.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace corral {

/// An epoll loop on its own thread: callbacks run when their fd becomes readable
/// (level-triggered), one at a time, on that thread. Used by device workers so that guest
/// notifications (ioeventfds) are served off the vCPU threads.
///
/// Thread safety: add(), remove() and run_sync() may be called from any thread. remove() and
/// run_sync() from another thread wait until the loop has run them, so after remove() returns
/// the callback is neither running nor will it run again. The destructor stops and joins the
/// thread (CONVENTIONS: a thread object's destructor signals its stop eventfd and joins).
class EventLoop {
public:
    using Callback = std::function<void()>;

    /// Creates the loop and starts its thread, named `name` (at most 15 characters are kept).
    static Result<std::unique_ptr<EventLoop>> start(std::string name);
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    /// Calls `on_readable` on the loop thread whenever `fd` is readable. The callback must make
    /// the fd unreadable (consume an eventfd) or it runs again at once. One callback per fd.
    Result<void> add(int fd, Callback on_readable);
    /// Stops watching `fd`; see the class comment for the guarantee. Unknown fds are ignored.
    void remove(int fd);
    /// Runs `task` on the loop thread and waits for it (runs it inline when called on the loop
    /// thread or after stop()).
    void run_sync(const Callback& task);
    /// Stops and joins the thread; pending callbacks are dropped. Idempotent.
    void stop();
    /// True on the loop's own thread.
    bool on_loop_thread() const { return std::this_thread::get_id() == m_thread.get_id(); }

private:
    EventLoop(UniqueFd epoll, EventFd wake) : m_epoll(std::move(epoll)), m_wake(std::move(wake)) {}
    void thread_main();
    void run_posted_tasks();

    struct Handler {
        int fd;
        Callback callback;
    };

    UniqueFd m_epoll;
    EventFd m_wake;  // wakes the loop for posted tasks and for stop
    std::thread m_thread;
    std::atomic<bool> m_stopping{false};

    // Touched only on the loop thread (or by stop() after the join).
    std::map<uint64_t, std::shared_ptr<Handler>> m_handlers;  // by id (epoll data)
    std::map<int, uint64_t> m_ids_by_fd;
    uint64_t m_next_id = 1;  // 0 is the wake eventfd

    std::mutex m_mutex;  // guards m_tasks
    std::condition_variable m_done;
    struct Task {
        const Callback* task;
        bool* done;
    };
    std::deque<Task> m_tasks;
};

}  // namespace corral
