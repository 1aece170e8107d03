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
            // A text frame after the scroll-back: where the replay ends, and whether anything runs
            // (a client puts its detach hint here, where the replay does not scroll it away).
            const std::string& name = params.at("name");
            auto vm = context.inventory.get_vm(name);
            const std::string state = vm ? vm->state : std::string("unknown");
            connection->send_text(state == "running" || state == "paused"
                                      ? fmt::format("corrald: {} is {}; live console from here", name, state)
                                      : fmt::format("corrald: {} is not running ({}): the lines above are from its last "
                                                    "run; nothing reads what you type. 'corral vm start {}' starts it",
                                                    name, state, name));
            WebSocketHandlers handlers;
            // Input that goes nowhere is dropped, and the client told once per run of drops (in a
            // text frame) why: the guest does not read it (paused, or busy), another client types
            // on this console, or no guest is attached.
            auto dropping = std::make_shared<VmConsole::Input>(VmConsole::Input::Queued);
            handlers.on_message = [console, id, weak, dropping, name](std::string_view data, bool) {
                const auto result = console->write_input(id, data);
                if (result == VmConsole::Input::Queued) {
                    *dropping = result;
                    return;
                }
                if (std::exchange(*dropping, result) == result) return;
                auto peer = weak.lock();
                if (!peer) return;
                if (result == VmConsole::Input::Full)
                    peer->send_text(fmt::format("corrald: console input dropped: the guest is not reading its console "
                                                "(more than {} KiB waiting)",
                                                VmConsole::k_input_queue_bytes / 1024));
                else if (result == VmConsole::Input::Refused)
                    peer->send_text(fmt::format("corrald: another client is typing on {}'s console: this one is "
                                                "read-only until it detaches (you still see the output)",
                                                name));
                else
                    peer->send_text(fmt::format("corrald: console input dropped: {} is not running", name));
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
