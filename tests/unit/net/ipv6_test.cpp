#include "net/ipv6.h"

#include <gtest/gtest.h>

namespace corral::net {
namespace {

TEST(Ipv6, SubnetsHaveNoHostBitsAndAPrefixOf1To128) {
    EXPECT_TRUE(is_ipv6_subnet("fd00:1::/64"));
    EXPECT_TRUE(is_ipv6_subnet("2001:db8::/32"));
    for (const char* bad : {"fd00:1::1/64", "fd00:1::/129", "fd00:1::/0", "fd00:1::/064", "fd00:1::/",
                            "fd00:1::", "10.0.0.0/8", "fd00:1::/64 ", "fd00:::1/64", "fd00:1::/6x"})
        EXPECT_FALSE(is_ipv6_subnet(bad)) << bad;
    auto subnet = parse_ipv6_subnet("FD00:0077:0:0::/64");
    ASSERT_TRUE(subnet);
    EXPECT_EQ(subnet->to_string(), "fd00:77::/64") << "printed in the RFC 5952 form";
    EXPECT_EQ(format_ipv6(subnet->gateway()), "fd00:77::1");
}

TEST(Ipv6, ContainsAndOverlaps) {
    auto wide = *parse_ipv6_subnet("fd00::/16");
    auto narrow = *parse_ipv6_subnet("fd00:77::/64");
    auto other = *parse_ipv6_subnet("fd01:77::/64");
    EXPECT_TRUE(wide.overlaps(narrow));
    EXPECT_TRUE(narrow.overlaps(wide));
    EXPECT_FALSE(narrow.overlaps(other));
    EXPECT_TRUE(narrow.contains(*parse_ipv6("fd00:77::5054:ff:fe12:3456")));
    EXPECT_FALSE(narrow.contains(*parse_ipv6("fd00:78::1")));
}

TEST(Ipv6, SlaacAddressIsThePrefixAndTheModifiedEui64OfTheMac) {
    auto subnet = *parse_ipv6_subnet("fd00:77::/64");
    // RFC 4291 appendix A: ff:fe in the middle, the universal/local bit (0x02 of the first byte) flipped.
    EXPECT_EQ(format_ipv6(*slaac_address(subnet, "52:54:00:12:34:56")), "fd00:77::5054:ff:fe12:3456");
    EXPECT_EQ(format_ipv6(*slaac_address(subnet, "00:16:3e:aa:bb:cc")), "fd00:77::216:3eff:feaa:bbcc");
    EXPECT_EQ(format_ipv6(*slaac_address(subnet, "02:00:00:00:00:01")), "fd00:77::ff:fe00:1");
    for (const char* bad : {"", "52:54:00:12:34", "52:54:00:12:34:5g", "52-54-00-12-34-56", "52:54:00:12:34:56:78"})
        EXPECT_FALSE(slaac_address(subnet, bad)) << bad;
    EXPECT_FALSE(slaac_address(*parse_ipv6_subnet("fd00:77::/48"), "52:54:00:12:34:56")) << "SLAAC needs a /64";
}

}  // namespace
}  // namespace corral::net
