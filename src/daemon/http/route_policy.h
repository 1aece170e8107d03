#pragma once

#include <functional>
#include <string>
#include <vector>

#include "daemon/http/api_error.h"
#include "daemon/http/http_message.h"

namespace corral::daemon {

/// Which listeners a route is served on (docs/api.md "Remote access").
enum class Access {
    Any,             ///< the unix socket and the TLS listeners
    UnixSocketOnly,  ///< the unix socket only: over TCP a 403 saying why (RoutePolicy::local_only_reason)
};

/// What a route may do for whom, declared with the route and checked by the router before its
/// handler runs, so that no handler can forget it.
struct RoutePolicy {
    Access access = Access::Any;
    /// The 403's sentence for an Access::UnixSocketOnly route asked over TCP.
    std::string local_only_reason;
    /// Top-level body fields that name a file or folder on the host. Over TCP each one present
    /// goes through the router's HostPathCheck (a 403 naming the field unless it lies inside a
    /// folder the administrator allowed); the handler then opens it without leaving that folder.
    std::vector<std::string> host_path_fields;
};

/// The policy of a route served everywhere whose body names host paths in `fields`.
inline RoutePolicy host_paths(std::vector<std::string> fields) {
    return {.access = Access::Any, .local_only_reason = {}, .host_path_fields = std::move(fields)};
}

/// Decides whether a request from `origin` may name `path` in body field `field`: an error (a
/// 403 naming the field) when not.
using HostPathCheck = std::function<ApiResult<void>(Origin origin, const std::string& field, const std::string& path)>;

/// Checks `request` against `policy`. Without a HostPathCheck every host path over TCP is refused.
ApiResult<void> check_route_policy(const RoutePolicy& policy, const HttpRequest& request, const HostPathCheck& check);

}  // namespace corral::daemon
