#include "daemon/network/network_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace corral::daemon {
namespace {

using inventory::NetworkRecord;
using ::testing::HasSubstr;

ApiResult<NetworkRecord> read(const std::string& text, const NetworkRecord* existing = nullptr) {
    auto body = RequestBody::parse(text);
    if (!body) return std::unexpected(body.error());
    auto network = read_network_body(*body, existing);
    if (network) TRY_VOID(body->finish());
    return network;
}

void expect_field(const ApiResult<NetworkRecord>& result, const std::string& field, const std::string& message) {
    ASSERT_FALSE(result) << "expected an error on " << field;
    EXPECT_EQ(result.error().status, 400);
    EXPECT_EQ(result.error().field, field);
    EXPECT_THAT(result.error().message, HasSubstr(message));
}

void expect_field(const ApiResult<void>& result, const std::string& field, const std::string& message) {
    ASSERT_FALSE(result) << "expected an error on " << field;
    EXPECT_EQ(result.error().status, 400);
    EXPECT_EQ(result.error().field, field);
    EXPECT_THAT(result.error().message, HasSubstr(message));
}

TEST(NetworkSpec, DefaultsFollowTheSubnet) {
    auto network = read(R"({"name": "lab", "subnet4": "10.0.101.0/24"})");
    ASSERT_TRUE(network) << network.error().message;
    EXPECT_EQ(network->kind, "nat");
    EXPECT_EQ(network->bridge, "crl-lab");
    EXPECT_EQ(network->gateway4, "10.0.101.1");
    EXPECT_EQ(network->dhcp_start, "10.0.101.128");
    EXPECT_EQ(network->dhcp_end, "10.0.101.254");
    EXPECT_EQ(network->mtu, 1500);
    EXPECT_TRUE(check_network(*network, {}, {}));
    EXPECT_EQ(default_bridge_name("default"), "corral0");
    EXPECT_EQ(default_bridge_name("a-rather-long-name").size(), 15u);
}

TEST(NetworkSpec, EachBadFieldIsNamed) {
    expect_field(read(R"({"name": "lab", "kind": "overlay"})"), "kind", "not one of nat, isolated, bridged, vlan");
    expect_field(read(R"({"name": "lab", "subnet4": "10.0.101.1/24"})"), "subnet4", "is not an IPv4 subnet");
    expect_field(read(R"({"name": "lab", "subnet4": "10.0.101.0/30"})"), "subnet4", "too small");
    expect_field(read(R"({"name": "lab", "gateway4": "10.0.1"})"), "gateway4", "is not an IPv4 address");
    expect_field(read(R"({"name": "v", "kind": "vlan", "parent": "eth0", "vlan_id": 4095})"), "vlan_id",
                 "from 1 to 4094");
    expect_field(read(R"({"name": "v", "kind": "vlan", "parent": "eth0", "vlan_id": 0})"), "vlan_id",
                 "from 1 to 4094");
    expect_field(read(R"({"name": "v", "kind": "vlan", "parent": "eth0"})"), "vlan_id", "required");
    expect_field(read(R"({"name": "lab", "vlan_id": 7})"), "vlan_id", "only for vlan networks");
    expect_field(read(R"({"name": "b", "kind": "bridged"})"), "bridge", "required for a bridged network");
    expect_field(read(R"({"name": "lab", "mtu": 100})"), "mtu", "from 576 to 9000");
    expect_field(read(R"({"name": "lab", "dns_forwarders": ["192.0.2.1", "dns.example"]})"), "dns_forwarders[1]",
                 "not an IP address");
    expect_field(read(R"({"name": "lab", "reservations": [{"mac": "52:54:00:zz:00:01", "ipv4": "10.0.0.2"}]})"),
                 "reservations[0].mac", "not a MAC address");
    expect_field(read(R"({"name": "lab", "colour": "blue"})"), "colour", "unknown field");
    expect_field(read(R"({"name": "lab", "subnet6": "fd00:77::1/64"})"), "subnet6", "is not an IPv6 subnet");
    expect_field(read(R"({"name": "lab", "subnet6": "10.0.101.0/24"})"), "subnet6", "is not an IPv6 subnet");
    expect_field(read(R"({"name": "lab", "subnet6": 64})"), "subnet6", "must be a string");
    expect_field(read(R"({"name": "lab", "subnet6": "fd00:77::/48"})"), "subnet6", "must be a /64");
    expect_field(read(R"({"name": "b", "kind": "bridged", "bridge": "br0", "subnet6": "fd00:77::/64"})"), "subnet6",
                 "for nat and isolated networks");
}

TEST(NetworkSpec, Ipv6SubnetIsKeptInOneSpellingAndMayNotOverlap) {
    auto lab = read(R"({"name": "lab", "subnet4": "10.0.101.0/24", "subnet6": "FD00:0077:0000::/64"})");
    ASSERT_TRUE(lab) << lab.error().message;
    EXPECT_EQ(lab->subnet6, "fd00:77::/64");
    auto other = *read(R"({"name": "other", "subnet4": "10.0.102.0/24", "subnet6": "fd00:77::/64"})");
    expect_field(check_network(*lab, {other}, {}), "subnet6", "overlaps network other's subnet fd00:77::/64");
    EXPECT_TRUE(check_network(*lab, {*lab}, {})) << "its own subnet is no conflict";
    auto cleared = read(R"({"subnet6": ""})", &*lab);
    ASSERT_TRUE(cleared) << cleared.error().message;
    EXPECT_EQ(cleared->subnet6, "");
}

TEST(NetworkSpec, WholeNetworkChecks) {
    auto lab = *read(R"({"name": "lab", "subnet4": "10.0.101.0/24",
                         "reservations": [{"mac": "52:54:00:00:00:01", "ipv4": "10.0.102.5"}]})");
    expect_field(check_network(lab, {}, {}), "reservations[0].ipv4", "10.0.102.5 is outside subnet4 10.0.101.0/24");

