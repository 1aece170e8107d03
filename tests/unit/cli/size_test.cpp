#include "cli/size.h"

#include <gtest/gtest.h>

namespace corral::cli {
namespace {

// parse_size itself is base/size.h (tests/unit/base/size_test.cpp).
TEST(ParseSizeMib, GivesWholeMib) {
    EXPECT_EQ(parse_size_mib("1G").value(), 1024U);
    EXPECT_EQ(parse_size_mib("256M").value(), 256U);
    EXPECT_EQ(parse_size_mib("256").value(), 256U);
    auto partial = parse_size_mib("1000K");
    ASSERT_FALSE(partial);
    EXPECT_NE(partial.error().message().find("whole number of MiB"), std::string::npos);
}

TEST(FormatSize, PrintsShortHumanSizes) {
    EXPECT_EQ(format_size(0), "0");
    EXPECT_EQ(format_size(900), "900");
    EXPECT_EQ(format_size(512ULL << 20), "512M");
    EXPECT_EQ(format_size(1ULL << 30), "1G");
    EXPECT_EQ(format_size(3ULL << 29), "1.5G");
    EXPECT_EQ(format_size(10ULL << 40), "10T");
}

}  // namespace
}  // namespace corral::cli
