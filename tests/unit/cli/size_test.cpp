#include "cli/size.h"

#include <gtest/gtest.h>

namespace corral::cli {
namespace {

TEST(ParseSize, AcceptsBinarySuffixesInAnyCase) {
    EXPECT_EQ(parse_size("512M").value(), 512ULL << 20);
    EXPECT_EQ(parse_size("1G").value(), 1ULL << 30);
    EXPECT_EQ(parse_size("10g").value(), 10ULL << 30);
    EXPECT_EQ(parse_size("10GiB").value(), 10ULL << 30);
    EXPECT_EQ(parse_size("10GB").value(), 10ULL << 30);
    EXPECT_EQ(parse_size("4k").value(), 4096U);
    EXPECT_EQ(parse_size("2T").value(), 2ULL << 40);
    EXPECT_EQ(parse_size("1.5G").value(), 3ULL << 29);
    EXPECT_EQ(parse_size("100B").value(), 100U);
}

TEST(ParseSize, BareNumbersUseTheGivenUnit) {
    EXPECT_EQ(parse_size("4096").value(), 4096U);
    EXPECT_EQ(parse_size("512", BareUnit::MiB).value(), 512ULL << 20);
}

TEST(ParseSize, RejectsWhatIsNotASize) {
    for (const char* bad : {"", "G", "1X", "1GG", "-1G", "1.G", ".5G", "1 G", "1Gx", "abc", "1.0000001G"}) {
        auto result = parse_size(bad);
        EXPECT_FALSE(result) << bad;
    }
    EXPECT_NE(parse_size("12Q").error().message().find("512M"), std::string::npos) << "the error shows examples";
    EXPECT_FALSE(parse_size("99999999999999999999"));
    EXPECT_FALSE(parse_size("20000000P"));
    EXPECT_FALSE(parse_size("1.3B")) << "fractions of a byte";
}

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
