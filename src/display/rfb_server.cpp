#include "display/rfb_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <list>
#include <mutex>
#include <thread>

#include "base/event_fd.h"
#include "base/log.h"
#include "base/unix_socket.h"
#include "display/rfb_viewer.h"

namespace corral::display {

namespace {

// More viewers than this are turned away: each costs buffers and zlib streams.
constexpr std::size_t k_max_viewers = 32;

struct Listener {
    UniqueFd fd;
    std::string path;
    ViewerAccess access;
};

}  // namespace

class RfbServer::Impl {
public:
    Impl(std::shared_ptr<Framebuffer> framebuffer, InputSink* input, std::string name, EventFd stop,
         std::shared_ptr<EventFd> changed, EventFd added)
        : m_framebuffer(std::move(framebuffer)), m_input(input), m_name(std::move(name)), m_stop(std::move(stop)),
          m_changed(std::move(changed)), m_added(std::move(added)) {}

    ~Impl() {
        m_stop.signal();
        if (m_thread.joinable()) m_thread.join();
        for (const Listener& listener : m_listeners) {
            std::error_code ignored;
            std::filesystem::remove(listener.path, ignored);
        }
    }

    void run();
    void accept_from(const Listener& listener);
    void add(UniqueFd fd, ViewerAccess access);

    std::shared_ptr<Framebuffer> m_framebuffer;
    InputSink* m_input;
    std::string m_name;
    EventFd m_stop;
    std::shared_ptr<EventFd> m_changed;
    EventFd m_added;
    std::vector<Listener> m_listeners;
    std::list<std::unique_ptr<rfb::Viewer>> m_viewers;  // the server thread's only
    std::atomic<std::size_t> m_viewer_count{0};
    std::mutex m_queue_mutex;
    std::vector<std::pair<UniqueFd, ViewerAccess>> m_queue;  // add_client's, under m_queue_mutex
    std::thread m_thread;
};

void RfbServer::Impl::add(UniqueFd fd, ViewerAccess access) {
    if (m_viewers.size() >= k_max_viewers) {
        log_warning("vnc: a viewer was turned away ({} are connected, the most allowed)", k_max_viewers);
        return;
    }
    // Non-blocking: a viewer that does not read must never block this thread.
    const int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) < 0) {
        log_warning("vnc: a viewer's socket could not be made non-blocking");
        return;
    }
    m_viewers.push_back(std::make_unique<rfb::Viewer>(std::move(fd), access, *m_framebuffer, m_input, m_name));
    m_viewers.back()->on_writable();  // the server speaks first (its version)
    m_viewer_count = m_viewers.size();
}

void RfbServer::Impl::accept_from(const Listener& listener) {
    while (true) {
        const int fd = ::accept4(listener.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) continue;
            return;  // EAGAIN, or a connection that went away before it was accepted
        }
        add(UniqueFd(fd), listener.access);
    }
}

void RfbServer::Impl::run() {
    std::vector<pollfd> fds;
    std::vector<rfb::Viewer*> polled;
    while (true) {
        fds.clear();
        polled.clear();
        fds.push_back({m_stop.fd(), POLLIN, 0});
        fds.push_back({m_changed->fd(), POLLIN, 0});
        fds.push_back({m_added.fd(), POLLIN, 0});
        for (const Listener& listener : m_listeners) fds.push_back({listener.fd.get(), POLLIN, 0});
        const std::size_t first_viewer = fds.size();
        for (const auto& viewer : m_viewers) {
            fds.push_back({viewer->fd(), viewer->poll_events(), 0});
            polled.push_back(viewer.get());
        }
        // The timeout only paces the stall checks.
        const int ready = ::poll(fds.data(), fds.size(), 1000);
        if (ready < 0 && errno != EINTR) {
            log_error("vnc: poll failed: {}", std::strerror(errno));
            return;
        }
        if (fds[0].revents & POLLIN) return;
        if (fds[2].revents & POLLIN) {
            m_added.consume();
            std::vector<std::pair<UniqueFd, ViewerAccess>> queue;
            {
                std::lock_guard lock(m_queue_mutex);
                queue.swap(m_queue);
            }
            for (auto& [fd, access] : queue) add(std::move(fd), access);
        }
        for (std::size_t i = 0; i < m_listeners.size(); ++i) {
            if (fds[3 + i].revents & POLLIN) accept_from(m_listeners[i]);
        }
        for (std::size_t i = 0; i < polled.size(); ++i) {
            const short revents = fds[first_viewer + i].revents;
            rfb::Viewer& viewer = *polled[i];
            if (revents & POLLOUT) viewer.on_writable();
            if (revents & (POLLIN | POLLHUP | POLLERR)) viewer.on_readable();
        }
        if (fds[1].revents & POLLIN) {
            m_changed->consume();
            for (const auto& viewer : m_viewers) viewer->on_frame_changed();
        }
        const auto now = rfb::Viewer::Clock::now();
        for (auto it = m_viewers.begin(); it != m_viewers.end();) {
            (*it)->check_timeouts(now);
            if ((*it)->closed()) {
                log_info("vnc: a viewer disconnected: {}", (*it)->close_reason());
                it = m_viewers.erase(it);
            } else {
                ++it;
            }
        }
        m_viewer_count = m_viewers.size();
    }
}

Result<std::unique_ptr<RfbServer>> RfbServer::start(std::shared_ptr<Framebuffer> framebuffer, InputSink* input,
                                                    Options options) {
    if (!framebuffer) return fail(ErrorKind::Invalid, "the VNC server needs a framebuffer");
    EventFd stop = TRY(EventFd::create(EFD_NONBLOCK));
    auto changed = std::make_shared<EventFd>(TRY(EventFd::create(EFD_NONBLOCK)));
    EventFd added = TRY(EventFd::create(EFD_NONBLOCK));
    auto impl = std::make_unique<Impl>(framebuffer, input, options.name, std::move(stop), changed, std::move(added));
    const std::pair<std::string, ViewerAccess> sockets[] = {{options.socket_path, ViewerAccess::Full},
                                                            {options.view_only_socket_path, ViewerAccess::ViewOnly}};
    for (const auto& [path, access] : sockets) {
        if (path.empty()) continue;
        UniqueFd fd = TRY_CONTEXT(
            listen_unix_socket(path, {.backlog = 16, .permissions = 0600, .mode = SocketMode::NonBlocking}),
            "VNC socket " + path);
        impl->m_listeners.push_back({std::move(fd), path, access});
    }
    // The listener holds the eventfd itself: a writer that signals after the server is gone
    // signals an eventfd nobody reads, never a destroyed one.
    framebuffer->set_change_listener([changed] { changed->signal(); });
    Impl* raw = impl.get();
    raw->m_thread = std::thread([raw] { raw->run(); });
    return std::unique_ptr<RfbServer>(new RfbServer(std::move(impl)));
}

RfbServer::RfbServer(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}

RfbServer::~RfbServer() = default;

void RfbServer::add_client(UniqueFd fd, ViewerAccess access) {
    {
        std::lock_guard lock(m_impl->m_queue_mutex);
        m_impl->m_queue.emplace_back(std::move(fd), access);
    }
    m_impl->m_added.signal();
}

std::size_t RfbServer::viewer_count() const { return m_impl->m_viewer_count; }

}  // namespace corral::display
