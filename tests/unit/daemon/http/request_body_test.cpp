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
    EXPECT_EQ(name.error().message, "name must be a string");
}

TEST(RequestBodyTest, MissingRequiredFieldAndBadJson) {
    auto body = RequestBody::parse("");
    ASSERT_TRUE(body);
    auto name = body->required_string("name");
    ASSERT_FALSE(name);
    EXPECT_EQ(name.error().message, "name is required");
    EXPECT_FALSE(RequestBody::parse("{nope"));
    EXPECT_FALSE(RequestBody::parse("[1,2]"));
}

TEST(RequestBodyTest, NestedUnknownKeysNameThePath) {
    auto refused = reject_unknown_keys(nlohmann::json{{"volume", "a"}, {"pol", "b"}}, {"pool", "volume"}, "disks[0]");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().field, "disks[0].pol");
}

TEST(ParseSizeTest, UnitsAndBadInput) {
    EXPECT_EQ(parse_size("512M"), 512ull << 20);
    EXPECT_EQ(parse_size("2G"), 2ull << 30);
    EXPECT_EQ(parse_size("10GiB"), 10ull << 30);
    EXPECT_EQ(parse_size("1048576"), 1048576ull);
    EXPECT_EQ(parse_size("4k"), 4096ull);
    EXPECT_FALSE(parse_size(""));
    EXPECT_FALSE(parse_size("G"));
    EXPECT_FALSE(parse_size("12X"));
    EXPECT_FALSE(parse_size("-1M"));
    EXPECT_FALSE(parse_size("99999999999999999999"));
    EXPECT_FALSE(parse_size("17179869184T"));
}

}  // namespace
}  // namespace corral::daemon
