#include <fmt/format.h>

#include "base/utf8.h"
#include "daemon/api/api_context.h"
#include "daemon/http/request_body.h"

namespace corral::daemon {

void add_console_routes(Router& router, ApiContext& context) {
    router.add_websocket(
        api_path("/vms/{name}/console"),
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
            // Input the guest does not take (a full queue: paused, or not reading) is dropped, and
            // the client told once per run of drops in a text frame.
            auto dropping = std::make_shared<bool>(false);
            handlers.on_message = [console, id, weak, dropping](std::string_view data, bool) {
                const auto result = console->write_input(id, data);
                if (result != VmConsole::Input::Full) {
                    *dropping = false;
                    return;
                }
                if (std::exchange(*dropping, true)) return;
                if (auto peer = weak.lock())
                    peer->send_text(fmt::format("corrald: console input dropped: the guest is not reading its console "
                                                "(more than {} KiB waiting)",
                                                VmConsole::k_input_queue_bytes / 1024));
            };
            handlers.on_close = [console, id] { console->unsubscribe(id); };
            return handlers;
        });
    // The same path without an upgrade: the scroll-back's last lines as text.
    router.add("GET", api_path("/vms/{name}/console"),
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
