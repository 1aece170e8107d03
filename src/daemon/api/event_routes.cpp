#include "daemon/api/api_context.h"

namespace corral::daemon {

void add_event_routes(Router& router, ApiContext& context) {
    router.add_websocket(api_path("/events"),
                         [&context](std::shared_ptr<WebSocketConnection> connection, const HttpRequest&,
                                    const PathParams&) -> ApiResult<WebSocketHandlers> {
                             std::weak_ptr<WebSocketConnection> weak = connection;
                             uint64_t id = context.events.subscribe([weak](const nlohmann::json& event) {
                                 if (auto peer = weak.lock()) peer->send_text(dump_json(event));
                             });
                             WebSocketHandlers handlers;
                             handlers.on_close = [&context, id] { context.events.unsubscribe(id); };
                             return handlers;
                         });
}

}  // namespace corral::daemon
