#include "daemon/network/dnsmasq_config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace corral::daemon {
namespace {

std::string golden(const std::string& name) {
    std::ifstream file(std::string(CORRAL_SOURCE_DIR) + "/tests/unit/daemon/network/golden/" + name);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
}

TEST(DnsmasqConfig, NatNetworkWithForwardersMtuAndHosts) {
    inventory::NetworkRecord network;
    network.name = "default";
    network.kind = "nat";
    network.bridge = "corral0";
    network.subnet4 = "10.0.100.0/24";
    network.gateway4 = "10.0.100.1";
    network.dhcp_start = "10.0.100.128";
    network.dhcp_end = "10.0.100.254";
    network.mtu = 1400;
    network.dns_forwarders = {"192.0.2.53", "2001:db8::53"};
    // Out of order on purpose: the file is sorted by address, so the same hosts give the same bytes.
    std::vector<DhcpHost> hosts = {{"52:54:00:aa:bb:cc", "10.0.100.10", ""},
                                   {"52:54:00:00:00:03", "10.0.100.3", "web2"},
                                   {"52:54:00:00:00:02", "10.0.100.2", "web1"}};
    EXPECT_EQ(render_dnsmasq_config(network, hosts, DnsmasqPaths{"/state/networks/default"}), golden("nat.conf"));
}

TEST(DnsmasqConfig, IsolatedNetworkForwardsNothingAndGivesNoRoute) {
    inventory::NetworkRecord network;
    network.name = "lab";
    network.kind = "isolated";
    network.bridge = "crl-lab";
    network.subnet4 = "172.30.0.0/26";
    network.gateway4 = "172.30.0.1";
    network.dhcp_start = "172.30.0.64";
    network.dhcp_end = "172.30.0.126";
    network.dns_forwarders = {"192.0.2.53"};  // ignored: nothing leaves an isolated network
    EXPECT_EQ(render_dnsmasq_config(network, {}, DnsmasqPaths{"/state/networks/lab"}), golden("isolated.conf"));
}

}  // namespace
}  // namespace corral::daemon
