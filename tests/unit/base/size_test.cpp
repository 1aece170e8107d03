#include "base/size.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace corral {
namespace {

TEST(ParseSize, BinarySuffixesInAnyCaseWithOptionalBOrIB) {
    EXPECT_EQ(parse_size("512M").value(), 512ULL << 20);
    EXPECT_EQ(parse_size("1G").value(), 1ULL << 30);
    EXPECT_EQ(parse_size("10g").value(), 10ULL << 30);
    EXPECT_EQ(parse_size("10GiB").value(), 10ULL << 30);
    EXPECT_EQ(parse_size("10gib").value(), 10ULL << 30);
    EXPECT_EQ(parse_size("10GB").value(), 10ULL << 30);
    EXPECT_EQ(parse_size("4k").value(), 4096U);
    EXPECT_EQ(parse_size("64K").value(), 65536U);
    EXPECT_EQ(parse_size("2T").value(), 2ULL << 40);
    EXPECT_EQ(parse_size("3P").value(), 3ULL << 50);
    EXPECT_EQ(parse_size("100B").value(), 100U);
    EXPECT_EQ(parse_size("0").value(), 0U);
}

TEST(ParseSize, FractionsThatComeToWholeBytes) {
    EXPECT_EQ(parse_size("1.5G").value(), 3ULL << 29);
    EXPECT_EQ(parse_size("1.5M").value(), 1572864U);
    EXPECT_EQ(parse_size("0.5K").value(), 512U);
    EXPECT_EQ(parse_size("2.000000").value(), 2U);
    auto partial = parse_size("1.3B");
    ASSERT_FALSE(partial) << "fractions of a byte";
    EXPECT_EQ(partial.error().message(), "size '1.3B' is not a whole number of bytes");
    EXPECT_FALSE(parse_size("1.0000001G")) << "at most 6 decimal places";
}

TEST(ParseSize, BareNumbersUseTheGivenUnit) {
    EXPECT_EQ(parse_size("4096").value(), 4096U);
    EXPECT_EQ(parse_size("512", BareUnit::MiB).value(), 512ULL << 20);
    EXPECT_EQ(parse_size("512K", BareUnit::MiB).value(), 512ULL << 10) << "a suffix wins over the bare unit";
}

TEST(ParseSize, OverflowIsTooLargeNeverWrapped) {
    EXPECT_EQ(parse_size("18446744073709551615").value(), UINT64_MAX);
    for (const char* huge : {"18446744073709551616", "99999999999999999999", "16384P", "17179869184T",
                             "16777216T", "18446744073709551615.5K"}) {
        auto result = parse_size(huge);
        ASSERT_FALSE(result) << huge;
        EXPECT_EQ(result.error().message(), fmt::format("size '{}' is too large", huge)) << huge;
        EXPECT_EQ(result.error().kind(), ErrorKind::Invalid);
    }
    EXPECT_EQ(parse_size("16383P").value(), 16383ULL << 50);
    EXPECT_FALSE(parse_size("17592186044416", BareUnit::MiB)) << "2^44 MiB is 2^64 bytes";
}

TEST(ParseSize, GarbageIsRefusedWithExamples) {
    for (const char* bad : {"", "G", "1X", "12Q", "1GG", "-1G", "+1G", "1.G", ".5G", "1 G", " 1G", "1G ", "1Gx",
                            "abc", "0x10", "1e3", "1,5G", "inf", "nan", "1KiBB", "1iB", "1Bi"}) {
        auto result = parse_size(bad);
        ASSERT_FALSE(result) << bad;
        EXPECT_EQ(result.error().kind(), ErrorKind::Invalid) << bad;
    }
    EXPECT_FALSE(parse_size(std::string_view("1\0G", 3))) << "an embedded NUL is not a suffix";
    EXPECT_EQ(parse_size("16383.984375P").value(), (16383ULL << 50) + (63ULL << 44)) << "just below 2^64";
    auto bad = parse_size("12Q");
    EXPECT_EQ(bad.error().message(),
              "invalid size '12Q': expected a number with an optional K, M, G, T or P suffix (binary: 1K = 1024), "
              "such as 512M, 1G or 10G");
}

}  // namespace
}  // namespace corral
