#include "daemon/http/bearer_auth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace corral::daemon {
namespace {

using ::testing::HasSubstr;

TEST(BearerTokenParsing, TakesTheTokenOfABearerHeader) {
    EXPECT_EQ(parse_bearer_token("Bearer corral_abc-DEF_123").value(), "corral_abc-DEF_123");
    // The scheme is case-insensitive (RFC 7235 §2.1); spaces around are tolerated.
    EXPECT_EQ(parse_bearer_token("bearer abc").value(), "abc");
    EXPECT_EQ(parse_bearer_token("BEARER   abc  ").value(), "abc");
    EXPECT_EQ(parse_bearer_token("Bearer\tabc").value(), "abc");
    // token68 allows trailing '=' padding and these characters.
    EXPECT_EQ(parse_bearer_token("Bearer a.b~c+d/e==").value(), "a.b~c+d/e==");
}

void expect_401(std::string_view header, const std::string& message) {
    auto token = parse_bearer_token(header);
    ASSERT_FALSE(token) << header;
    EXPECT_EQ(token.error().status, 401);
    EXPECT_EQ(token.error().field, "Authorization");
    EXPECT_THAT(token.error().message, HasSubstr(message)) << token.error().message;
}

TEST(BearerTokenParsing, RefusesWhatIsNotABearerToken) {
    expect_401("", "needs a bearer token");
    expect_401("   ", "needs a bearer token");
    expect_401("Basic dXNlcjpwYXNz", "must be Bearer, not 'Basic'");
    expect_401("Bearer", "has no token");
    expect_401("Bearer    ", "has no token");
    expect_401("Bearertoken", "must be Bearer");
    expect_401("Bearer two tokens", "characters a token cannot have");
    expect_401("Bearer \"quoted\"", "characters a token cannot have");
    expect_401("Bearer ab=c", "characters a token cannot have");
    expect_401("Bearer =", "characters a token cannot have");
}

HttpRequest with_authorization(std::optional<std::string> value) {
    HttpRequest request;
    request.method = "GET";
    request.path = "/api/v1/vms";
    request.origin = Origin::Tls;
    if (value) request.headers["authorization"] = *value;
    return request;
}

std::string header(const HttpResponse& response, const std::string& name) {
    for (const auto& [key, value] : response.headers)
        if (key == name) return value;
    return {};
}

struct FakeTokens {
    std::vector<std::string> touched;
    BearerAuth auth{[](std::string_view secret) -> Result<std::optional<std::string>> {
                        if (secret == "good-secret") return std::optional<std::string>("ci");
                        if (secret == "broken") return fail("database is locked");
                        return std::optional<std::string>();
                    },
                    [this](const std::string& name) { touched.push_back(name); }};
};

TEST(BearerAuthTest, MissingTokenIs401WithTheChallengeAndTheJsonError) {
    FakeTokens tokens;
    HttpRequest request = with_authorization(std::nullopt);
    auto refusal = tokens.auth.check(request);
    ASSERT_TRUE(refusal);
    EXPECT_EQ(refusal->status, 401);
    EXPECT_EQ(header(*refusal, "WWW-Authenticate"), R"(Bearer realm="corrald")");
    auto body = nlohmann::json::parse(refusal->body);
    EXPECT_EQ(body["error"]["status"], 401);
    EXPECT_EQ(body["error"]["field"], "Authorization");
    EXPECT_THAT(body["error"]["message"].get<std::string>(), HasSubstr("corral token create"));
}

TEST(BearerAuthTest, ASchemeOfAnyBytesIsA401InValidJsonThatDoesNotEchoThem) {
    FakeTokens tokens;
    for (int first = 0x80; first <= 0xff; ++first) {
        std::string value = {static_cast<char>(first), static_cast<char>(0xff), 'x', ' ', 't'};
        HttpRequest request = with_authorization(value);
        auto refusal = tokens.auth.check(request);
        ASSERT_TRUE(refusal);
        EXPECT_EQ(refusal->status, 401);
        auto body = nlohmann::json::parse(refusal->body);  // throws on invalid UTF-8
        EXPECT_THAT(body["error"]["message"].get<std::string>(), HasSubstr("not visible ASCII"));
    }
}

TEST(BearerAuthTest, WrongTokenIs401InvalidToken) {
    FakeTokens tokens;
    HttpRequest request = with_authorization("Bearer wrong");
    auto refusal = tokens.auth.check(request);
    ASSERT_TRUE(refusal);
    EXPECT_EQ(refusal->status, 401);
    EXPECT_EQ(header(*refusal, "WWW-Authenticate"), R"(Bearer realm="corrald", error="invalid_token")");
    EXPECT_EQ(nlohmann::json::parse(refusal->body)["error"]["message"], "the bearer token is not valid: unknown or revoked");
    EXPECT_TRUE(tokens.touched.empty());
}

TEST(BearerAuthTest, GoodTokenPassesNamesTheTokenAndIsTouchedAtMostOnceAMinute) {
    FakeTokens tokens;
    for (int i = 0; i < 3; ++i) {
        HttpRequest request = with_authorization("Bearer good-secret");
        EXPECT_FALSE(tokens.auth.check(request));
        EXPECT_EQ(request.token_name, "ci");
    }
    EXPECT_EQ(tokens.touched, std::vector<std::string>{"ci"});
}

TEST(BearerAuthTest, AFailingStoreIs500NotAPass) {
    FakeTokens tokens;
    HttpRequest request = with_authorization("Bearer broken");
    auto refusal = tokens.auth.check(request);
    ASSERT_TRUE(refusal);
    EXPECT_EQ(refusal->status, 500);
}

}  // namespace
}  // namespace corral::daemon
