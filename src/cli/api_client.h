#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "cli/api.h"

namespace corral::cli {

/// The API over corrald's unix socket: HTTP/1.1, JSON bodies, one request per connection.
/// (Beast lives in api_client.cpp only, to keep other translation units light.)
class ApiClient final : public Api {
public:
    explicit ApiClient(std::string socket_path);

    ApiResult<HttpResponse> send(const HttpRequest& request) override;

    const std::string& socket_path() const { return m_socket_path; }

private:
    std::string m_socket_path;
};

/// The error for a socket that cannot be connected to: names the socket and says how to start corrald.
ApiError unreachable_error(const std::string& socket_path, const std::string& reason);

/// A WebSocket connection to corrald over its unix socket (`/vms/{name}/console`, `/events`).
/// run() drives it on the calling thread; send() and close() may be called from any thread.
class WebSocketSession {
public:
    /// Called for each frame received: its payload and whether it was a binary frame.
    using FrameHandler = std::function<void(std::string_view data, bool binary)>;

    /// Connects and performs the upgrade for `target` (e.g. /api/v1/events). A refused upgrade
    /// is reported with the daemon's error message, like an HTTP call.
    static ApiResult<std::unique_ptr<WebSocketSession>> connect(const std::string& socket_path,
                                                                const std::string& target);
    ~WebSocketSession();
    WebSocketSession(const WebSocketSession&) = delete;
    WebSocketSession& operator=(const WebSocketSession&) = delete;

    /// Queues one frame (binary unless `binary` is false). Thread-safe.
    void send(std::string data, bool binary = true);

    /// Sends a normal close after `delay`, once queued frames are written. Thread-safe.
    void close(std::chrono::milliseconds delay = std::chrono::milliseconds(0));

    /// Reads frames until either side closes; an error only if the connection broke.
    ApiResult<void> run(const FrameHandler& on_frame);

private:
    struct Impl;
    explicit WebSocketSession(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

}  // namespace corral::cli
