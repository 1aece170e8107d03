#include "daemon/web/web_sessions.h"

#include <algorithm>

#include <fmt/format.h>

#include "daemon/tokens.h"

namespace corral::daemon {

WebSession WebSessions::create(const std::string& token_name) {
    WebSession session;
    // 32 random bytes each (RAND_bytes), the same strength as an API token's secret.
    session.id = generate_token_secret();
    session.csrf_token = generate_token_secret();
    session.token_name = token_name;
    const auto now = Clock::now();
    session.expires = now + m_lifetime;
    std::lock_guard lock(m_mutex);
    sweep(now);
    m_sessions[hash_token(session.id)] = session;
    return session;
}

std::optional<WebSession> WebSessions::find(std::string_view id) {
    if (id.empty())
        return std::nullopt;
    const std::string key = hash_token(id);
    std::lock_guard lock(m_mutex);
    auto it = m_sessions.find(key);
    if (it == m_sessions.end())
        return std::nullopt;
    if (it->second.expires <= Clock::now()) {
        m_sessions.erase(it);
        return std::nullopt;
    }
    return it->second;
}

bool WebSessions::remove(std::string_view id) {
    const std::string key = hash_token(id);
    std::lock_guard lock(m_mutex);
    return m_sessions.erase(key) > 0;
}

void WebSessions::remove_for_token(const std::string& token_name) {
    std::lock_guard lock(m_mutex);
    std::erase_if(m_sessions, [&](const auto& entry) { return entry.second.token_name == token_name; });
}

std::string WebSessions::create_link() {
    std::string code = generate_token_secret();
    const auto now = Clock::now();
    std::lock_guard lock(m_mutex);
    sweep(now);
    m_links[hash_token(code)] = now + m_link_lifetime;
    return code;
}

bool WebSessions::redeem_link(std::string_view code) {
    if (code.empty())
        return false;
    const std::string key = hash_token(code);
    std::lock_guard lock(m_mutex);
    auto it = m_links.find(key);
    if (it == m_links.end())
        return false;
    const bool live = it->second > Clock::now();
    m_links.erase(it);  // used or expired: either way gone
    return live;
}

void WebSessions::sweep(Clock::time_point now) {
    // Run on every creation, so what a stream of sign-ins leaves behind stays bounded by what
    // is live; find() also forgets what it finds expired.
    std::erase_if(m_sessions, [now](const auto& entry) { return entry.second.expires <= now; });
    std::erase_if(m_links, [now](const auto& entry) { return entry.second <= now; });
}

std::string cookie_value(std::string_view header, std::string_view name) {
    // RFC 6265 §5.4: "name=value" pairs separated by "; ".
    while (!header.empty()) {
        const size_t end = header.find(';');
        std::string_view pair = header.substr(0, end);
        header = end == std::string_view::npos ? std::string_view() : header.substr(end + 1);
        while (!pair.empty() && (pair.front() == ' ' || pair.front() == '\t'))
            pair.remove_prefix(1);
        while (!pair.empty() && (pair.back() == ' ' || pair.back() == '\t'))
            pair.remove_suffix(1);
        const size_t equals = pair.find('=');
        if (equals == std::string_view::npos || pair.substr(0, equals) != name)
            continue;
        return std::string(pair.substr(equals + 1));
    }
    return {};
}

std::string session_cookie(const WebSession& session) {
    // Rounded up, so a cookie made at sign-in says the whole lifetime.
    const auto seconds = std::chrono::ceil<std::chrono::seconds>(session.expires - WebSessions::Clock::now()).count();
    // HttpOnly: page scripts never see it (the CSRF token is what they hold). SameSite=Strict:
    // no other site's page makes a browser send it.
    return fmt::format("{}={}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Strict", k_session_cookie, session.id,
                       std::max<long long>(seconds, 0));
}

std::string expired_session_cookie() {
    return fmt::format("{}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict", k_session_cookie);
}

}  // namespace corral::daemon
