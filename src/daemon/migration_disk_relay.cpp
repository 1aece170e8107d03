#include "daemon/migration_disk_relay.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include <fmt/format.h>

#include "base/log.h"
#include "base/unix_socket.h"

namespace corral::daemon {

using namespace std::chrono_literals;

namespace {

/// How long QEMU has to connect once the relay is up (it does as the migration starts).
constexpr int k_connect_wait_ms = 30000;
constexpr size_t k_chunk = 256 * 1024;
/// Bytes queued for the TLS connection before the relay stops reading QEMU (its pace is the copy's).
constexpr size_t k_window = 8 * 1024 * 1024;

}  // namespace

DiskRelay::DiskRelay(UniqueFd listener, std::unique_ptr<cli::WebSocketSession> session, std::string what)
    : m_what(std::move(what)), m_listener(std::move(listener)), m_session(std::move(session)) {
    m_session_thread = std::thread([this] {
        auto ran = m_session->run([this](std::string_view data, bool) { from_destination(data); });
        if (!ran && !m_stopping)
            set_error(ran.error().message);
        else if (!m_stopping)
            set_error("the destination closed the disk stream");
        // QEMU's NBD client sees the end: its mirror fails and the VM runs on here.
        cut();
    });
    m_reader = std::thread([this] { pump(); });
}

DiskRelay::~DiskRelay() {
    m_stopping = true;
    cut();
    m_session->abort();
    if (m_reader.joinable())
        m_reader.join();
    if (m_session_thread.joinable())
        m_session_thread.join();
}

std::string DiskRelay::error() {
    std::lock_guard lock(m_mutex);
    return m_error;
}

void DiskRelay::set_error(const std::string& why) {
    std::lock_guard lock(m_mutex);
    if (m_error.empty())
        m_error = why;
}

void DiskRelay::cut() {
    int fd = m_stream_fd.load();
    if (fd >= 0)
        ::shutdown(fd, SHUT_RDWR);
    ::shutdown(m_listener.get(), SHUT_RDWR);
}

void DiskRelay::from_destination(std::string_view data) {
    std::lock_guard lock(m_mutex);
    if (!m_stream.valid()) {
        m_early.append(data);
        return;
    }
    if (!send_all(m_stream.get(), data))
        ::shutdown(m_stream.get(), SHUT_RDWR);
}

void DiskRelay::pump() {
    pollfd waiting{m_listener.get(), POLLIN, 0};
    int ready = ::poll(&waiting, 1, k_connect_wait_ms);
    if (ready <= 0 || m_stopping) {
        if (ready == 0)
            set_error(fmt::format("QEMU did not connect its disk copy within {} s", k_connect_wait_ms / 1000));
        m_session->close();
        return;
    }
    UniqueFd stream(::accept4(m_listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!stream.valid()) {
        m_session->close();
        return;
    }
    const int fd = stream.get();
    {
        std::lock_guard lock(m_mutex);
        m_stream = std::move(stream);
        m_stream_fd = fd;
        if (!m_early.empty() && !send_all(fd, m_early))
            ::shutdown(fd, SHUT_RDWR);
        m_early.clear();
    }
    if (m_stopping)
        ::shutdown(fd, SHUT_RDWR);
    std::string buffer(k_chunk, '\0');
    for (;;) {
        ssize_t got = ::read(fd, buffer.data(), buffer.size());
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        while (m_session->queued_bytes() > k_window && !m_stopping)
            std::this_thread::sleep_for(1ms);
        if (m_stopping)
            break;
        m_session->send(std::string(buffer.data(), static_cast<size_t>(got)));
    }
    log_info("{}: disk stream ended", m_what);
    m_session->close();
}

namespace {

struct InboundDisk : std::enable_shared_from_this<InboundDisk> {
    UniqueFd nbd;
    std::weak_ptr<WebSocketConnection> peer;
    std::string what;
    std::atomic<bool> broken{false};
};

}  // namespace

WebSocketHandlers relay_disk_stream(UniqueFd nbd, std::weak_ptr<WebSocketConnection> peer, std::string what) {
    auto state = std::make_shared<InboundDisk>();
    state->nbd = std::move(nbd);
    state->peer = std::move(peer);
    state->what = std::move(what);
    // Detached: it holds the state and ends when the NBD connection does (on_close shuts it down).
    std::thread([state] {
        std::string buffer(64 * 1024, '\0');
        for (;;) {
            ssize_t got = ::read(state->nbd.get(), buffer.data(), buffer.size());
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                break;
            auto connection = state->peer.lock();
            if (!connection)
                break;
            connection->send_binary(std::string(buffer.data(), static_cast<size_t>(got)));
        }
        log_info("{}: disk stream ended", state->what);
        if (auto connection = state->peer.lock())
            connection->close();
    }).detach();
    WebSocketHandlers handlers;
    handlers.on_message = [state](std::string_view data, bool) {
        if (state->broken)
            return;
        if (!send_all(state->nbd.get(), data)) {
            state->broken = true;
            ::shutdown(state->nbd.get(), SHUT_RDWR);
        }
    };
    handlers.on_close = [state] { ::shutdown(state->nbd.get(), SHUT_RDWR); };
    return handlers;
}

}  // namespace corral::daemon
