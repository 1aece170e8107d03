#include "daemon/vm_console.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "base/log.h"
#include "base/unique_fd.h"
#include "base/unix_socket.h"
#include "engine/console_log.h"

namespace corral::daemon {

VmConsole::~VmConsole() { detach(); }

void VmConsole::attach(std::filesystem::path socket, std::string seed, std::filesystem::path log) {
    detach();
    if (!seed.empty()) append_output(seed);
    auto stop = EventFd::create(EFD_NONBLOCK | EFD_CLOEXEC);
    auto input_ready = EventFd::create(EFD_NONBLOCK | EFD_CLOEXEC);
    if (!stop || !input_ready) {
        log_error("console: {}", (stop ? input_ready.error() : stop.error()).describe());
        return;
    }
    m_stop = std::make_unique<EventFd>(std::move(*stop));
    {
        std::lock_guard lock(m_mutex);
        m_input_ready = std::make_unique<EventFd>(std::move(*input_ready));
    }
    m_thread = std::thread([this, socket = std::move(socket), log = std::move(log)] { relay(socket, log); });
}

void VmConsole::detach() {
    if (!m_thread.joinable()) return;
    m_stop->signal();
    m_thread.join();
    m_stop.reset();
}

void VmConsole::note(const std::string& line) { append_output("\r\n[corrald] " + line + "\r\n"); }

void VmConsole::relay(std::filesystem::path path, std::filesystem::path log) {
    // Connects, relays until end-of-file, and connects again: corral-vmm drops its console client
    // when it restarts a rebooting guest in place, and the VM is still there. Only detach() (the
    // VM ended) stops the loop. The engine creates its socket a moment after it starts.
    bool warned = false;
    std::vector<char> buffer(16384);
    // The engine's log grows with every byte we read here; checking it every so often bounds it.
    constexpr size_t k_log_check_bytes = 64 * 1024;
    size_t unchecked = k_log_check_bytes;  // check once at once: it may have grown while we were away
    auto bound_log = [&] {
        if (log.empty() || unchecked < k_log_check_bytes) return;
        unchecked = 0;
        if (auto rotated = engine::rotate_console_log(log); !rotated)
            log_warning("console: {}", rotated.error().describe());
    };
    while (true) {
        bound_log();
        auto connected = connect_unix_socket(path);
        UniqueFd fd = connected ? std::move(*connected) : UniqueFd();
        if (!fd.valid()) {
            if (!warned && !std::filesystem::exists(path)) {
                log_debug("console: waiting for {}", path.native());
                warned = true;
            }
            pollfd stop{m_stop->fd(), POLLIN, 0};
            if (::poll(&stop, 1, 200) > 0) return;
            continue;
        }
        {
            std::lock_guard lock(m_mutex);
            m_connected = true;
        }
        bool stopping = false;
        while (true) {
            bool pending = false;
            {
                std::lock_guard lock(m_mutex);
                pending = !m_input.empty();
            }
            // POLLOUT only while input waits: a guest that does not read (paused) leaves it queued.
            pollfd fds[3] = {{fd.get(), static_cast<short>(POLLIN | (pending ? POLLOUT : 0)), 0},
                             {m_stop->fd(), POLLIN, 0},
                             {m_input_ready->fd(), POLLIN, 0}};
            if (::poll(fds, 3, -1) < 0) {
                if (errno == EINTR) continue;
                break;
            }
            if (fds[1].revents) {
                // The VM ended: what it wrote last (a guest's final lines before power-off) may
                // still wait in the socket. Keep it, without blocking: the engine is gone.
                drain(fd.get(), buffer);
                stopping = true;
                break;
            }
            if (fds[2].revents) (void)m_input_ready->consume();
            if ((fds[0].revents & POLLOUT) && !send_input(fd.get())) break;
            if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t got = ::read(fd.get(), buffer.data(), buffer.size());
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) break;  // the engine closed the console
            append_output(std::string_view(buffer.data(), static_cast<size_t>(got)));
            unchecked += static_cast<size_t>(got);
            bound_log();
        }
        {
            std::lock_guard lock(m_mutex);
            m_connected = false;
            m_input.clear();  // typed into a console that went away
        }
        if (stopping) return;
    }
}

void VmConsole::drain(int fd, std::vector<char>& buffer) {
    constexpr size_t k_drain_limit = 1024 * 1024;  // a guest flooding its console to the end
    for (size_t drained = 0; drained < k_drain_limit;) {
        ssize_t got = ::recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return;
        append_output(std::string_view(buffer.data(), static_cast<size_t>(got)));
        drained += static_cast<size_t>(got);
    }
}

bool VmConsole::send_input(int fd) {
    std::string chunk;
    {
        std::lock_guard lock(m_mutex);
        chunk = m_input.substr(0, 16384);
    }
    if (chunk.empty()) return true;
    // Only this thread sends, so the queue's front is still `chunk` when we erase it below.
    ssize_t sent = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    std::lock_guard lock(m_mutex);
    m_input.erase(0, static_cast<size_t>(sent));
    return true;
}

void VmConsole::append_output(std::string_view bytes) {
    std::vector<Reader> readers;
    {
        std::lock_guard lock(m_mutex);
        m_scrollback.insert(m_scrollback.end(), bytes.begin(), bytes.end());
        if (m_scrollback.size() > k_scrollback_bytes)
            m_scrollback.erase(m_scrollback.begin(),
                               m_scrollback.begin() + static_cast<long>(m_scrollback.size() - k_scrollback_bytes));
        for (const auto& [id, reader] : m_readers) readers.push_back(reader);
    }
    // Readers only queue (WebSocket sends), so calling them outside the lock is cheap and safe.
    for (const auto& reader : readers) reader(bytes);
}

uint64_t VmConsole::subscribe(Reader reader, std::string& scrollback) {
    std::lock_guard lock(m_mutex);
    scrollback.assign(m_scrollback.begin(), m_scrollback.end());
    uint64_t id = m_next_id++;
    m_readers.emplace(id, std::move(reader));
    return id;
}

void VmConsole::unsubscribe(uint64_t id) {
    std::lock_guard lock(m_mutex);
    m_readers.erase(id);
    if (m_writer == id) m_writer = 0;
}

VmConsole::Input VmConsole::write_input(uint64_t id, std::string_view bytes) {
    {
        std::lock_guard lock(m_mutex);
        if (!m_readers.contains(id)) return Input::Refused;
        if (!m_connected) return Input::Offline;
        if (m_writer == 0) m_writer = id;
        if (m_writer != id) return Input::Refused;
        if (m_input.size() + bytes.size() > k_input_queue_bytes) return Input::Full;
        m_input.append(bytes);
        m_input_ready->signal();  // a non-blocking eventfd write; under the lock so attach() cannot swap it
    }
    return Input::Queued;
}

std::string VmConsole::tail(size_t lines) const {
    std::lock_guard lock(m_mutex);
    size_t start = m_scrollback.size();
    size_t seen = 0;
    // Skip one trailing newline so "the last line" is the last printed one.
    if (start > 0 && m_scrollback[start - 1] == '\n') --start;
    while (start > 0) {
        if (m_scrollback[start - 1] == '\n' && ++seen == lines) break;
        --start;
    }
    return std::string(m_scrollback.begin() + static_cast<long>(start), m_scrollback.end());
}

}  // namespace corral::daemon
