#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "base/result.h"
#include "base/unique_fd.h"
#include "daemon/http/listen_address.h"
#include "daemon/http/router.h"

namespace corral::daemon {

class TlsContext;

/// A bound, listening TCP socket, not yet served (see bind_tcp).
struct TcpListener {
    UniqueFd fd;
    ListenAddress address;  ///< with the port actually bound (for port 0)
};

/// Binds and listens on a TCP address. Errors (port in use, not an address of this host,
/// privileged port) name the --listen value and what to change.
Result<TcpListener> bind_tcp(const ListenAddress& address);

/// Looks at a request before it is routed: nullopt lets it through (possibly annotated, e.g.
/// with the token that authenticated it), an answer is sent instead of routing it.
using RequestGate = std::function<std::optional<HttpResponse>(HttpRequest&)>;

/// HTTP/1.1 + WebSocket server on a unix socket, or on a TCP port speaking only TLS. One thread
/// per connection: API clients are few (the CLI, the web UI, scripts), and a thread makes
/// long-polls (`?wait=`) and console streams simple blocking code instead of a tangle of
/// callbacks. The HTTP and WebSocket code is one template over the stream (unix socket or TLS
/// stream). A request's header is read and authenticated before its body; bodies larger than
/// 16 MiB are refused, except by streaming routes (Router::add_streaming).
///
/// On TCP, where anyone may connect: at most 128 connections, 16 per client address; a
/// request header must be complete 10 s after the handshake (30 s on an idle keep-alive
/// connection); a body or an answer that makes no progress for 30 s, or a body that arrives
/// slower than 16 KiB/s after its first minute, ends the connection. Refusals are logged at
/// most once per 10 s.
class HttpServer {
public:
    /// Listens on `path` with permission bits `mode` (who can open the socket can use the API). A
    /// stale socket file left by a dead daemon is replaced; a live one is an error.
    static Result<std::unique_ptr<HttpServer>> listen_unix(const std::filesystem::path& path, unsigned mode,
                                                           const Router& router);
    /// Serves a TCP listener, speaking only TLS there (with `tls`, which must outlive the
    /// server); every request passes `gate` first. A client that has not finished its TLS
    /// handshake within 10 s is dropped; a plain-HTTP request gets a 400 saying to use https.
    static std::unique_ptr<HttpServer> serve_tls(TcpListener listener, TlsContext& tls, const Router& router,
                                                 RequestGate gate);
    ~HttpServer();

    /// Accepts connections on a thread of its own until stop().
    void start();
    /// Stops accepting, ends open connections, joins every thread, removes the socket file.
    void stop();

    /// Where it listens: the socket path, or "HOST:PORT" with the port actually bound (for port 0).
    const std::string& address() const { return m_address; }

private:
    HttpServer(UniqueFd listen, std::string address, const Router& router)
        : m_listen(std::move(listen)), m_address(std::move(address)), m_router(router) {}
    void accept_loop();
    void serve(int fd);
    /// Counts a refused connection and logs the count now and then; m_mutex must be held.
    void note_refusal(const std::string& client);

    struct Connection {
        int fd;
        std::string client;  // the TCP client's address (per-client limit), empty on the unix socket
        std::thread thread;
        std::atomic<bool> done{false};
    };

    UniqueFd m_listen;
    std::string m_address;
    std::filesystem::path m_socket_path;  // unix socket only: removed by stop()
    const Router& m_router;
    TlsContext* m_tls = nullptr;          // TCP listeners only
    bool m_ipv6 = false;
    RequestGate m_gate;
    std::thread m_accept_thread;
    std::atomic<bool> m_stopping{false};
    std::mutex m_mutex;  // guards m_connections and the refusal counts
    std::list<Connection> m_connections;
    size_t m_refused = 0;
    std::string m_last_refused_client;
    std::optional<std::chrono::steady_clock::time_point> m_refusal_logged_at;
};

}  // namespace corral::daemon
