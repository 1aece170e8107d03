#include "daemon/http/request_body.h"

#include <gtest/gtest.h>

namespace corral::daemon {
namespace {

TEST(RequestBodyTest, ReadsFieldsAndRefusesUnknownOnes) {
    auto body = RequestBody::parse(R"({"name":"web1","vcpus":2,"memroy_mib":5})");
    ASSERT_TRUE(body);
    EXPECT_EQ(*body->required_string("name"), "web1");
    EXPECT_EQ(**body->optional_uint("vcpus", 1, 4), 2u);
    auto finished = body->finish();
    ASSERT_FALSE(finished);
    EXPECT_EQ(finished.error().status, 400);
    EXPECT_EQ(finished.error().field, "memroy_mib");
}

TEST(RequestBodyTest, RangeErrorsNameTheFieldAndTheRange) {
    auto body = RequestBody::parse(R"({"memory_mib":10,"vcpus":-1,"name":7})");
    ASSERT_TRUE(body);
    auto memory = body->optional_uint("memory_mib", 64, 1024, "MiB");
    ASSERT_FALSE(memory);
    EXPECT_EQ(memory.error().field, "memory_mib");
    EXPECT_EQ(memory.error().message, "memory_mib must be from 64 to 1024 MiB (got 10)");
    EXPECT_FALSE(body->optional_uint("vcpus", 1, 4));
    auto name = body->required_string("name");
    ASSERT_FALSE(name);
    EXPECT_EQ(name.error().message, "name must be a string, not a number");
}

TEST(RequestBodyTest, MissingRequiredFieldAndBadJson) {
    auto body = RequestBody::parse("");
    ASSERT_TRUE(body);
    auto name = body->required_string("name");
    ASSERT_FALSE(name);
    EXPECT_EQ(name.error().message, "name is required (a string)");
    EXPECT_FALSE(RequestBody::parse("{nope"));
    EXPECT_FALSE(RequestBody::parse("[1,2]"));
}

TEST(RequestBodyTest, NestedObjectsAndArrayElementsNameTheirPath) {
    auto body = RequestBody::parse(R"({"disks":[{"volume":"a"},{"volume":7}],"from":{"volume":"x","pol":1}})");
    ASSERT_TRUE(body);
    auto disks = body->optional_objects("disks", 4);
    ASSERT_TRUE(disks);
    ASSERT_EQ((*disks)->size(), 2u);
    EXPECT_EQ(*(**disks)[0].required_string("volume"), "a");
    auto second = (**disks)[1].required_string("volume");
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().field, "disks[1].volume");
    EXPECT_EQ(second.error().message, "disks[1].volume must be a string, not a number");
    auto from = body->optional_object("from");
    ASSERT_TRUE(from && *from);
    EXPECT_EQ(*(*from)->required_string("volume"), "x");
    // The parent's finish() checks its children too.
    auto finished = body->finish();
    ASSERT_FALSE(finished);
    EXPECT_EQ(finished.error().field, "from.pol");
}

TEST(RequestBodyTest, ArrayElementsMustBeObjectsAndBounded) {
    auto body = RequestBody::parse(R"({"disks":[{"volume":"a"},"b"],"nics":[{},{},{}]})");
    ASSERT_TRUE(body);
    auto disks = body->optional_objects("disks", 4);
    ASSERT_FALSE(disks);
    EXPECT_EQ(disks.error().field, "disks[1]");
    EXPECT_EQ(disks.error().message, "disks[1] must be an object, not a string");
    auto nics = body->optional_objects("nics", 2);
    ASSERT_FALSE(nics);
    EXPECT_EQ(nics.error().field, "nics");
}

TEST(RequestBodyTest, EveryWrongTypeIsA400NamingTheField) {
    for (const char* value : {"true", "\"x\"", "[]", "{}", "-1", "1.5", "1e300", "99999999999999999999999"}) {
        auto body = RequestBody::parse(std::string(R"({"n":)") + value + "}");
        ASSERT_TRUE(body) << value;
        auto n = body->optional_uint("n", 0, 100);
        ASSERT_FALSE(n) << value;
        EXPECT_EQ(n.error().status, 400);
        EXPECT_EQ(n.error().field, "n");
    }
    for (const char* value : {"true", "0", "-1", "1.5", "[]", "{}"}) {
        auto body = RequestBody::parse(std::string(R"({"s":)") + value + "}");
        ASSERT_TRUE(body);
        auto s = body->optional_string("s");
        ASSERT_FALSE(s) << value;
        EXPECT_EQ(s.error().field, "s");
        auto b = body->optional_bool("s");
        if (std::string(value) != "true") {
            EXPECT_FALSE(b) << value;
        }
        auto o = body->optional_object("s");
        if (std::string(value) != "{}") {
            EXPECT_FALSE(o) << value;
        }
    }
}

TEST(RequestBodyTest, NullIsAbsentButNotForARequiredField) {
    auto body = RequestBody::parse(R"({"a":null,"b":null})");
    ASSERT_TRUE(body);
    EXPECT_FALSE(*body->optional_uint("a", 0, 1));
    auto b = body->required_string("b");
    ASSERT_FALSE(b);
    EXPECT_EQ(b.error().field, "b");
    EXPECT_TRUE(body->finish());
}

TEST(RequestBodyTest, NulInsideAStringIsRefused) {
    auto body = RequestBody::parse(R"({"path":"/tmp/a\u0000b"})");
    ASSERT_TRUE(body);
    auto path = body->optional_string("path");
    ASSERT_FALSE(path);
    EXPECT_EQ(path.error().field, "path");
}

TEST(RequestBodyTest, DuplicateKeysAreRefusedWithTheirPath) {
    auto top = RequestBody::parse(R"({"name":"a","name":"b"})");
    ASSERT_FALSE(top);
    EXPECT_EQ(top.error().field, "name");
    EXPECT_EQ(top.error().message, "name is given twice");
    auto nested = RequestBody::parse(R"({"disks":[{"volume":"a"},{"pool":"p","pool":"q"}]})");
    ASSERT_FALSE(nested);
    EXPECT_EQ(nested.error().field, "disks[1].pool");
    auto deeper = RequestBody::parse(R"({"a":{"b":[[],[{"c":1,"c":2}]]}})");
    ASSERT_FALSE(deeper);
    EXPECT_EQ(deeper.error().field, "a.b[1][0].c");
    // The same key in two objects is fine.
    EXPECT_TRUE(RequestBody::parse(R"({"disks":[{"volume":"a"},{"volume":"b"}]})"));
}

TEST(RequestBodyTest, TooDeepDocumentsAreRefused) {
    std::string deep = R"({"disks":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
    auto body = RequestBody::parse(deep);
    ASSERT_FALSE(body);
    EXPECT_EQ(body.error().status, 400);
    EXPECT_EQ(body.error().field.substr(0, 8), "disks[0]");
    std::string ok = R"({"a":)" + std::string(30, '[') + std::string(30, ']') + "}";
    EXPECT_TRUE(RequestBody::parse(ok));
}

TEST(RequestBodyTest, NotJsonOrNotAnObject) {
    for (const char* text : {"{nope", "[1,2]", "\"x\"", "1", "{\"a\":1} trailing", "{\"a\":\"\xff\"}"}) {
        auto body = RequestBody::parse(text);
        ASSERT_FALSE(body) << text;
        EXPECT_EQ(body.error().status, 400);
    }
}

TEST(QueryTest, NumbersAreParsedStrictly) {
    HttpRequest request;
    for (const char* text : {"", "-1", "+1", " 1", "1 ", "1.0", "0x10", "99999999999999999999999", "301"}) {
        request.query["wait"] = text;
        auto wait = query_uint(request, "wait", 0, 300);
        ASSERT_FALSE(wait) << text;
        EXPECT_EQ(wait.error().field, "wait");
    }
    request.query["wait"] = "300";
    EXPECT_EQ(**query_uint(request, "wait", 0, 300), 300u);
    request.query.clear();
    EXPECT_FALSE(*query_uint(request, "wait", 0, 300));
    EXPECT_EQ(*query_bool(request, "volumes", false), false);
    request.query["volumes"] = "yes";
    EXPECT_FALSE(query_bool(request, "volumes", false));
}

}  // namespace
}  // namespace corral::daemon
