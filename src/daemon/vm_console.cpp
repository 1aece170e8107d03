#include "daemon/vm_console.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <vector>

#include "base/log.h"
#include "base/unique_fd.h"

namespace corral::daemon {
namespace {

/// Connects to a unix stream socket; -1 when nobody listens there (yet).
int connect_unix(const std::filesystem::path& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.native().size() >= sizeof(address.sun_path)) return -1;
    std::copy(path.native().begin(), path.native().end(), address.sun_path);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace

VmConsole::~VmConsole() { detach(); }

void VmConsole::attach(std::filesystem::path socket, std::string seed) {
    detach();
    if (!seed.empty()) append_output(seed);
    auto stop = EventFd::create(EFD_NONBLOCK | EFD_CLOEXEC);
    if (!stop) {
        log_error("console: {}", stop.error().describe());
        return;
    }
    m_stop = std::make_unique<EventFd>(std::move(*stop));
    m_thread = std::thread([this, socket = std::move(socket)] { relay(socket); });
}

void VmConsole::detach() {
    if (!m_thread.joinable()) return;
    m_stop->signal();
    m_thread.join();
    m_stop.reset();
}

void VmConsole::note(const std::string& line) { append_output("\r\n[corrald] " + line + "\r\n"); }

void VmConsole::relay(std::filesystem::path path) {
    // Connects, relays until end-of-file, and connects again: corral-vmm drops its console client
    // when it restarts a rebooting guest in place, and the VM is still there. Only detach() (the
    // VM ended) stops the loop. The engine creates its socket a moment after it starts.
    bool warned = false;
    std::vector<char> buffer(16384);
    while (true) {
        UniqueFd fd(connect_unix(path));
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
            m_socket = fd.get();
        }
        bool stopping = false;
        while (true) {
            pollfd fds[2] = {{fd.get(), POLLIN, 0}, {m_stop->fd(), POLLIN, 0}};
            if (::poll(fds, 2, -1) < 0) {
                if (errno == EINTR) continue;
                break;
            }
            if (fds[1].revents) {
                stopping = true;
                break;
            }
            ssize_t got = ::read(fd.get(), buffer.data(), buffer.size());
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) break;  // the engine closed the console
            append_output(std::string_view(buffer.data(), static_cast<size_t>(got)));
        }
        {
            std::lock_guard lock(m_mutex);
            m_socket = -1;
        }
        if (stopping) return;
    }
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

bool VmConsole::write_input(uint64_t id, std::string_view bytes) {
    std::lock_guard lock(m_mutex);
    if (m_socket < 0 || !m_readers.contains(id)) return false;
    if (m_writer == 0) m_writer = id;
    if (m_writer != id) return false;
    // Keystrokes are small; a blocking write under the lock keeps them in order.
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t wrote = ::send(m_socket, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
        if (wrote < 0 && errno == EINTR) continue;
        if (wrote <= 0) return false;
        done += static_cast<size_t>(wrote);
    }
    return true;
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
