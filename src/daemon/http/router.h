#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/http/api_error.h"
#include "daemon/http/http_message.h"
#include "daemon/http/route_policy.h"

namespace corral::daemon {

using PathParams = std::map<std::string, std::string>;

/// One accepted WebSocket connection. send_*() and close() may be called from any thread; they
/// queue and return at once. Frames sent after the peer went away are dropped.
class WebSocketConnection {
public:
    virtual ~WebSocketConnection() = default;
    virtual void send_text(std::string text) = 0;
    virtual void send_binary(std::string bytes) = 0;
    virtual void close() = 0;
    /// Calls `ready` (on the connection's thread) once fewer than `bytes` wait in the send queue,
    /// at once when that is so already; never after the peer went away. A producer faster than
    /// the peer (the VNC relay) waits for it instead of filling the queue, whose cap drops frames.
    virtual void when_queue_below(size_t bytes, std::function<void()> ready) {
        (void)bytes;
        ready();
    }
};

/// What a WebSocket route returns when it accepts a connection: what to do with each message
/// the peer sends, and when it goes away (both called on the connection's own thread).
struct WebSocketHandlers {
    std::function<void(std::string_view data, bool binary)> on_message;
    std::function<void()> on_close;
};

using Handler = std::function<ApiResult<HttpResponse>(const HttpRequest&, const PathParams&)>;
/// Called before the handshake completes: an error answers the upgrade request with that HTTP
/// error instead (404 for an unknown VM, ...). Frames sent before the handshake are queued.
using WebSocketHandler = std::function<ApiResult<WebSocketHandlers>(
    std::shared_ptr<WebSocketConnection>, const HttpRequest&, const PathParams&)>;

/// The body of a request to a streaming route, read as it arrives (never whole in memory).
class BodyReader {
public:
    virtual ~BodyReader() = default;
    /// The declared Content-Length; nullopt for a chunked body.
    virtual std::optional<uint64_t> content_length() const = 0;
    /// Reads the next bytes of the body into `buffer`: how many (at least one), or 0 at its end.
    /// Fails when the client went away, was too slow, or sent a malformed body.
    virtual Result<size_t> read(std::span<char> buffer) = 0;
};

/// Where a streaming route writes the body of its answer, piece by piece.
class BodyWriter {
public:
    virtual ~BodyWriter() = default;
    /// Sends `data`; fails when the client went away or stopped reading.
    virtual Result<void> write(std::string_view data) = 0;
};

/// A streaming route's answer: `head` alone (status, type, headers, body) when `body` is empty;
/// otherwise head's status, type and headers, then what `body` writes (`content_length` bytes
/// exactly, or chunked when nullopt). An error from `body` ends the connection mid-answer.
struct StreamResponse {
    HttpResponse head;
    std::optional<uint64_t> content_length;
    std::function<Result<void>(BodyWriter&)> body;
};

/// A route that moves data too large to hold in memory (volume uploads and downloads): it gets
/// the request body as a reader instead of a string, and may stream its answer. The server
/// calls it after authentication and before reading any of the body.
using StreamHandler =
    std::function<ApiResult<StreamResponse>(const HttpRequest&, const PathParams&, BodyReader&)>;

/// Maps METHOD + path patterns ("/api/v1/vms/{name}/state") to handlers. A path that matches a
/// pattern with another method is a 405 listing the allowed ones; no match is a 404. A last
/// segment "{name*}" captures the rest of the path, zero or more segments joined by '/'
/// ("/ui/{path*}" gives path "css/site.css" for /ui/css/site.css): for static files, so it is
/// checked by check_wildcard_path instead of the name rule.
class Router {
public:
    /// `policy` is checked before `handler` runs (who may call it, which fields name host paths).
    void add(std::string method, std::string pattern, Handler handler, RoutePolicy policy = {});
    void add_websocket(std::string pattern, WebSocketHandler handler);
    /// A streaming route (see StreamHandler); handle() answers it with a 400, the server calls
    /// it through find_streaming() instead.
    void add_streaming(std::string method, std::string pattern, StreamHandler handler);

    /// Decides which host paths a TCP client may name (RoutePolicy::host_path_fields); none without it.
    void set_host_path_check(HostPathCheck check) { m_host_path_check = std::move(check); }

    /// Every route as (method, pattern); WebSocket routes have method "WEBSOCKET".
    std::vector<std::pair<std::string, std::string>> routes() const;

    /// Serves a plain request (errors from handlers become JSON error responses). Never throws:
    /// an exception from a handler is logged and answered with internal_error().
    HttpResponse handle(const HttpRequest& request) const;
    /// Finds the WebSocket route for an upgrade request; nullptr with `error` set when none.
    const WebSocketHandler* find_websocket(const HttpRequest& request, PathParams& params, ApiError& error) const;
    /// The streaming route for this method and path, or nullptr.
    const StreamHandler* find_streaming(const HttpRequest& request, PathParams& params) const;

private:
    struct Route {
        std::string method;
        std::vector<std::string> segments;  // "{name}" segments capture; a last "{name*}" takes the rest
        std::string wildcard;               // the "{name*}" parameter's name, "" when none
        Handler handler;
        WebSocketHandler websocket;
        RoutePolicy policy;
        StreamHandler stream;
    };
    /// A route for `pattern`; throws std::invalid_argument when "{name*}" is not last.
    static Route make_route(std::string method, const std::string& pattern);
    static bool match(const Route& route, const std::vector<std::string_view>& path, PathParams& params);
    HttpResponse dispatch(const HttpRequest& request) const;

    std::vector<Route> m_routes;
    HostPathCheck m_host_path_check;
};

/// A new request id ("r-1", "r-2", ...), unique in this corrald: an answer and its log line
/// carry the same one, so an operator can find what went wrong.
std::string next_request_id();

/// The last line behind a handler: logs `what` (an exception's text) with the request and a new
/// request id, and answers 500 {"error": {"status": 500, "message": "internal error (request id
/// r-N)"}} with an X-Request-Id header. The exception's text stays in the log: it may quote
/// internals the client has no business seeing.
HttpResponse internal_error(const HttpRequest& request, std::string_view what);

/// 400 naming the first path parameter that is not a name (validate_name's rule: every path
/// parameter of the API names a VM, pool, volume, image, token or task). The parameter named
/// `wildcard` (a "{name*}" capture) is checked by check_wildcard_path instead.
ApiResult<void> check_path_params(const PathParams& params, const std::string& wildcard = {});

/// 400 naming `name` when a wildcard's path could leave the folder it is served from or be
/// decoded into something else: a segment that is "." or ".." or starts with '.', or holds '\',
/// '%' or a control character. The path is decoded before routing, so "%2e%2e" is "..".
ApiResult<void> check_wildcard_path(const std::string& value, const std::string& name);

}  // namespace corral::daemon
