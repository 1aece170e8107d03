#include "daemon/web/web_sessions.h"

#include <gtest/gtest.h>

namespace corral::daemon {
namespace {

TEST(WebSessionsTest, ASessionIsFoundByItsIdUntilItIsRemoved) {
    WebSessions sessions(std::chrono::hours(1));
    WebSession made = sessions.create("alice");
    EXPECT_NE(made.id, made.csrf_token);
    auto found = sessions.find(made.id);
    ASSERT_TRUE(found);
    EXPECT_EQ(found->token_name, "alice");
    EXPECT_EQ(found->csrf_token, made.csrf_token);
    EXPECT_FALSE(sessions.find(made.csrf_token)) << "the CSRF token is not a session id";
    EXPECT_FALSE(sessions.find(""));
    EXPECT_TRUE(sessions.remove(made.id));
    EXPECT_FALSE(sessions.find(made.id));
    EXPECT_FALSE(sessions.remove(made.id));
}

TEST(WebSessionsTest, AnExpiredSessionIsNotFound) {
    WebSessions sessions(std::chrono::seconds(0));
    EXPECT_FALSE(sessions.find(sessions.create("alice").id));
}

TEST(WebSessionsTest, RevokingATokenEndsOnlyItsSessions) {
    WebSessions sessions(std::chrono::hours(1));
    auto alice = sessions.create("alice");
    auto bob = sessions.create("bob");
    sessions.remove_for_token("alice");
    EXPECT_FALSE(sessions.find(alice.id));
    EXPECT_TRUE(sessions.find(bob.id));
}

TEST(WebSessionsTest, ALinkWorksOnceAndNotAfterItExpired) {
    WebSessions sessions(std::chrono::hours(1));
    const std::string code = sessions.create_link();
    EXPECT_FALSE(sessions.redeem_link("corral_other"));
    EXPECT_TRUE(sessions.redeem_link(code));
    EXPECT_FALSE(sessions.redeem_link(code));
    WebSessions short_lived(std::chrono::hours(1), std::chrono::seconds(0));
    EXPECT_FALSE(short_lived.redeem_link(short_lived.create_link()));
}

TEST(WebSessionsTest, CookieValueFindsTheNamedCookieOnly) {
    EXPECT_EQ(cookie_value("__Host-corral_session=abc", k_session_cookie), "abc");
    EXPECT_EQ(cookie_value("a=1; __Host-corral_session=abc; b=2", k_session_cookie), "abc");
    EXPECT_EQ(cookie_value("x__Host-corral_session=abc; corral_session=def", k_session_cookie), "");
    EXPECT_EQ(cookie_value("", k_session_cookie), "");
    EXPECT_EQ(cookie_value("__Host-corral_session", k_session_cookie), "");
}

TEST(WebSessionsTest, TheCookieIsHttpOnlySecureStrictWithItsLifetime) {
    WebSessions sessions(std::chrono::seconds(600));
    const std::string cookie = session_cookie(sessions.create("alice"));
    EXPECT_TRUE(cookie.starts_with("__Host-corral_session=corral_")) << cookie;
    EXPECT_NE(cookie.find("; Path=/; Max-Age=600; HttpOnly; Secure; SameSite=Strict"), std::string::npos) << cookie;
    EXPECT_NE(expired_session_cookie().find("Max-Age=0"), std::string::npos);
}

}  // namespace
}  // namespace corral::daemon
