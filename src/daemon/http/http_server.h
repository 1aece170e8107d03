#pragma once

#include <atomic>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <thread>

#include "base/result.h"
#include "base/unique_fd.h"
#include "daemon/http/router.h"

namespace corral::daemon {

/// HTTP/1.1 + WebSocket server on a unix socket. One thread per connection: API clients are few
/// (the CLI, the web UI, scripts), and a thread makes long-polls (`?wait=`) and console streams
/// simple blocking code instead of a tangle of callbacks. Requests larger than 16 MiB are refused.
class HttpServer {
public:
    /// Listens on `path` with permission bits `mode` (who can open the socket can use the API). A
    /// stale socket file left by a dead daemon is replaced; a live one is an error.
    static Result<std::unique_ptr<HttpServer>> listen_unix(const std::filesystem::path& path, unsigned mode,
                                                           const Router& router);
    ~HttpServer();

    /// Accepts connections on a thread of its own until stop().
    void start();
    /// Stops accepting, ends open connections, joins every thread, removes the socket file.
    void stop();

private:
    HttpServer(UniqueFd listen, std::filesystem::path path, const Router& router)
        : m_listen(std::move(listen)), m_path(std::move(path)), m_router(router) {}
    void accept_loop();
    void serve(int fd);

    struct Connection {
        int fd;
        std::thread thread;
        std::atomic<bool> done{false};
    };

    UniqueFd m_listen;
    std::filesystem::path m_path;
    const Router& m_router;
    std::thread m_accept_thread;
    std::atomic<bool> m_stopping{false};
    std::mutex m_mutex;  // guards m_connections
    std::list<Connection> m_connections;
};

}  // namespace corral::daemon
