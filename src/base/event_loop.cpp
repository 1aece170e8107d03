#include "base/event_loop.h"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <algorithm>

#include <array>
#include <cerrno>
#include <system_error>

#include "base/log.h"

namespace corral {

Result<std::unique_ptr<EventLoop>> EventLoop::start(std::string name) {
    int epoll = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll < 0) return fail_errno("epoll_create1");
    UniqueFd epoll_fd(epoll);
    auto wake = TRY(EventFd::create(EFD_NONBLOCK));
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = 0;
    if (::epoll_ctl(epoll, EPOLL_CTL_ADD, wake.fd(), &event) < 0)
        return fail_errno("epoll_ctl(ADD wake eventfd)");
    std::unique_ptr<EventLoop> loop(new EventLoop(std::move(epoll_fd), std::move(wake)));
    EventLoop* raw = loop.get();
    try {
        loop->m_thread = std::thread([raw] { raw->thread_main(); });
    } catch (const std::system_error& error) {
        return fail(fmt::format("starting the {} thread: {}", name, error.what()), error.code().value());
    }
    name.resize(std::min<size_t>(name.size(), 15));
    pthread_setname_np(loop->m_thread.native_handle(), name.c_str());
    return loop;
}

EventLoop::~EventLoop() { stop(); }

void EventLoop::stop() {
    if (!m_thread.joinable()) return;
    m_stopping.store(true);
    m_wake.signal();
    m_thread.join();
    // Release anyone still waiting in run_sync(): their tasks will not run on the loop thread,
    // so run them here, where no callback can be running any more.
    std::unique_lock lock(m_mutex);
    while (!m_tasks.empty()) {
        Task task = m_tasks.front();
        m_tasks.pop_front();
        lock.unlock();
        (*task.task)();
        lock.lock();
        *task.done = true;
    }
    m_done.notify_all();
}

void EventLoop::run_sync(const Callback& task) {
    if (on_loop_thread() || !m_thread.joinable()) {
        task();
        return;
    }
    bool done = false;
    std::unique_lock lock(m_mutex);
    m_tasks.push_back({&task, &done});
    m_wake.signal();
    m_done.wait(lock, [&] { return done; });
}

Result<void> EventLoop::add(int fd, Callback on_readable) {
    Result<void> result;
    run_sync([&] {
        if (m_ids_by_fd.contains(fd)) {
            result = fail(fmt::format("event loop: fd {} is already watched", fd));
            return;
        }
        uint64_t id = m_next_id++;
        epoll_event event{};
        event.events = EPOLLIN;
        event.data.u64 = id;
        if (::epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, fd, &event) < 0) {
            result = fail_errno(fmt::format("epoll_ctl(ADD fd {})", fd));
            return;
        }
        m_handlers.emplace(id, std::make_shared<Handler>(Handler{fd, std::move(on_readable)}));
        m_ids_by_fd.emplace(fd, id);
    });
    return result;
}

void EventLoop::remove(int fd) {
    run_sync([&] {
        auto it = m_ids_by_fd.find(fd);
        if (it == m_ids_by_fd.end()) return;
        ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
        m_handlers.erase(it->second);
        m_ids_by_fd.erase(it);
    });
}

void EventLoop::run_posted_tasks() {
    m_wake.consume();
    std::unique_lock lock(m_mutex);
    while (!m_tasks.empty()) {
        Task task = m_tasks.front();
        m_tasks.pop_front();
        lock.unlock();
        (*task.task)();
        lock.lock();
        *task.done = true;
        m_done.notify_all();
    }
}

void EventLoop::thread_main() {
    std::array<epoll_event, 16> events;
    while (!m_stopping.load()) {
        int count = ::epoll_wait(m_epoll.get(), events.data(), static_cast<int>(events.size()), -1);
        if (count < 0) {
            if (errno == EINTR) continue;
            log_error("event loop: epoll_wait failed: {}", Error::from_errno("epoll_wait").describe());
            return;
        }
        for (int i = 0; i < count && !m_stopping.load(); ++i) {
            uint64_t id = events[static_cast<size_t>(i)].data.u64;
            if (id == 0) {
                run_posted_tasks();
                continue;
            }
            // Looked up again for every event: an earlier callback in this batch may have
            // removed this handler (the id is never reused, unlike the fd).
            auto it = m_handlers.find(id);
            if (it == m_handlers.end()) continue;
            std::shared_ptr<Handler> handler = it->second;
            handler->callback();
        }
    }
}

}  // namespace corral
