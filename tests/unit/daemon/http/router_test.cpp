#include "daemon/http/router.h"

#include <algorithm>
#include <stdexcept>

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

// Route policies are checked by the router before the handler, so no handler can forget them.
TEST(RouterTest, UnixSocketOnlyRoutesAre403OverTcpWithTheReason) {
    Router router;
    bool ran = false;
    router.add("GET", "/api/v1/tokens", [&ran](const HttpRequest&, const PathParams&) -> ApiResult<HttpResponse> {
        ran = true;
        return json_response(200, nlohmann::json::array());
    }, RoutePolicy{.access = Access::UnixSocketOnly, .local_only_reason = "run it on the host", .host_path_fields = {}});
    auto tcp = request("GET", "/api/v1/tokens");
    tcp.origin = Origin::Tls;
    auto refused = router.handle(tcp);
    EXPECT_EQ(refused.status, 403);
    EXPECT_EQ(nlohmann::json::parse(refused.body)["error"]["message"], "run it on the host");
    EXPECT_FALSE(ran);
    EXPECT_EQ(router.handle(request("GET", "/api/v1/tokens")).status, 200);
    EXPECT_TRUE(ran);
}

TEST(RouterTest, HostPathFieldsGoThroughTheCheckOverTcpOnly) {
    Router router;
    int ran = 0;
    router.add("POST", "/api/v1/volumes", [&ran](const HttpRequest&, const PathParams&) -> ApiResult<HttpResponse> {
        ++ran;
        return json_response(201, nlohmann::json::object());
    }, host_paths({"import"}));
    auto post = [&](Origin origin, std::string body) {
        auto r = request("POST", "/api/v1/volumes");
        r.origin = origin;
        r.body = std::move(body);
        return router.handle(r);
    };
    // Without a check every host path over TCP is refused, naming the field.
    auto refused = post(Origin::Tls, R"({"name":"a","import":"/etc/shadow"})");
    EXPECT_EQ(refused.status, 403);
    EXPECT_EQ(nlohmann::json::parse(refused.body)["error"]["field"], "import");
    EXPECT_EQ(ran, 0);
    // Bodies without the field, the unix socket, and values that are not strings pass on.
    EXPECT_EQ(post(Origin::Tls, R"({"name":"a","size":"1G"})").status, 201);
    EXPECT_EQ(post(Origin::UnixSocket, R"({"name":"a","import":"/etc/shadow"})").status, 201);
    EXPECT_EQ(post(Origin::Tls, R"({"import": 7})").status, 201);
    std::vector<std::string> seen;
    router.set_host_path_check([&seen](Origin, const std::string& field, const std::string& path) -> ApiResult<void> {
        seen.push_back(field + "=" + path);
        if (path.starts_with("/srv/ok/")) return {};
        return api_fail(403, "no", field);
    });
    EXPECT_EQ(post(Origin::Tls, R"({"import":"/srv/ok/a.img"})").status, 201);
    EXPECT_EQ(post(Origin::Tls, R"({"import":"/etc/shadow"})").status, 403);
    EXPECT_EQ(seen, (std::vector<std::string>{"import=/srv/ok/a.img", "import=/etc/shadow"}));
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

TEST(RouterTest, StreamingRoutesAreFoundByMethodAndPathAndListed) {
    Router router = sample_router();
    router.add_streaming("PUT", "/api/v1/volumes/{pool}/{name}/content",
                         [](const HttpRequest&, const PathParams& params, BodyReader&) -> ApiResult<StreamResponse> {
                             StreamResponse response;
                             response.head = json_response(201, {{"name", params.at("name")}});
                             return response;
                         });
    PathParams params;
    const StreamHandler* found = router.find_streaming(request("PUT", "/api/v1/volumes/default/v1/content"), params);
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(params.at("pool"), "default");
    EXPECT_EQ(params.at("name"), "v1");
    EXPECT_EQ(router.find_streaming(request("GET", "/api/v1/volumes/default/v1/content"), params), nullptr);
    EXPECT_EQ(router.find_streaming(request("GET", "/api/v1/vms/web1"), params), nullptr);
    // Another method on the path: 405 naming PUT; the method itself through handle(): a 400, not a crash.
    EXPECT_EQ(router.handle(request("GET", "/api/v1/volumes/default/v1/content")).status, 405);
    EXPECT_EQ(router.handle(request("PUT", "/api/v1/volumes/default/v1/content")).status, 400);
    auto routes = router.routes();
    EXPECT_NE(std::find(routes.begin(), routes.end(),
                        std::pair<std::string, std::string>("PUT", "/api/v1/volumes/{pool}/{name}/content")),
              routes.end());
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

TEST(RouterTest, AnIndexParameterIsANumber) {
    Router router;
    router.add("DELETE", "/api/v1/security-groups/{name}/rules/{index}",
               [](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   return json_response(200, {{"index", params.at("index")}});
               });
    auto response = router.handle(request("DELETE", "/api/v1/security-groups/web/rules/12"));
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(nlohmann::json::parse(response.body)["index"], "12");
    for (const char* target : {"/api/v1/security-groups/web/rules/x", "/api/v1/security-groups/web/rules/-1",
                               "/api/v1/security-groups/web/rules/12345", "/api/v1/security-groups/web/rules/1.5",
                               "/api/v1/security-groups/web/rules/%ff"}) {
        auto refused = router.handle(request("DELETE", target));
        EXPECT_EQ(refused.status, 400) << target;
        EXPECT_EQ(nlohmann::json::parse(refused.body)["error"]["field"], "index") << target;
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


Router static_router() {
    Router router;
    router.add("GET", "/ui/{path*}", [](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
        return json_response(200, {{"path", params.at("path")}});
    });
    router.add("GET", "/files/{pool}/{rest*}", [](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
        return json_response(200, {{"pool", params.at("pool")}, {"rest", params.at("rest")}});
    });
    return router;
}

TEST(RouterTest, AWildcardTakesTheRestOfThePath) {
    auto served = [](const char* target) {
        auto response = static_router().handle(request("GET", target));
        EXPECT_EQ(response.status, 200) << target << ": " << response.body;
        return response.status == 200 ? nlohmann::json::parse(response.body).value("path", "?") : "";
    };
    EXPECT_EQ(served("/ui/app.js"), "app.js");
    EXPECT_EQ(served("/ui/css/site.css"), "css/site.css");
    EXPECT_EQ(served("/ui/a//b"), "a/b");
    EXPECT_EQ(served("/ui"), "");
    EXPECT_EQ(served("/ui/"), "");
    EXPECT_EQ(served("/ui/v1.2/app-x_y.min.js"), "v1.2/app-x_y.min.js");
    auto fixed = static_router().handle(request("GET", "/files/default/a/b"));
    ASSERT_EQ(fixed.status, 200);
    EXPECT_EQ(nlohmann::json::parse(fixed.body)["pool"], "default");
    EXPECT_EQ(nlohmann::json::parse(fixed.body)["rest"], "a/b");
    EXPECT_EQ(static_router().handle(request("GET", "/files")).status, 404) << "the fixed segments must be there";
    auto routes = static_router().routes();
    EXPECT_EQ(routes[0].second, "/ui/{path*}");
}

TEST(RouterTest, AWildcardRefusesDotDotEncodedOrNotAndOtherTricks) {
    for (const char* target : {"/ui/..", "/ui/../api/v1/host", "/ui/a/../../etc/passwd", "/ui/%2e%2e/secret",
                               "/ui/%2E%2E", "/ui/a/%2e%2e/b", "/ui/.%2e/x", "/ui/%2e", "/ui/./x", "/ui/.hidden",
                               "/ui/a%2f..%2fb", "/ui/a%5cb", "/ui/%252e%252e", "/ui/a%0ab", "/ui/%7f"}) {
        auto response = static_router().handle(request("GET", target));
        EXPECT_EQ(response.status, 400) << target;
        auto body = nlohmann::json::parse(response.body);
        EXPECT_EQ(body["error"]["field"], "path") << target;
    }
    // A fixed parameter beside a wildcard keeps the name rule.
    auto dotdot = static_router().handle(request("GET", "/files/..%2f/x"));
    EXPECT_EQ(dotdot.status, 400);
    EXPECT_EQ(nlohmann::json::parse(dotdot.body)["error"]["field"], "pool");
    EXPECT_EQ(static_router().handle(request("GET", "/files/Bad/x")).status, 400);
    EXPECT_EQ(static_router().handle(request("GET", "/files/default/%2e%2e")).status, 400);
}

TEST(RouterTest, AWildcardMustBeTheLastSegment) {
    Router router;
    auto handler = [](const HttpRequest&, const PathParams&) -> ApiResult<HttpResponse> { return json_response(200, {}); };
    EXPECT_THROW(router.add("GET", "/ui/{path*}/x", handler), std::invalid_argument);
}

}  // namespace
}  // namespace corral::daemon
