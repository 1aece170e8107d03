#include "base/result.h"

#include <gtest/gtest.h>

namespace corral {
namespace {

Result<int> parse_positive(int value) {
    if (value <= 0) return fail("value must be positive, got " + std::to_string(value));
    return value;
}

Result<int> doubled(int value) {
    int parsed = TRY(parse_positive(value));
    return parsed * 2;
}

TEST(Result, TryPropagatesValue) { EXPECT_EQ(*doubled(4), 8); }

TEST(Result, TryPropagatesError) {
    auto result = doubled(-1);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().message(), "value must be positive, got -1");
}

TEST(Result, DescribeAddsErrno) {
    Error error("opening /nope", ENOENT);
    EXPECT_EQ(error.describe(), "opening /nope: No such file or directory");
    EXPECT_EQ(error.with_context("loading kernel").describe(),
              "loading kernel: opening /nope: No such file or directory");
}

}  // namespace
}  // namespace corral
