#pragma once

#include <poll.h>

#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "vmm/control/control_request.h"

namespace corral::vmm {

/// The per-VM control socket (`corral-vmm --control PATH`): a unix stream socket where each
/// connection sends one JSON request per line and gets one JSON answer per line.
///
/// It has no thread: the VMM thread polls its fds (add_poll_fds) and calls service() with the
/// poll results, and service() hands each parsed request, as a typed ControlRequest, to the
/// handler on that thread. So requests never run concurrently with each other or with the
/// VMM loop, and never touch device state from another thread.
/// A bad request gets `{"ok":false,"error":...}` and the connection stays usable; a line longer
/// than k_max_line_bytes is disconnected. An answer the socket cannot take at once (a screenshot's
/// PNG is megabytes) waits in the client's output buffer and is sent as the client reads (POLLOUT);
/// meanwhile that client's further requests wait in the kernel. A client whose unsent answers
/// exceed k_max_output_bytes is disconnected.
class ControlServer {
public:
    static constexpr size_t k_max_line_bytes = 64 * 1024;
    static constexpr size_t k_max_clients = 16;
    static constexpr size_t k_max_output_bytes = 64 << 20;

    /// Answers one action with one JSON line (no newline).
    using Handler = std::function<std::string(const ControlRequest&)>;

    /// Listens on `path` (which must not exist yet; it is removed on destruction).
    static Result<std::unique_ptr<ControlServer>> listen(const std::string& path);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    /// Appends the listening socket and every client to `fds` (POLLIN, or POLLOUT for a client
    /// with answers still to send).
    void add_poll_fds(std::vector<pollfd>& fds) const;
    /// Accepts new clients and answers every complete request line of the ready ones.
    /// `fds` are the entries add_poll_fds() added, with their revents.
    void service(std::span<const pollfd> fds, const Handler& handler);

    const std::string& path() const { return m_path; }
    size_t client_count() const { return m_clients.size(); }
    /// When the server started listening (the monitor's uptime counts from here).
    std::chrono::steady_clock::time_point started() const { return m_started; }

private:
    struct Client {
        UniqueFd fd;
        std::string buffer;  // bytes received after the last complete line
        std::string output;  // answers not yet sent
    };

    ControlServer(UniqueFd listen, std::string path)
        : m_listen(std::move(listen)), m_path(std::move(path)), m_started(std::chrono::steady_clock::now()) {}
    void accept_clients();
    /// Reads and answers what `client` sent; false when it must be dropped.
    bool serve_client(Client& client, const Handler& handler);
    /// Sends what it can of the client's pending answers; false when it must be dropped.
    static bool flush_output(Client& client);

    UniqueFd m_listen;
    std::string m_path;
    std::chrono::steady_clock::time_point m_started;
    std::vector<Client> m_clients;
};

}  // namespace corral::vmm
