// The web UI: its files at / and /ui/..., and browser sessions (docs/api.md "Web UI sessions").
#include <ctime>

#include <fmt/format.h>

#include "base/log.h"
#include "daemon/api/api_context.h"
#include "daemon/http/request_body.h"
#include "daemon/tokens.h"
#include "daemon/web/static_files.h"
#include "daemon/web/web_gate.h"
#include "daemon/web/web_sessions.h"

namespace corral::daemon {

namespace {

std::string utc_text(std::chrono::system_clock::time_point when) {
    const std::time_t seconds = std::chrono::system_clock::to_time_t(when);
    std::tm parts{};
    gmtime_r(&seconds, &parts);
    char text[32];
    std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &parts);
    return text;
}

nlohmann::json session_json(const WebSession& session) {
    return {{"signed_in_as", session_principal(session)},
            {"csrf_token", session.csrf_token},
            {"expires_at", utc_text(session.expires)}};
}

ApiResult<WebSessions*> sessions_of(ApiContext& context) {
    if (!context.sessions)
        return api_fail(503, "web UI sessions are not served by this corrald");
    return context.sessions;
}

/// The session the request's cookie names (the gate checked it on TCP; on the unix socket it
/// is checked here).
ApiResult<WebSession> current_session(ApiContext& context, const HttpRequest& request) {
    WebSessions* sessions = TRY(sessions_of(context));
    auto cookie = request.headers.find("cookie");
    const std::string id = cookie_value(cookie == request.headers.end() ? "" : cookie->second, k_session_cookie);
    if (id.empty())
        return api_fail(404, "this request has no session cookie (it authenticated with a bearer token, or not at all)",
                        "session");
    auto session = sessions->find(id);
    if (!session)
        return api_fail(401, "not signed in: the session expired or was signed out; sign in again", "session");
    return *session;
}

HttpResponse no_store(HttpResponse response) {
    // Answers that carry a session's secrets stay out of every cache.
    response.headers.emplace_back("Cache-Control", "no-store");
    return response;
}

}  // namespace

void add_web_routes(Router& router, ApiContext& context) {
    router.add("GET", "/", [&context](const HttpRequest& request, const PathParams&) -> ApiResult<HttpResponse> {
        if (!context.web)
            return api_fail(404, "this corrald serves no web UI");
        return context.web->serve("", request);
    });
    router.add("GET", "/ui/{path*}",
               [&context](const HttpRequest& request, const PathParams& params) -> ApiResult<HttpResponse> {
                   if (!context.web)
                       return api_fail(404, "this corrald serves no web UI");
                   return context.web->serve(params.at("path"), request);
               });

    // Sign-in: a token (or a one-time link's code) for a session cookie.
    router.add(
        "POST", api_path("/session"),
        [&context](const HttpRequest& request, const PathParams&) -> ApiResult<HttpResponse> {
            WebSessions* sessions = TRY(sessions_of(context));
            // A page of another site can POST a form (text/plain, urlencoded) here but cannot
            // send application/json without a CORS preflight, which corrald never grants: no
            // site signs a visitor's browser in with a token of the site's choosing.
            auto type = request.headers.find("content-type");
            if (type == request.headers.end() || !type->second.starts_with("application/json"))
                return api_fail(415, "signing in takes a JSON body: Content-Type: application/json", "Content-Type");
            auto body = TRY(RequestBody::parse(request.body));
            auto token = TRY(body.optional_string("token"));
            auto link = TRY(body.optional_string("link"));
            TRY_VOID(body.finish());
            if (token.has_value() == link.has_value())
                return api_fail(400, "give either token (an API token's secret) or link (a sign-in link's code)",
                                token ? "link" : "token");
            std::string name;
            if (token) {
                auto found = TRY(api(find_token(context.inventory, *token)));
                if (!found)
                    return api_fail(401, "the token is not valid: unknown or revoked", "token");
                name = found->name;
                if (auto touched = context.inventory.touch_token(name); !touched)
                    log_warning("recording the use of token {}: {}", name, touched.error().describe());
            } else if (!sessions->redeem_link(*link)) {
                return api_fail(401,
                                "the sign-in link is not valid: unknown, used already, or expired (links last "
                                "10 minutes and work once; POST /api/v1/session/links on the host makes another)",
                                "link");
            }
            WebSession session = sessions->create(name);
            log_info("web UI: {} signed in (session until {})", session_principal(session), utc_text(session.expires));
            auto response = no_store(json_response(201, session_json(session)));
            response.headers.emplace_back("Set-Cookie", session_cookie(session));
            return response;
        });
    router.add("GET", api_path("/session"),
               [&context](const HttpRequest& request, const PathParams&) -> ApiResult<HttpResponse> {
                   auto session = TRY(current_session(context, request));
                   return no_store(json_response(200, session_json(session)));
               });
    router.add("DELETE", api_path("/session"),
               [&context](const HttpRequest& request, const PathParams&) -> ApiResult<HttpResponse> {
                   auto session = TRY(current_session(context, request));
                   context.sessions->remove(session.id);
                   log_info("web UI: {} signed out", session_principal(session));
                   auto response = json_response(200, {{"signed_out", true}});
                   response.headers.emplace_back("Set-Cookie", expired_session_cookie());
                   return response;
               });
    // One-time links, made only on the host (as tokens are): whoever holds one signs in once.
    router.add(
        "POST", api_path("/session/links"),
        [&context](const HttpRequest& request, const PathParams&) -> ApiResult<HttpResponse> {
            WebSessions* sessions = TRY(sessions_of(context));
            auto body = TRY(RequestBody::parse(request.body));
            TRY_VOID(body.finish());
            const std::string code = sessions->create_link();
            // In the URL's fragment: browsers send no fragment to any server, so the code
            // stays out of access logs and Referer headers.
            nlohmann::json urls = nlohmann::json::array();
            if (context.host.api.is_object() && context.host.api.contains("listen"))
                for (const auto& listen : context.host.api.at("listen"))
                    urls.push_back(fmt::format("https://{}/#signin={}", listen.get<std::string>(), code));
            const auto expires = std::chrono::system_clock::now() + sessions->link_lifetime();
            return no_store(json_response(201, {{"link", code}, {"urls", urls}, {"expires_at", utc_text(expires)}}));
        },
        {.access = Access::UnixSocketOnly,
         .local_only_reason = "sign-in links are made only over corrald's unix socket, on the host: a session "
                              "cannot make more",
         .host_path_fields = {}});
}

}  // namespace corral::daemon
