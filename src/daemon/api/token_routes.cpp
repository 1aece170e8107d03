#include <fmt/format.h>

#include "daemon/api/api_context.h"
#include "daemon/http/request_body.h"
#include "daemon/tokens.h"
#include "daemon/web/web_sessions.h"

namespace corral::daemon {

namespace {

nlohmann::json token_json(const inventory::TokenRecord& token) {
    return {{"name", token.name},
            {"created_at", token.created_at},
            {"last_used_at", token.last_used_at.empty() ? nlohmann::json() : nlohmann::json(token.last_used_at)}};
}

/// Tokens are managed only over the unix socket: a token that leaked off the host must not be
/// able to mint more tokens or revoke the operator's (docs/api.md "Remote access").
RoutePolicy local_only() {
    return {.access = Access::UnixSocketOnly,
            .local_only_reason = "tokens are managed only over corrald's unix socket, so that a leaked token cannot "
                                 "make more: run 'corral token ...' on the host",
            .host_path_fields = {}};
}

}  // namespace

void add_token_routes(Router& router, ApiContext& context) {
    router.add("GET", api_path("/tokens"), [&context](const HttpRequest&, const PathParams&) -> ApiResult<HttpResponse> {
        auto tokens = TRY(api(context.inventory.list_tokens()));
        nlohmann::json list = nlohmann::json::array();
        for (const auto& token : tokens) list.push_back(token_json(token));
        return json_response(200, list);
    }, local_only());
    router.add("POST", api_path("/tokens"), [&context](const HttpRequest& request, const PathParams&) -> ApiResult<HttpResponse> {
        auto body = TRY(RequestBody::parse(request.body));
        const std::string name = TRY(body.required_string("name"));
        TRY_VOID(body.finish());
        auto created = TRY(create_token(context.inventory, name));
        nlohmann::json answer = token_json(created.record);
        answer["token"] = created.secret;
        auto response = json_response(201, answer);
        response.headers.emplace_back("Location", api_path(fmt::format("/tokens/{}", name)));
        // The secret is in this answer only: no cache may keep it.
        response.headers.emplace_back("Cache-Control", "no-store");
        return response;
    }, local_only());
    router.add("DELETE", api_path("/tokens/{name}"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   const std::string& name = params.at("name");
                   TRY_VOID(api(context.inventory.delete_token(name), "name"));
                   // A revoked token's browser sessions end with it.
                   if (context.sessions) context.sessions->remove_for_token(name);
                   return json_response(200, {{"deleted", name}});
               }, local_only());
}

}  // namespace corral::daemon
