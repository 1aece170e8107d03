#pragma once

#include <optional>

#include "daemon/http/bearer_auth.h"
#include "daemon/http/http_message.h"
#include "daemon/web/web_sessions.h"

namespace corral::daemon {

/// True for what anyone may ask without credentials: the web UI's own files (GET / and
/// /ui/...) and signing in (POST /api/v1/session). Everything else needs a token or a session.
bool is_public_request(const HttpRequest& request);

/// The gate of corrald's TCP listeners (docs/api.md "Remote access", "Web UI sessions"): a
/// request with an Authorization header, or without a session cookie, is checked as a bearer
/// token exactly as before; a request with the session cookie must belong to a live session,
/// and carry that session's CSRF token in X-CSRF-Token unless it is a GET or HEAD. A WebSocket
/// upgrade with the cookie must come from a page of this origin (Origin header), since
/// browsers send cookies on cross-site WebSocket handshakes whatever the page.
class WebGate {
public:
    WebGate(BearerAuth& bearer, WebSessions& sessions) : m_bearer(bearer), m_sessions(sessions) {}

    /// nullopt when the request may go on (its token_name set), else the answer to send.
    std::optional<HttpResponse> check(HttpRequest& request);

private:
    BearerAuth& m_bearer;
    WebSessions& m_sessions;
};

/// The name a session's requests are logged under: its token's, or "sign-in link".
std::string session_principal(const WebSession& session);

}  // namespace corral::daemon
