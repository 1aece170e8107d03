#include "vmm/console/socket_console.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "base/unix_socket.h"

namespace corral::vmm {

Result<std::unique_ptr<SocketConsole>> SocketConsole::listen(const std::string& path, std::string_view what) {
    if (path.empty() || path.size() > k_unix_path_max)
        return fail(std::string(what) + " socket=PATH: the path must be 1 to " + std::to_string(k_unix_path_max) +
                    " bytes long");
    auto listening = listen_unix_socket(path, {.backlog = 4, .permissions = std::nullopt, .mode = SocketMode::NonBlocking});
    if (!listening) return fail(listening.error().with_context(std::string(what) + " socket=" + path));
    UniqueFd listener = std::move(*listening);
    return std::unique_ptr<SocketConsole>(new SocketConsole(std::move(listener), path));
}

SocketConsole::~SocketConsole() { ::unlink(m_path.c_str()); }

int SocketConsole::client_fd() const {
    std::lock_guard lock(m_mutex);
    return m_client.get();
}

void SocketConsole::accept_client() {
    int fd = ::accept4(m_listen.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    std::lock_guard lock(m_mutex);
    m_client.reset(fd);
    std::vector<uint8_t> replay(m_scrollback.begin(), m_scrollback.end());
    send_locked(replay);
}

size_t SocketConsole::read_input(std::span<uint8_t> buffer) {
    std::lock_guard lock(m_mutex);
    if (!m_client.valid()) return 0;
    ssize_t n = ::recv(m_client.get(), buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (n > 0) return static_cast<size_t>(n);
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) m_client.reset();  // client went away
    return 0;
}

size_t SocketConsole::read_input_keep(std::span<uint8_t> buffer, bool& client_gone) {
    std::lock_guard lock(m_mutex);
    client_gone = false;
    if (!m_client.valid()) return 0;
    ssize_t n = ::recv(m_client.get(), buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (n > 0) return static_cast<size_t>(n);
    client_gone = n == 0 || (errno != EAGAIN && errno != EINTR);
    return 0;
}

void SocketConsole::drop_client(int fd) {
    std::lock_guard lock(m_mutex);
    if (m_client.get() == fd) m_client.reset();
}

void SocketConsole::write_output(std::span<const uint8_t> bytes) {
    std::lock_guard lock(m_mutex);
    m_scrollback.insert(m_scrollback.end(), bytes.begin(), bytes.end());
    if (m_scrollback.size() > k_scrollback_bytes)
        m_scrollback.erase(m_scrollback.begin(),
                           m_scrollback.begin() + static_cast<long>(m_scrollback.size() - k_scrollback_bytes));
    send_locked(bytes);
}

uint64_t SocketConsole::dropped_bytes() const {
    std::lock_guard lock(m_mutex);
    return m_dropped;
}

void SocketConsole::send_locked(std::span<const uint8_t> bytes) {
    while (m_client.valid() && !bytes.empty()) {
        ssize_t n = ::send(m_client.get(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            bytes = bytes.subspan(static_cast<size_t>(n));
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            m_dropped += bytes.size();  // a slow reader loses output; the guest never waits
            return;
        } else {
            m_client.reset();
        }
    }
}

}  // namespace corral::vmm
