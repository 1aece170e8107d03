#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/http/api_error.h"
#include "daemon/http/http_message.h"

namespace corral::daemon {

/// The token in an `Authorization: Bearer <token>` header value (RFC 6750 §2.1: the scheme is
/// case-insensitive, the token is 1 or more token68 characters). A 401 naming the field
/// Authorization when the header is empty, another scheme, or not a token.
ApiResult<std::string> parse_bearer_token(std::string_view header);

/// A 401 for `error` with the `WWW-Authenticate: Bearer` challenge (RFC 6750 §3), plus
/// `error="invalid_token"` when a token was sent but is not (or no longer) valid.
HttpResponse unauthorized_response(const ApiError& error, bool token_was_sent);

/// Checks the bearer token of every request on a TCP listener. `verify` maps a presented secret
/// to the name of its token, or nullopt; it is told when a token was used, at most once a
/// minute per token (`touch`), so that last_used_at stays useful without a write per request.
class BearerAuth {
public:
    using Verify = std::function<Result<std::optional<std::string>>(std::string_view secret)>;
    using Touch = std::function<void(const std::string& name)>;
    BearerAuth(Verify verify, Touch touch) : m_verify(std::move(verify)), m_touch(std::move(touch)) {}

    /// nullopt when the request may go on (its token_name set), else the answer to send.
    std::optional<HttpResponse> check(HttpRequest& request);

private:
    Verify m_verify;
    Touch m_touch;
    std::mutex m_mutex;  // guards m_last_touch
    std::map<std::string, std::chrono::steady_clock::time_point> m_last_touch;
};

}  // namespace corral::daemon
