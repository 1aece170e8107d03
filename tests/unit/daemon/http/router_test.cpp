#include "daemon/http/router.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace corral::daemon {
namespace {

HttpRequest request(std::string method, std::string target) {
    HttpRequest r;
    r.method = std::move(method);
    r.target = target;
    EXPECT_TRUE(parse_target(target, r.path, r.query));
    return r;
}

Router sample_router() {
    Router router;
    router.add("GET", "/api/v1/vms/{name}", [](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
        return json_response(200, {{"name", params.at("name")}});
    });
    router.add("PUT", "/api/v1/vms/{name}/state", [](const HttpRequest&, const PathParams&) -> ApiResult<HttpResponse> {
        return api_fail(409, "web1 is running; start needs stopped", "action");
    });
    return router;
}

TEST(RouterTest, CapturesPathParameters) {
    auto response = sample_router().handle(request("GET", "/api/v1/vms/web1"));
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(nlohmann::json::parse(response.body)["name"], "web1");
}

TEST(RouterTest, HandlerErrorsBecomeJsonErrorsWithTheField) {
    auto response = sample_router().handle(request("PUT", "/api/v1/vms/web1/state"));
    EXPECT_EQ(response.status, 409);
    auto body = nlohmann::json::parse(response.body);
    EXPECT_EQ(body["error"]["field"], "action");
    EXPECT_EQ(body["error"]["status"], 409);
    EXPECT_EQ(body["error"]["message"], "web1 is running; start needs stopped");
}

TEST(RouterTest, WrongMethodIs405ListingTheAllowedOnes) {
    auto response = sample_router().handle(request("DELETE", "/api/v1/vms/web1"));
    EXPECT_EQ(response.status, 405);
    ASSERT_EQ(response.headers.size(), 1u);
    EXPECT_EQ(response.headers[0].first, "Allow");
    EXPECT_EQ(response.headers[0].second, "GET");
}

TEST(RouterTest, UnknownPathIs404) {
    EXPECT_EQ(sample_router().handle(request("GET", "/api/v1/vms")).status, 404);
    EXPECT_EQ(sample_router().handle(request("GET", "/api/v1/vms/a/b/c")).status, 404);
}

TEST(RouterTest, ListsItsRoutes) {
    auto routes = sample_router().routes();
    ASSERT_EQ(routes.size(), 2u);
    EXPECT_EQ(routes[1].first, "PUT");
    EXPECT_EQ(routes[1].second, "/api/v1/vms/{name}/state");
}

TEST(HttpMessageTest, DecodesPathAndQuery) {
    std::string path;
    std::map<std::string, std::string> query;
    ASSERT_TRUE(parse_target("/api/v1/vms/a%2Db?volumes=true&x=a+b&flag", path, query));
    EXPECT_EQ(path, "/api/v1/vms/a-b");
    EXPECT_EQ(query["volumes"], "true");
    EXPECT_EQ(query["x"], "a b");
    EXPECT_TRUE(query.contains("flag"));
}

TEST(HttpMessageTest, RefusesBadEscapesAndNul) {
    std::string path;
    std::map<std::string, std::string> query;
    EXPECT_FALSE(parse_target("/a%2", path, query));
    EXPECT_FALSE(parse_target("/a%zz", path, query));
    EXPECT_FALSE(parse_target("/a%00b", path, query));
    EXPECT_FALSE(parse_target("/a?x=%4", path, query));
}

TEST(RouterTest, AnExceptionFromAHandlerIsA500WithARequestId) {
    Router router;
    router.add("GET", "/boom", [](const HttpRequest&, const PathParams&) -> ApiResult<HttpResponse> {
        // What nlohmann throws for a value of the wrong type.
        return json_response(200, {{"n", nlohmann::json("x").get<int>()}});
    });
    auto response = router.handle(request("GET", "/boom"));
    EXPECT_EQ(response.status, 500);
    auto body = nlohmann::json::parse(response.body);
    std::string message = body["error"]["message"];
    EXPECT_EQ(message.rfind("internal error (request id r-", 0), 0u) << message;
    ASSERT_EQ(response.headers.size(), 1u);
    EXPECT_EQ(response.headers[0].first, "X-Request-Id");
    EXPECT_NE(message.find(response.headers[0].second), std::string::npos);
    // The next one gets another id.
    EXPECT_NE(router.handle(request("GET", "/boom")).headers[0].second, response.headers[0].second);
}

TEST(RouterTest, PathParametersMustBeNames) {
    for (const char* target : {"/api/v1/vms/%ff", "/api/v1/vms/..", "/api/v1/vms/Web1", "/api/v1/vms/a%20b",
                               "/api/v1/vms/%c3%a9"}) {
        auto response = sample_router().handle(request("GET", target));
        EXPECT_EQ(response.status, 400) << target;
        auto body = nlohmann::json::parse(response.body);  // valid JSON, whatever the bytes were
        EXPECT_EQ(body["error"]["field"], "name") << target;
    }
}

TEST(RouterTest, ErrorsQuotingInvalidUtf8StayValidJson) {
    Router router;
    router.add("GET", "/x", [](const HttpRequest&, const PathParams&) -> ApiResult<HttpResponse> {
        return api_fail(400, "bad byte \xff here", "f\xfe");
    });
    auto response = router.handle(request("GET", "/x"));
    EXPECT_EQ(response.status, 400);
    auto body = nlohmann::json::parse(response.body);
    EXPECT_EQ(body["error"]["message"], "bad byte \xEF\xBF\xBD here");
    EXPECT_EQ(response.status, 400);
    // An unknown path with such bytes: a 404 that still is JSON.
    auto missing = router.handle(request("GET", "/%ff%fe"));
    EXPECT_EQ(missing.status, 404);
    EXPECT_TRUE(nlohmann::json::accept(missing.body));
}

}  // namespace
}  // namespace corral::daemon