    auto gateway_outside = *read(R"({"name": "lab", "subnet4": "10.0.101.0/24", "gateway4": "10.0.9.1"})");
    expect_field(check_network(gateway_outside, {}, {}), "gateway4", "is not a host address of subnet4");

    auto range = *read(R"({"name": "lab", "subnet4": "10.0.101.0/24", "dhcp_start": "10.0.101.200",
                           "dhcp_end": "10.0.101.100"})");
    expect_field(check_network(range, {}, {}), "dhcp_start", "is after dhcp_end");

    auto mine = *read(R"({"name": "lab", "subnet4": "10.0.101.0/24"})");
    auto other = *read(R"({"name": "big", "subnet4": "10.0.0.0/16"})");
    expect_field(check_network(mine, {other}, {}), "subnet4", "overlaps network big's subnet 10.0.0.0/16");
    expect_field(check_network(mine, {}, {{"eth0", *net::parse_ipv4_subnet("10.0.101.0/25")}}), "subnet4",
                 "overlaps 10.0.101.0/25 on the host's interface eth0");
    // Its own bridge carrying its own subnet is no conflict (a restart, an edit).
    EXPECT_TRUE(check_network(mine, {mine}, {{"crl-lab", *net::parse_ipv4_subnet("10.0.101.0/24")}}));
}

TEST(NetworkSpec, EditKeepsNameKindAndBridge) {
    auto lab = *read(R"({"name": "lab", "subnet4": "10.0.101.0/24"})");
    expect_field(read(R"({"kind": "isolated"})", &lab), "kind", "cannot change");
    expect_field(read(R"({"bridge": "br9"})", &lab), "bridge", "cannot change");
    auto moved = read(R"({"subnet4": "10.0.105.0/24", "mtu": 9000})", &lab);
    ASSERT_TRUE(moved) << moved.error().message;
    EXPECT_EQ(moved->gateway4, "10.0.105.1");  // derived again from the new subnet
    EXPECT_EQ(moved->dhcp_start, "10.0.105.128");
    EXPECT_EQ(moved->mtu, 9000);
}

}  // namespace
}  // namespace corral::daemon
