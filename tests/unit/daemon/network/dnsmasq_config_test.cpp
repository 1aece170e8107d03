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

/// corrald's default network, without forwarders, MTU or reservations.
inventory::NetworkRecord default_nat_network() {
    inventory::NetworkRecord network;
    network.name = "default";
    network.kind = "nat";
    network.bridge = "corral0";
    network.subnet4 = "10.0.100.0/24";
    network.gateway4 = "10.0.100.1";
    network.dhcp_start = "10.0.100.128";
    network.dhcp_end = "10.0.100.254";
    return network;
}

TEST(DnsmasqConfig, NatNetworkWithForwardersMtuAndHosts) {
    inventory::NetworkRecord network = default_nat_network();
    network.mtu = 1400;
    network.dns_forwarders = {"192.0.2.53", "2001:db8::53"};
    // Out of order on purpose: the file is sorted by address, so the same hosts give the same bytes.
    std::vector<DhcpHost> hosts = {{"52:54:00:aa:bb:cc", "10.0.100.10", ""},
                                   {"52:54:00:00:00:03", "10.0.100.3", "web2"},
                                   {"52:54:00:00:00:02", "10.0.100.2", "web1"}};
    const DnsmasqFiles files = render_dnsmasq(network, hosts, DnsmasqPaths::of("/state/networks/default"));
    EXPECT_EQ(files.config, golden("nat.conf"));
    // The hosts are in the lists dnsmasq reads again on SIGHUP, not in the configuration.
    EXPECT_EQ(files.dhcp_hosts, golden("nat.dhcp-hosts"));
    EXPECT_EQ(files.dns_hosts, golden("nat.hosts"));
    // So are the DHCP options and the forwarders: an MTU or forwarders change is a reload too.
    EXPECT_EQ(files.dhcp_opts, golden("nat.dhcp-opts"));
    EXPECT_EQ(files.servers, "server=192.0.2.53\nserver=2001:db8::53\n");
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
    const DnsmasqFiles files = render_dnsmasq(network, {}, DnsmasqPaths::of("/state/networks/lab"));
    EXPECT_EQ(files.config, golden("isolated.conf"));
    EXPECT_EQ(files.dhcp_hosts, "");
    EXPECT_EQ(files.dns_hosts, "");
    EXPECT_EQ(files.dhcp_opts, "option:router\noption:dns-server,172.30.0.1\n");
    EXPECT_EQ(files.servers, "");
}

TEST(DnsmasqConfig, Ipv6SubnetsGetRouterAdvertisementsAndIsolatedOnesNoDefaultRoute) {
    inventory::NetworkRecord network = default_nat_network();
    network.subnet6 = "fd00:77::/64";
    const DnsmasqFiles nat = render_dnsmasq(network, {}, DnsmasqPaths::of("/state/networks/default"));
    EXPECT_EQ(nat.config, golden("nat6.conf"));
    network.name = "lab";
    network.kind = "isolated";
    network.bridge = "crl-lab";
    const DnsmasqFiles isolated = render_dnsmasq(network, {}, DnsmasqPaths::of("/state/networks/lab"));
    EXPECT_EQ(isolated.config, golden("isolated6.conf"));
}

TEST(DnsmasqConfig, WhatDnsmasqReadsAgainOnSighupIsNotInItsConfiguration) {
    inventory::NetworkRecord network = default_nat_network();
    network.dns_forwarders = {"192.0.2.53"};
    const DnsmasqPaths paths = DnsmasqPaths::of("/state/networks/default");
    const DnsmasqFiles before = render_dnsmasq(network, {}, paths);
    auto changed = network;
    changed.mtu = 1400;
    changed.dns_forwarders = {"192.0.2.54"};
    changed.reservations.push_back({"52:54:00:00:00:05", "10.0.100.5", "db"});
    const DnsmasqFiles after = render_dnsmasq(changed, {{"52:54:00:00:00:05", "10.0.100.5", "db"}}, paths);
    EXPECT_EQ(after.config, before.config) << "a reload, not a restart";
    EXPECT_NE(after.dhcp_hosts, before.dhcp_hosts);
    EXPECT_NE(after.dhcp_opts, before.dhcp_opts);
    EXPECT_NE(after.servers, before.servers);
    // Forwarders or none decides whether dnsmasq reads the host's resolv.conf: a restart.
    changed.dns_forwarders.clear();
    EXPECT_NE(render_dnsmasq(changed, {}, paths).config, before.config);
}

TEST(DnsmasqConfig, HostListsAreOutsideTheStateFolderOnePerStateFolderAndNetwork) {
    const DnsmasqPaths a = DnsmasqPaths::of("/state/networks/lab"), b = DnsmasqPaths::of("/other/networks/lab");
    EXPECT_EQ(a.reread_dir.parent_path(), std::filesystem::path(k_dnsmasq_reread_root));
    EXPECT_TRUE(a.reread_dir.filename().string().starts_with("lab-")) << a.reread_dir;
    EXPECT_NE(a.reread_dir, b.reread_dir);
    EXPECT_EQ(a.reread_dir, DnsmasqPaths::of("/state/networks/lab/").reread_dir) << "the same folder, written differently";
    EXPECT_EQ(a.dhcp_hosts().parent_path(), a.reread_dir);
    EXPECT_EQ(a.config(), "/state/networks/lab/dnsmasq.conf");
}

}  // namespace
}  // namespace corral::daemon
