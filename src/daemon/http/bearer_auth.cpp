#include "daemon/http/bearer_auth.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "base/log.h"

namespace corral::daemon {

namespace {

constexpr const char* k_field = "Authorization";
constexpr const char* k_how =
    "send 'Authorization: Bearer <token>' (tokens are made on the host with 'corral token create NAME')";

bool token68_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' ||
           c == '/';
}

}  // namespace

ApiResult<std::string> parse_bearer_token(std::string_view header) {
    auto is_space = [](char c) { return c == ' ' || c == '\t'; };
    while (!header.empty() && is_space(header.front())) header.remove_prefix(1);
    while (!header.empty() && is_space(header.back())) header.remove_suffix(1);
    if (header.empty()) return api_fail(401, fmt::format("this listener needs a bearer token: {}", k_how), k_field);
    const auto space = header.find_first_of(" \t");
    const std::string_view scheme = header.substr(0, space);
    std::string lower(scheme);
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower != "bearer") {
        // The scheme is echoed only when it is a token (RFC 9110 §5.6.2: visible ASCII): any
        // other byte from an unauthenticated client stays out of the answer (and of JSON).
        std::string shown(scheme.substr(0, 20));
        bool visible = std::all_of(shown.begin(), shown.end(), [](char c) { return c > 0x20 && c < 0x7f; });
        return api_fail(401, fmt::format("the Authorization scheme must be Bearer, not {}: {}",
                                         visible ? "'" + shown + "'" : "a scheme with bytes that are not visible ASCII",
                                         k_how),
                        k_field);
    }
    std::string_view token = space == std::string_view::npos ? std::string_view() : header.substr(space);
    while (!token.empty() && is_space(token.front())) token.remove_prefix(1);
    if (token.empty()) return api_fail(401, fmt::format("the Authorization header has no token: {}", k_how), k_field);
    // token68 (RFC 7235 §2.1): its characters, then optional '=' padding only.
    size_t end = 0;
    while (end < token.size() && token68_char(token[end])) ++end;
    size_t padding = end;
    while (padding < token.size() && token[padding] == '=') ++padding;
    if (end == 0 || padding != token.size())
        return api_fail(401, "the bearer token has characters a token cannot have (a space, a quote, ...)", k_field);
    return std::string(token);
}

HttpResponse unauthorized_response(const ApiError& error, bool token_was_sent) {
    HttpResponse response = error_response(error);
    response.headers.emplace_back("WWW-Authenticate", token_was_sent ? R"(Bearer realm="corrald", error="invalid_token")"
                                                                     : R"(Bearer realm="corrald")");
    return response;
}

std::optional<HttpResponse> BearerAuth::check(HttpRequest& request) {
    auto header = request.headers.find("authorization");
    auto token = parse_bearer_token(header == request.headers.end() ? std::string_view() : header->second);
    if (!token) return unauthorized_response(token.error(), header != request.headers.end());
    auto name = m_verify(*token);
    if (!name) {
        log_error("checking a bearer token: {}", name.error().describe());
        return error_response({500, "", "cannot check the bearer token: the inventory failed"});
    }
    if (!*name)
        return unauthorized_response({401, k_field, "the bearer token is not valid: unknown or revoked"}, true);
    request.token_name = **name;
    const auto now = std::chrono::steady_clock::now();
    bool touch = false;
    {
        std::lock_guard lock(m_mutex);
        auto [it, inserted] = m_last_touch.try_emplace(**name, now);
        if (inserted || now - it->second >= std::chrono::minutes(1)) {
            it->second = now;
            touch = true;
        }
    }
    if (touch && m_touch) m_touch(**name);
    return std::nullopt;
}

}  // namespace corral::daemon
