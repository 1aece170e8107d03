#include "vmm/console/socket_console_input.h"

#include "base/log.h"

namespace corral::vmm {

Result<void> SocketConsoleInput::watch(EventLoop& loop, std::function<void()> ready) {
    unwatch();
    m_loop = &loop;
    m_ready = std::move(ready);
    m_paused = false;
    auto added = loop.add(m_socket->listen_fd(), [this] { on_connection(); });
    if (!added) {
        m_loop = nullptr;
        return added;
    }
    loop.run_sync([this] { watch_client(); });
    return {};
}

void SocketConsoleInput::unwatch() {
    if (!m_loop) return;
    // remove() waits for the loop: afterwards no callback of ours runs.
    m_loop->remove(m_socket->listen_fd());
    m_loop->run_sync([this] { unwatch_client(); });
    m_loop = nullptr;
}

void SocketConsoleInput::set_paused(bool paused) {
    if (paused == m_paused) return;
    m_paused = paused;
    if (paused) unwatch_client();
    else watch_client();
}

void SocketConsoleInput::on_connection() {
    // Stop watching the old client before accept_client() closes it and its number is reused.
    unwatch_client();
    m_socket->accept_client();
    watch_client();
}

void SocketConsoleInput::watch_client() {
    int fd = m_socket->client_fd();
    if (!m_loop || m_paused || fd < 0 || fd == m_watched_client) return;
    unwatch_client();
    if (auto added = m_loop->add(fd, [this] { m_ready(); }); !added) {
        log_warning("virtio-console: cannot watch the socket client: {}", added.error().describe());
        return;
    }
    m_watched_client = fd;
}

void SocketConsoleInput::unwatch_client() {
    if (m_watched_client < 0) return;
    m_loop->remove(m_watched_client);
    m_watched_client = -1;
}

size_t SocketConsoleInput::read(std::span<uint8_t> buffer) {
    bool gone = false;
    int fd = m_socket->client_fd();
    size_t n = m_socket->read_input_keep(buffer, gone);
    if (gone) {
        unwatch_client();
        m_socket->drop_client(fd);
    }
    return n;
}

}  // namespace corral::vmm
