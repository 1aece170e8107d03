#include "daemon/vnc_relay.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "base/log.h"
#include "daemon/rfb_client_filter.h"

namespace corral::daemon {

struct VncRelay::State : std::enable_shared_from_this<VncRelay::State> {
    State(UniqueFd server_fd, std::weak_ptr<WebSocketConnection> peer, bool view_only)
        : server(std::move(server_fd)), viewer(std::move(peer)), filter(view_only) {}

    UniqueFd server;
    UniqueFd wake;  // an eventfd: stop, viewer bytes to send, the viewer's queue drained
    std::weak_ptr<WebSocketConnection> viewer;
    std::atomic<bool> stopping = false;
    std::atomic<bool> viewer_busy = false;  // waiting for the viewer's queue to drain

    std::mutex mutex;  // guards the two below (the WebSocket's thread and the relay's)
    RfbClientFilter filter;
    std::string to_server;

    void signal() const {
        const uint64_t one = 1;
        // A full eventfd counter still wakes the relay: nothing to handle on EAGAIN.
        [[maybe_unused]] auto written = ::write(wake.get(), &one, sizeof one);
    }
    void stop() {
        stopping = true;
        signal();
    }
    void close_viewer() const {
        if (auto peer = viewer.lock()) peer->close();
    }
    void run();
};

void VncRelay::State::run() {
    char buffer[64 * 1024];
    std::string pending_out;  // taken from to_server, not yet written
    while (!stopping) {
        if (pending_out.empty()) {
            // Taken only when the last batch is written: at most k_server_backlog waits each side.
            std::lock_guard lock(mutex);
            pending_out.swap(to_server);
        }
        pollfd fds[2] = {{wake.get(), POLLIN, 0}, {server.get(), 0, 0}};
        if (!viewer_busy) fds[1].events |= POLLIN;
        if (!pending_out.empty()) fds[1].events |= POLLOUT;
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            log_warning("VNC relay: poll: {}", std::strerror(errno));
            break;
        }
        if (fds[0].revents & POLLIN) {
            uint64_t count = 0;
            [[maybe_unused]] auto read = ::read(wake.get(), &count, sizeof count);
        }
        if (fds[1].revents & POLLOUT) {
            const ssize_t n = ::send(server.get(), pending_out.data(), pending_out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && errno != EAGAIN && errno != EINTR) break;
            if (n > 0) pending_out.erase(0, static_cast<size_t>(n));
        }
        if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            const ssize_t n = ::recv(server.get(), buffer, sizeof buffer, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) break;  // the VM's RFB server ended
            if (n > 0) {
                auto peer = viewer.lock();
                if (!peer) break;
                // Wait for the viewer before reading more once its queue is above the window.
                viewer_busy = true;
                peer->send_binary(std::string(buffer, static_cast<size_t>(n)));
                peer->when_queue_below(k_viewer_window, [self = weak_from_this()] {
                    if (auto state = self.lock()) {
                        state->viewer_busy = false;
                        state->signal();
                    }
                });
            }
        }
    }
    close_viewer();
}

std::shared_ptr<VncRelay> VncRelay::start(UniqueFd server, std::weak_ptr<WebSocketConnection> viewer,
                                          bool view_only) {
    auto state = std::make_shared<State>(std::move(server), std::move(viewer), view_only);
    state->wake = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!state->wake.valid()) {
        log_warning("VNC relay: eventfd: {}", std::strerror(errno));
        state->close_viewer();
        return std::shared_ptr<VncRelay>(new VncRelay(state));
    }
    // Detached: the thread holds the state; it ends when stopped or when either side ends.
    std::thread([state] { state->run(); }).detach();
    return std::shared_ptr<VncRelay>(new VncRelay(state));
}

VncRelay::~VncRelay() { m_state->stop(); }

void VncRelay::from_viewer(std::string_view data) {
    std::lock_guard lock(m_state->mutex);
    auto passed = m_state->filter.feed(data);
    if (!passed) {
        log_info("VNC relay: closing a viewer: {}", passed.error().message());
        m_state->close_viewer();
        m_state->stop();
        return;
    }
    if (passed->empty()) return;
    if (m_state->to_server.size() + passed->size() > k_server_backlog) {
        log_info("VNC relay: closing a viewer: more than {} KiB of its input wait for the VM", k_server_backlog / 1024);
        m_state->close_viewer();
        m_state->stop();
        return;
    }
    m_state->to_server.append(*passed);
    m_state->signal();
}

}  // namespace corral::daemon
