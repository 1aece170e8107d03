#include "daemon/web/web_gate.h"

#include "base/api_path.h"
#include "daemon/tokens.h"

namespace corral::daemon {

namespace {

std::string header_of(const HttpRequest& request, const std::string& name) {
    auto it = request.headers.find(name);
    return it == request.headers.end() ? std::string() : it->second;
}

HttpResponse refused(int status, const std::string& field, const std::string& message) {
    HttpResponse response = error_response({status, field, message});
    // A cookie that names no live session is dropped, so the browser stops sending it.
    if (status == 401)
        response.headers.emplace_back("Set-Cookie", expired_session_cookie());
    return response;
}

}  // namespace

bool is_public_request(const HttpRequest& request) {
    if (request.websocket_upgrade)
        return false;
    if (request.method == "GET" || request.method == "HEAD")
        return request.path == "/" || request.path.starts_with("/ui/");
    return request.method == "POST" && request.path == api_path("/session");
}

std::string session_principal(const WebSession& session) {
    return session.token_name.empty() ? std::string("sign-in link") : session.token_name;
}

std::optional<HttpResponse> WebGate::check(HttpRequest& request) {
    if (is_public_request(request))
        return std::nullopt;
    const std::string cookie = cookie_value(header_of(request, "cookie"), k_session_cookie);
    // Scripts and the CLI send a token and no cookie: exactly the API they had before.
    if (request.headers.contains("authorization") || cookie.empty())
        return m_bearer.check(request);
    auto session = m_sessions.find(cookie);
    if (!session)
        return refused(401, "session", "not signed in: the session expired or was signed out; sign in again");
    if (request.websocket_upgrade) {
        // Same origin only: the page that opens the socket must have come from this listener.
        const std::string origin = header_of(request, "origin");
        if (origin.empty() || origin != "https://" + header_of(request, "host"))
            return refused(403, "Origin", "a WebSocket with the session cookie must come from a page of this corrald");
    } else if (request.method != "GET" && request.method != "HEAD") {
        // A custom header no other site's page can set without a CORS preflight corrald never
        // grants, holding a value only this session's pages know.
        const std::string csrf = header_of(request, "x-csrf-token");
        if (csrf.empty())
            return refused(403, "X-CSRF-Token",
                           "a request that changes something must carry the session's CSRF token in X-CSRF-Token "
                           "(GET /api/v1/session gives it)");
        if (!equal_in_constant_time(csrf, session->csrf_token))
            return refused(403, "X-CSRF-Token", "X-CSRF-Token is not this session's CSRF token");
    }
    request.token_name = session_principal(*session);
    return std::nullopt;
}

}  // namespace corral::daemon
