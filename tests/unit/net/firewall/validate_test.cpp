#include <gtest/gtest.h>

#include "net/firewall/firewall.h"
#include "models.h"

namespace corral::net::firewall {
namespace {

std::string error_of(const Model& model) {
    auto result = validate(model);
    if (result) return "valid";
    EXPECT_EQ(result.error().kind(), ErrorKind::Invalid);
    return result.error().message();
}

TEST(FirewallValidate, RepresentativeModelsAreValid) {
    for (const auto& [name, model] : testing::golden_models()) EXPECT_EQ(error_of(model), "valid") << name;
}

TEST(FirewallValidate, BadCidrNamesTheField) {
    Model model = testing::nat_model();
    model.networks[0].subnet4 = "10.77.0.0/33";
    EXPECT_EQ(error_of(model), "networks[0].subnet4: '10.77.0.0/33' is not an IPv4 CIDR of /30 or larger (e.g. 10.77.0.0/24)");
    model.networks[0].subnet4 = "10.77.0/24";
    EXPECT_NE(error_of(model).find("networks[0].subnet4"), std::string::npos);
}

TEST(FirewallValidate, GatewayOutsideItsSubnet) {
    Model model = testing::nat_model();
    model.networks[0].gateway4 = "10.78.0.1";
    EXPECT_EQ(error_of(model), "networks[0].gateway4: 10.78.0.1 is outside the subnet 10.77.0.0/24");
}

TEST(FirewallValidate, UnknownGroupOnAPort) {
    Model model = testing::groups_model();
    model.ports[1].groups = {"nope"};
    EXPECT_EQ(error_of(model), "ports[1].groups: 'nope' is not a known group");
}

TEST(FirewallValidate, UnknownGroupAsARemote) {
    Model model = testing::groups_model();
    model.groups[0].rules[0].remote = "nope";
    EXPECT_EQ(error_of(model), "groups[ssh].rules[0].remote: 'nope' is neither a CIDR nor a known group");
}

TEST(FirewallValidate, PortOutOfRange) {
    Model model = testing::groups_model();
    model.groups[1].rules[0].port_to = 70000;
    EXPECT_EQ(error_of(model), "groups[web].rules[0].port_to: 70000 is out of range 1-65535");
    model.groups[1].rules[0] = {Direction::In, Protocol::Tcp, 0, 22, ""};
    EXPECT_EQ(error_of(model), "groups[web].rules[0].port_from: 0 is out of range 1-65535");
    model.groups[1].rules[0] = {Direction::In, Protocol::Tcp, 443, 80, ""};
    EXPECT_EQ(error_of(model), "groups[web].rules[0].port_to: 80 is below port_from 443");
    model.groups[1].rules[0] = {Direction::In, Protocol::Icmp, 1, 1, ""};
    EXPECT_EQ(error_of(model), "groups[web].rules[0].port_from: ports apply only to tcp and udp rules");
}

TEST(FirewallValidate, GroupsNeedThePortsAddresses) {
    Model model = testing::groups_model();
    model.ports[1].addresses.clear();
    EXPECT_EQ(error_of(model), "ports[1].addresses: a port with groups needs its addresses (groups are enforced by address)");
}

TEST(FirewallValidate, PortsAndNetworks) {
    Model model = testing::nat_model();
    model.ports[0].mac = "52:54:00:00:00";
    EXPECT_EQ(error_of(model), "ports[0].mac: '52:54:00:00:00' is not a MAC address (xx:xx:xx:xx:xx:xx)");
    model = testing::nat_model();
    model.ports[1].addresses = {"10.77.0.2"};
    EXPECT_EQ(error_of(model), "ports[1].addresses: 10.77.0.2 belongs to port tap1 already");
    model = testing::nat_model();
    model.ports[1].tap = "tap1";
    EXPECT_EQ(error_of(model), "ports[1].tap: 'tap1' is used by another port");
    model = testing::nat_model();
    model.ports[0].network = "other";
    EXPECT_EQ(error_of(model), "ports[0].network: 'other' is not a known network");
    model = testing::nat_model();
    model.ports[0].tap = "tap\"; flush ruleset";
    EXPECT_NE(error_of(model).find("ports[0].tap: "), std::string::npos);
    model = testing::nat_model();
    model.networks[0].kind = "routed";
    EXPECT_EQ(error_of(model), "networks[0].kind: 'routed' is not one of nat, isolated, bridged, vlan");
}

}  // namespace
}  // namespace corral::net::firewall
