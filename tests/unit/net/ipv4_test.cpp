#include "net/ipv4.h"

#include <gtest/gtest.h>

namespace corral::net {
namespace {

TEST(Ipv4, ParsesDottedQuadsStrictly) {
    EXPECT_EQ(parse_ipv4("10.0.100.1"), 0x0a006401u);
    EXPECT_EQ(parse_ipv4("255.255.255.255"), 0xffffffffu);
    for (const char* bad : {"", "10.0.100", "10.0.100.1.", "10.0.100.256", "10.0.0.01", " 10.0.0.1", "10.0.0.1 ",
                            "10..0.1", "a.b.c.d", "10.0.0.1/24"})
        EXPECT_FALSE(parse_ipv4(bad)) << bad;
    EXPECT_EQ(format_ipv4(0x0a006401u), "10.0.100.1");
}

TEST(Ipv4, SubnetsRefuseHostBitsAndBadPrefixes) {
    auto subnet = parse_ipv4_subnet("10.0.100.0/24");
    ASSERT_TRUE(subnet);
    EXPECT_EQ(subnet->to_string(), "10.0.100.0/24");
    EXPECT_EQ(format_ipv4(subnet->first_host()), "10.0.100.1");
    EXPECT_EQ(format_ipv4(subnet->last_host()), "10.0.100.254");
    EXPECT_TRUE(subnet->contains(*parse_ipv4("10.0.100.77")));
    EXPECT_FALSE(subnet->contains(*parse_ipv4("10.0.101.1")));
    for (const char* bad : {"10.0.100.1/24", "10.0.100.0/33", "10.0.100.0/0", "10.0.100.0/", "10.0.100.0",
                            "10.0.100.0/024", "10.0.100.0/2x"})
        EXPECT_FALSE(parse_ipv4_subnet(bad)) << bad;
}

TEST(Ipv4, Overlaps) {
    auto a = *parse_ipv4_subnet("10.0.0.0/16");
    auto b = *parse_ipv4_subnet("10.0.100.0/24");
    auto c = *parse_ipv4_subnet("10.1.0.0/24");
    EXPECT_TRUE(a.overlaps(b));
    EXPECT_TRUE(b.overlaps(a));
    EXPECT_FALSE(a.overlaps(c));
}

}  // namespace
}  // namespace corral::net
