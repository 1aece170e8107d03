#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace corral::daemon {

/// A signed-in browser (docs/api.md "Web UI sessions"): what its cookie stands for.
struct WebSession {
    std::string id;          ///< the cookie's value (only the session's creator ever sees it)
    std::string csrf_token;  ///< sent back in X-CSRF-Token on every request that changes state
    std::string token_name;  ///< the API token it signed in with ("" for a one-time sign-in link)
    std::chrono::system_clock::time_point expires;
};

/// The web UI's sessions and one-time sign-in links, in memory only: a restarted corrald signs
/// every browser out, which costs a sign-in, while keeping them in the inventory would put
/// live credentials on disk for no gain (corrald restarts are rare, and VMs survive them).
/// Lookups go through the SHA-256 of the presented value, so neither timing nor a memory dump
/// gives a usable cookie. Thread-safe.
class WebSessions {
public:
    using Clock = std::chrono::system_clock;
    /// Sessions last `lifetime` from sign-in (corrald --session-lifetime); sign-in links
    /// `link_lifetime` from their making, and one use.
    explicit WebSessions(std::chrono::seconds lifetime, std::chrono::seconds link_lifetime = std::chrono::minutes(10))
        : m_lifetime(lifetime), m_link_lifetime(link_lifetime) {}

    /// A new session for `token_name`, with fresh random id and CSRF token.
    WebSession create(const std::string& token_name);
    /// The live session whose id is `id`; nullopt when unknown, signed out or expired (an
    /// expired one is forgotten here).
    std::optional<WebSession> find(std::string_view id);
    /// Signs a session out; false when there was none.
    bool remove(std::string_view id);
    /// Ends every session signed in with token `token_name` (the token was revoked).
    void remove_for_token(const std::string& token_name);

    /// A one-time sign-in code (tools/quickstart prints it in a link).
    std::string create_link();
    /// Uses up `code`: true once per live code, false when unknown, used or expired.
    bool redeem_link(std::string_view code);

    std::chrono::seconds lifetime() const { return m_lifetime; }
    std::chrono::seconds link_lifetime() const { return m_link_lifetime; }

private:
    /// Forgets expired sessions and links; m_mutex must be held.
    void sweep(Clock::time_point now);

    const std::chrono::seconds m_lifetime;
    const std::chrono::seconds m_link_lifetime;
    std::mutex m_mutex;                                // guards both maps
    std::map<std::string, WebSession> m_sessions;      // by SHA-256 of the id
    std::map<std::string, Clock::time_point> m_links;  // by SHA-256 of the code: its expiry
};

/// The value of cookie `name` in a Cookie header ("a=1; __Host-corral_session=xyz"), or "" when absent.
std::string cookie_value(std::string_view header, std::string_view name);

/// The Set-Cookie value for a session: HttpOnly, Secure, SameSite=Strict, Path=/, Max-Age.
std::string session_cookie(const WebSession& session);
/// The Set-Cookie value that makes a browser drop the session cookie (sign-out).
std::string expired_session_cookie();

/// The session cookie's name. The __Host- prefix makes browsers refuse it unless it is Secure,
/// for Path=/ and without Domain, so a sibling host cannot plant or shadow it.
inline constexpr std::string_view k_session_cookie = "__Host-corral_session";

}  // namespace corral::daemon
