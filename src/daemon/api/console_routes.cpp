#include <fmt/format.h>

#include "base/utf8.h"
#include "daemon/api/api_context.h"
#include "daemon/http/request_body.h"

namespace corral::daemon {

void add_console_routes(Router& router, ApiContext& context) {
    router.add_websocket(
        "/api/v1/vms/{name}/console",
        [&context](std::shared_ptr<WebSocketConnection> connection, const HttpRequest&,
                   const PathParams& params) -> ApiResult<WebSocketHandlers> {
            auto console = TRY(api(context.vms.console(params.at("name")), "name"));
            std::weak_ptr<WebSocketConnection> weak = connection;
            std::string scrollback;
            uint64_t id = console->subscribe(
                [weak](std::string_view output) {
                    if (auto peer = weak.lock()) peer->send_binary(std::string(output));
                },
                scrollback);
            if (!scrollback.empty()) connection->send_binary(std::move(scrollback));
            WebSocketHandlers handlers;
            handlers.on_message = [console, id](std::string_view data, bool) { console->write_input(id, data); };
            handlers.on_close = [console, id] { console->unsubscribe(id); };
            return handlers;
        });
    // The same path without an upgrade: the scroll-back's last lines as text.
    router.add("GET", "/api/v1/vms/{name}/console",
               [&context](const HttpRequest& request, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto console = TRY(api(context.vms.console(params.at("name")), "name"));
                   auto lines = TRY(query_uint(request, "tail", 1, 10000, "lines")).value_or(50);
                   HttpResponse response;
                   // Said to be UTF-8: guest bytes that are not become U+FFFD.
                   response.content_type = "text/plain; charset=utf-8";
                   response.body = sanitize_utf8(console->tail(static_cast<size_t>(lines)));
                   return response;
               });
}

}  // namespace corral::daemon
