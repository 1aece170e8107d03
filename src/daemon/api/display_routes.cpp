#include "daemon/api/display_routes.h"

#include <fmt/format.h>

#include "daemon/vnc_relay.h"

namespace corral::daemon {
namespace {

/// `view_only`: "1"/"true" or "0"/"false" (noVNC's and curl's habits both), absent = false.
ApiResult<bool> view_only_of(const HttpRequest& request) {
    auto it = request.query.find("view_only");
    if (it == request.query.end()) return false;
    if (it->second == "1" || it->second == "true") return true;
    if (it->second == "0" || it->second == "false") return false;
    return api_fail(400, fmt::format("view_only must be 1 or 0 (true or false), not '{}'", it->second.substr(0, 40)),
                    "view_only");
}

}  // namespace

void add_display_routes(Router& router, ApiContext& context) {
    router.add("GET", api_path("/vms/{name}/screenshot"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   HttpResponse response;
                   response.status = 200;
                   response.content_type = "image/png";
                   response.body = TRY(api(context.vms.screenshot(params.at("name")), "name"));
                   // A moment of the screen: never the same twice.
                   response.headers.emplace_back("Cache-Control", "no-store");
                   return response;
               });
    router.add_websocket(
        api_path("/vms/{name}/vnc"),
        [&context](std::shared_ptr<WebSocketConnection> connection, const HttpRequest& request,
                   const PathParams& params) -> ApiResult<WebSocketHandlers> {
            const bool view_only = TRY(view_only_of(request));
            // Refused before the handshake (404, 409) when the VM has no screen to show now.
            auto server = TRY(api(context.vms.connect_vnc(params.at("name")), "name"));
            auto relay = VncRelay::start(std::move(server), connection, view_only);
            WebSocketHandlers handlers;
            handlers.on_message = [relay](std::string_view data, bool) { relay->from_viewer(data); };
            // The handlers own the relay: it stops when they go, with on_close or without it.
            handlers.on_close = [] {};
            return handlers;
        });
}

}  // namespace corral::daemon
