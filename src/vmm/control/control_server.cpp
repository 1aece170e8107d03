#include "vmm/control/control_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "base/log.h"
#include "base/unix_socket.h"

namespace corral::vmm {
namespace {

/// Sends all of `bytes` without blocking; false when the client cannot take them now (it does
/// not read its answers) or went away.
bool send_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            bytes.remove_prefix(static_cast<size_t>(n));
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return false;
        }
    }
    return true;
}

}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::listen(const std::string& path) {
    if (path.empty() || path.size() > k_unix_path_max)
        return fail(fmt::format("--control: the path must be 1 to {} bytes long", k_unix_path_max));
    auto listening = listen_unix_socket(path, {.backlog = 8, .permissions = std::nullopt, .mode = SocketMode::NonBlocking});
    if (!listening) return fail(listening.error().with_context("--control " + path));
    UniqueFd listener = std::move(*listening);
    return std::unique_ptr<ControlServer>(new ControlServer(std::move(listener), path));
}

ControlServer::~ControlServer() { ::unlink(m_path.c_str()); }

void ControlServer::add_poll_fds(std::vector<pollfd>& fds) const {
    fds.push_back({m_listen.get(), POLLIN, 0});
    for (const Client& client : m_clients)
        fds.push_back({client.fd.get(), static_cast<short>(client.output.empty() ? POLLIN : POLLOUT), 0});
}

void ControlServer::service(std::span<const pollfd> fds, const Handler& handler) {
    bool accept = false;
    std::vector<int> ready;
    for (const pollfd& entry : fds) {
        if (!entry.revents) continue;
        if (entry.fd == m_listen.get())
            accept = true;
        else
            ready.push_back(entry.fd);
    }
    for (int fd : ready) {
        for (size_t i = 0; i < m_clients.size(); ++i) {
            if (m_clients[i].fd.get() != fd) continue;
            if (!serve_client(m_clients[i], handler)) m_clients.erase(m_clients.begin() + static_cast<long>(i));
            break;
        }
    }
    if (accept) accept_clients();
}

void ControlServer::accept_clients() {
    for (;;) {
        int fd = ::accept4(m_listen.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) return;
        UniqueFd client(fd);
        if (m_clients.size() >= k_max_clients) {
            send_all(fd, control_error_answer(fmt::format("too many control connections (at most {})",
                                                          k_max_clients)) + "\n");
            continue;  // closed by UniqueFd
        }
        m_clients.push_back({std::move(client), {}, {}});
    }
}

bool ControlServer::flush_output(Client& client) {
    size_t sent = 0;
    while (sent < client.output.size()) {
        ssize_t n = ::send(client.fd.get(), client.output.data() + sent, client.output.size() - sent,
                           MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;  // the rest when the client has read (POLLOUT)
        } else {
            return false;
        }
    }
    client.output.erase(0, sent);
    return true;
}

bool ControlServer::serve_client(Client& client, const Handler& handler) {
    if (!client.output.empty()) {
        if (!flush_output(client)) return false;
        if (!client.output.empty()) return true;  // its next requests wait until it has read this
    }
    // Bounded work per wake-up, so one chatty client cannot starve the VMM loop; poll reports
    // the rest next time.
    for (int reads = 0; reads < 16; ++reads) {
        std::array<char, 16 * 1024> chunk;
        ssize_t n = ::recv(client.fd.get(), chunk.data(), chunk.size(), MSG_DONTWAIT);
        if (n == 0) return false;  // the client closed its side
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        client.buffer.append(chunk.data(), static_cast<size_t>(n));
        size_t start = 0;
        for (size_t end; (end = client.buffer.find('\n', start)) != std::string::npos; start = end + 1) {
            std::string_view line(client.buffer.data() + start, end - start);
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            if (line.size() > k_max_line_bytes) return false;
            if (line.find_first_not_of(" \t") == std::string_view::npos) continue;  // blank line
            auto request = parse_control_request(line);
            std::string answer = request ? handler(*request) : control_error_answer(request.error().message());
            client.output += answer;
            client.output += '\n';
            if (client.output.size() > k_max_output_bytes) {
                log_warning("control: dropping a client that does not read its answers ({} bytes waiting)",
                            client.output.size());
                return false;
            }
        }
        client.buffer.erase(0, start);
        if (!flush_output(client)) return false;
        if (client.buffer.size() > k_max_line_bytes) {
            log_warning("control: dropping a client whose request line exceeds {} bytes", k_max_line_bytes);
            return false;
        }
        if (!client.output.empty()) return true;  // read on once it has taken its answers
    }
    return true;
}

}  // namespace corral::vmm
