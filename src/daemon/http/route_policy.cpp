#include "daemon/http/route_policy.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace corral::daemon {

ApiResult<void> check_route_policy(const RoutePolicy& policy, const HttpRequest& request, const HostPathCheck& check) {
    if (request.origin == Origin::UnixSocket) return {};
    if (policy.access == Access::UnixSocketOnly)
        return api_fail(403, policy.local_only_reason.empty()
                                 ? fmt::format("{} {} is served only on corrald's unix socket", request.method, request.path)
                                 : policy.local_only_reason);
    if (policy.host_path_fields.empty()) return {};
    // A body that does not parse, or a field of another type, is the handler's 400 to give; only
    // string values can name a path.
    auto body = nlohmann::json::parse(request.body, nullptr, false);
    if (!body.is_object()) return {};
    for (const auto& field : policy.host_path_fields) {
        auto it = body.find(field);
        if (it == body.end() || !it->is_string()) continue;
        if (!check)
            return api_fail(403, fmt::format("{} names a path on the host, which is refused over TCP", field), field);
        TRY_VOID(check(request.origin, field, it->get<std::string>()));
    }
    return {};
}

}  // namespace corral::daemon
