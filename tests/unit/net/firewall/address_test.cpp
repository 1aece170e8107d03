#include <sys/socket.h>

#include <gtest/gtest.h>

#include "net/firewall/address.h"

namespace corral::net::firewall {
namespace {

TEST(FirewallAddress, ParsesCidrsAndBareAddresses) {
    auto v4 = parse_cidr("10.77.0.0/24");
    ASSERT_TRUE(v4);
    EXPECT_EQ(v4->family, AF_INET);
    EXPECT_EQ(v4->prefix, 24);
    EXPECT_EQ(v4->to_string(), "10.77.0.0/24");
    auto host = parse_cidr("10.77.0.5");
    ASSERT_TRUE(host);
    EXPECT_TRUE(host->is_host());
    EXPECT_EQ(host->to_string(), "10.77.0.5");
    auto v6 = parse_cidr("FD77:0::5/64");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->family, AF_INET6);
    EXPECT_EQ(v6->network().to_string(), "fd77::/64");
}

TEST(FirewallAddress, RefusesWhatIsNotOne) {
    for (const char* text : {"", "10.77.0/24", "10.77.0.0/33", "10.77.0.0/", "10.77.0.0/2x", "fd77::/129", "web",
                             "10.77.0.0/-1", "300.1.1.1"})
        EXPECT_FALSE(parse_cidr(text)) << text;
}

TEST(FirewallAddress, Contains) {
    auto subnet = *parse_cidr("10.77.0.0/24");
    EXPECT_TRUE(subnet.contains(*parse_cidr("10.77.0.1")));
    EXPECT_TRUE(subnet.contains(*parse_cidr("10.77.0.0/25")));
    EXPECT_FALSE(subnet.contains(*parse_cidr("10.77.1.1")));
    EXPECT_FALSE(subnet.contains(*parse_cidr("10.77.0.0/16")));
    EXPECT_FALSE(subnet.contains(*parse_cidr("::ffff:10.77.0.1")));
    EXPECT_TRUE(parse_cidr("0.0.0.0/0")->contains(*parse_cidr("192.0.2.1")));
    EXPECT_TRUE(parse_cidr("fe80::/10")->contains(*parse_cidr("fe80::1")));
}

}  // namespace
}  // namespace corral::net::firewall
