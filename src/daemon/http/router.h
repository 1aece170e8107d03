#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/http/api_error.h"
#include "daemon/http/http_message.h"

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

/// Maps METHOD + path patterns ("/api/v1/vms/{name}/state") to handlers. A path that matches a
/// pattern with another method is a 405 listing the allowed ones; no match is a 404.
class Router {
public:
    void add(std::string method, std::string pattern, Handler handler);
    void add_websocket(std::string pattern, WebSocketHandler handler);

    /// Every route as (method, pattern); WebSocket routes have method "WEBSOCKET".
    std::vector<std::pair<std::string, std::string>> routes() const;

    /// Serves a plain request (errors from handlers become JSON error responses). Never throws:
    /// an exception from a handler is logged and answered with internal_error().
    HttpResponse handle(const HttpRequest& request) const;
    /// Finds the WebSocket route for an upgrade request; nullptr with `error` set when none.
    const WebSocketHandler* find_websocket(const HttpRequest& request, PathParams& params, ApiError& error) const;

private:
    struct Route {
        std::string method;
        std::vector<std::string> segments;  // "{name}" segments capture
        Handler handler;
        WebSocketHandler websocket;
    };
    static bool match(const Route& route, const std::vector<std::string_view>& path, PathParams& params);
    HttpResponse dispatch(const HttpRequest& request) const;

    std::vector<Route> m_routes;
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
/// parameter of the API names a VM, pool, volume, image, token or task).
ApiResult<void> check_path_params(const PathParams& params);

}  // namespace corral::daemon
