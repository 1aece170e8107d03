#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "cli/api.h"
#include "cli/endpoint.h"

namespace corral::cli {

/// The API over corrald's unix socket, or over TLS to a remote corrald (with its bearer token):
/// HTTP/1.1, JSON bodies, one request per connection. This file is the one place that opens
/// connections to corrald. (Beast and OpenSSL live in api_client.cpp only, to keep other
/// translation units light.)
///
/// TLS: the server's certificate is checked before anything (the token included) is sent:
/// against the pinned SHA-256 fingerprint, else the --ca-cert file, else the system's CAs, with
/// the host name or IP address of the URL. A certificate that fails is refused with a message
/// that shows its fingerprint and how to pin it.
class ApiClient final : public Api {
public:
    explicit ApiClient(Endpoint endpoint);
    /// A client of the corrald listening on the unix socket `socket_path`.
    explicit ApiClient(std::string socket_path);

    ApiResult<HttpResponse> send(const HttpRequest& request) override;

    /// Reports a transfer: `done` of `total` bytes of the body.
    using TransferProgress = std::function<void(uint64_t done, uint64_t total)>;
    /// Fills the buffer with the next bytes to send; returns how many (0 only at the end).
    using BodySource = std::function<ApiResult<size_t>(std::span<char> buffer)>;
    /// Takes the next bytes of an answer's body.
    using BodySink = std::function<ApiResult<void>(std::string_view data)>;

    /// PUT `target` with a body of `size` bytes read from `source` as it is sent (never whole in
    /// memory). Sends `Expect: 100-continue`, so a refusal (name taken, too large) comes before
    /// any byte of the body. The answer is returned like send()'s.
    ApiResult<HttpResponse> upload(const std::string& target, uint64_t size, const BodySource& source,
                                   const TransferProgress& progress);
    /// GET `target`; a 2xx answer's body goes to `sink` as it arrives (its body in the result is
    /// empty), any other answer is returned whole like send()'s.
    ApiResult<HttpResponse> download(const std::string& target, const BodySink& sink, const TransferProgress& progress);

    const Endpoint& endpoint() const { return m_endpoint; }

private:
    Endpoint m_endpoint;
};

/// The error for a socket that cannot be connected to: names the socket and says how to start corrald.
ApiError unreachable_error(const std::string& socket_path, const std::string& reason);

/// A WebSocket connection to corrald (`/vms/{name}/console`, `/events`), over its unix socket or
/// TLS (wss). run() drives it on the calling thread; send() and close() may be called from any thread.
class WebSocketSession {
public:
    /// Called for each frame received: its payload and whether it was a binary frame.
    using FrameHandler = std::function<void(std::string_view data, bool binary)>;

    /// Connects and performs the upgrade for `target` (e.g. /api/v1/events). A refused upgrade
    /// is reported with the daemon's error message, like an HTTP call.
    static ApiResult<std::unique_ptr<WebSocketSession>> connect(const Endpoint& endpoint, const std::string& target);
    static ApiResult<std::unique_ptr<WebSocketSession>> connect(const std::string& socket_path,
                                                                const std::string& target);
    ~WebSocketSession();
    WebSocketSession(const WebSocketSession&) = delete;
    WebSocketSession& operator=(const WebSocketSession&) = delete;

    /// Queues one frame (binary unless `binary` is false). Thread-safe.
    void send(std::string data, bool binary = true);

    /// The bytes of frames queued by send() and not yet written. Thread-safe: a producer
    /// faster than the connection (a migration's relay) waits while it is high.
    size_t queued_bytes() const;

    /// Sends a normal close after `delay`, once queued frames are written. Thread-safe.
    void close(std::chrono::milliseconds delay = std::chrono::milliseconds(0));

    /// Reads frames until either side closes; an error only if the connection broke or was cut.
    ApiResult<void> run(const FrameHandler& on_frame);

    /// Cuts the session at once, queued frames unsent: run() returns (with an error). For a
    /// peer that stopped answering, which a normal close() would wait for. Thread-safe.
    void abort();

    struct Impl;

private:
    explicit WebSocketSession(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

}  // namespace corral::cli
