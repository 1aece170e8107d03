// corrald's firewall on a real kernel: real nft, real bridges and veths in namespaces of our own
// (net_lab.h), traffic made by busybox nc/ping and python sockets inside the "VMs".

#include <fstream>

#include <gtest/gtest.h>

#include "net/firewall/firewall.h"
#include "net_lab.h"

namespace corral::net::firewall {
namespace {

using corral::net::testing::NetLab;
using corral::net::testing::sh;

// Two VMs a (10.77.0.2, tap fwt1) and b (10.77.0.3, tap fwt2) on nat network "default" (fwbr0,
// uplink fwup0 to the "uplink" namespace 192.0.2.2); c (10.78.0.2, fwt3) and d (10.78.0.3, fwt4)
// on isolated network "lab" (fwbr1).
class FirewallLive : public ::testing::Test {
protected:
    void SetUp() override {
        if (auto reason = NetLab::skip_reason()) GTEST_SKIP() << *reason;
        lab.emplace();
        lab->add_bridge("fwbr0", "10.77.0.1/24");
        lab->add_bridge("fwbr1", "10.78.0.1/24");
        lab->add_vm("a", "fwt1", "fwbr0", "52:54:00:00:00:01", "10.77.0.2/24", "10.77.0.1");
        lab->add_vm("b", "fwt2", "fwbr0", "52:54:00:00:00:02", "10.77.0.3/24", "10.77.0.1");
        lab->add_vm("c", "fwt3", "fwbr1", "52:54:00:00:00:03", "10.78.0.2/24", "10.78.0.1");
        lab->add_vm("d", "fwt4", "fwbr1", "52:54:00:00:00:04", "10.78.0.3/24", "10.78.0.1");
        lab->add_uplink("fwup0", "192.0.2.1/24", "192.0.2.2/24");
        model.networks = {{"default", "fwbr0", "nat", "10.77.0.0/24", "10.77.0.1", "fwup0", std::nullopt},
                          {"lab", "fwbr1", "isolated", "10.78.0.0/24", "10.78.0.1", "", std::nullopt}};
        model.ports = {{"fwt1", "default", "52:54:00:00:00:01", {"10.77.0.2"}, {}},
                       {"fwt2", "default", "52:54:00:00:00:02", {"10.77.0.3"}, {}},
                       {"fwt3", "lab", "52:54:00:00:00:03", {"10.78.0.2"}, {}},
                       {"fwt4", "lab", "52:54:00:00:00:04", {"10.78.0.3"}, {}}};
    }

    void apply_model() {
        auto applied = apply(model);
        ASSERT_TRUE(applied) << applied.error().message();
    }

    std::optional<NetLab> lab;
    Model model;
};

TEST_F(FirewallLive, GroupAllowsSshAndBlocksHttpBetweenVmsOnOneBridge) {
    apply_model();
    ASSERT_EQ(lab->udp_exchange("a", 5000, "b", "10.77.0.255", 5001), "offer-from-5000") << "broadcast without groups";
    model.groups = {{"ssh", {{Direction::In, Protocol::Tcp, 22, 22, ""}}}};
    model.ports[1].groups = {"ssh"};
    apply_model();
    // Broadcast (and multicast, link-local) cannot go around b's groups.
    EXPECT_EQ(lab->udp_exchange("a", 5000, "b", "10.77.0.255", 5001), "");
    EXPECT_EQ(lab->tcp_exchange("a", "b", "10.77.0.3", 22), "hello-22");
    EXPECT_EQ(lab->tcp_exchange("a", "b", "10.77.0.3", 80), "");
    // b has no group limiting what leaves it: its connection to a (no group) passes.
    EXPECT_EQ(lab->tcp_exchange("b", "a", "10.77.0.2", 80), "hello-80");

    // trace reads the installed rules and agrees with what the packets did.
    auto ssh = trace(model, {"fwt1", "fwt2", Protocol::Tcp, 22});
    ASSERT_TRUE(ssh) << ssh.error().message();
    EXPECT_TRUE(ssh->allowed);
    EXPECT_EQ(ssh->rule, "group ssh rule 0: in tcp 22 from any");
    auto http = trace(model, {"fwt1", "10.77.0.3", Protocol::Tcp, 80});
    ASSERT_TRUE(http) << http.error().message();
    EXPECT_FALSE(http->allowed);
    EXPECT_EQ(http->rule, "in_ssh: no group allows it");

    // Changes apply live: a group allowing 80 from a's group, and the same connection passes.
    model.groups.push_back({"web", {{Direction::In, Protocol::Tcp, 80, 80, "clients"}}});
    model.groups.push_back({"clients", {}});
    model.ports[0].groups = {"clients"};
    model.ports[1].groups = {"ssh", "web"};
    apply_model();
    EXPECT_EQ(lab->tcp_exchange("a", "b", "10.77.0.3", 80), "hello-80");
    auto allowed = trace(model, {"fwt1", "fwt2", Protocol::Tcp, 80});
    ASSERT_TRUE(allowed);
    EXPECT_EQ(allowed->rule, "group web rule 0: in tcp 80 from clients");
}

TEST_F(FirewallLive, VmChangingItsMacOrAddressLosesTrafficUntilItRestoresThem) {
    apply_model();
    ASSERT_TRUE(lab->pings("a", "10.77.0.3"));
    // One-way datagrams to b, with b's MAC pinned in a: what arrives shows what the bridge let
    // through, whatever happens to replies (a VM with a new MAC would miss them anyway).
    ASSERT_TRUE(lab->in("a", "ip neigh replace 10.77.0.3 lladdr 52:54:00:00:00:02 dev eth0 nud permanent").ok());
    ASSERT_EQ(lab->udp_exchange("a", 5000, "b", "10.77.0.3", 5001), "offer-from-5000");

    // (A new MAC flushes a's neighbour table, permanent entries too: pin b again.)
    ASSERT_TRUE(lab->in("a", "ip link set eth0 address 52:54:00:00:00:99 && "
                              "ip neigh replace 10.77.0.3 lladdr 52:54:00:00:00:02 dev eth0 nud permanent").ok());
    EXPECT_EQ(lab->udp_exchange("a", 5000, "b", "10.77.0.3", 5001), "") << "a new source MAC passed";
    ASSERT_TRUE(lab->in("a", "ip link set eth0 address 52:54:00:00:00:01").ok());
    EXPECT_EQ(lab->udp_exchange("a", 5000, "b", "10.77.0.3", 5001), "offer-from-5000");
    EXPECT_TRUE(lab->pings("a", "10.77.0.3")) << "the restored MAC did not get its traffic back";

    ASSERT_TRUE(lab->in("a", "ip addr flush dev eth0 && ip addr add 10.77.0.9/24 dev eth0 && "
                              "ip neigh replace 10.77.0.3 lladdr 52:54:00:00:00:02 dev eth0 nud permanent").ok());
    EXPECT_EQ(lab->udp_exchange("a", 5000, "b", "10.77.0.3", 5001), "") << "a new source address passed";
    EXPECT_FALSE(lab->pings("a", "10.77.0.3"));
    // ARP claiming the new address does not reach b either (b would learn 10.77.0.9 from it).
    lab->in("a", "busybox arping -c 1 -w 1 -I eth0 -s 10.77.0.9 10.77.0.3");
    EXPECT_EQ(lab->in("b", "ip neigh show 10.77.0.9").output, "") << "a spoofed ARP sender address passed";
    ASSERT_TRUE(lab->in("a", "ip addr flush dev eth0 && ip addr add 10.77.0.2/24 dev eth0 && "
                              "ip route add default via 10.77.0.1").ok());
    EXPECT_EQ(lab->udp_exchange("a", 5000, "b", "10.77.0.3", 5001), "offer-from-5000");
    EXPECT_TRUE(lab->pings("a", "10.77.0.3")) << "the restored address did not get its traffic back";
}

TEST_F(FirewallLive, DhcpServerReplyFromAVmIsDropped) {
    apply_model();
    // The same datagram from another source port arrives: only the DHCP server port is refused.
    EXPECT_EQ(lab->udp_exchange("a", 6767, "b", "10.77.0.3", 68), "offer-from-6767");
    EXPECT_EQ(lab->udp_exchange("a", 67, "b", "10.77.0.3", 68), "");
}

TEST_F(FirewallLive, NatReachesTheUplinkAndIsolatedDoesNot) {
    apply_model();
    // The uplink namespace has no route to 10.77.0.0/24: replies come home only through NAT.
    EXPECT_TRUE(lab->pings("a", "192.0.2.2"));
    EXPECT_TRUE(lab->pings("c", "10.78.0.3")) << "VMs of an isolated network reach each other";
    EXPECT_FALSE(lab->pings("c", "192.0.2.2"));
    EXPECT_FALSE(lab->pings("c", "10.78.0.1")) << "an isolated network reaches only DHCP/DNS of its host";
    EXPECT_FALSE(lab->pings("c", "10.77.0.2")) << "an isolated network reaches another network";

    auto out = trace(model, {"fwt3", "192.0.2.2", Protocol::Icmp, 0});
    ASSERT_TRUE(out) << out.error().message();
    EXPECT_FALSE(out->allowed);
    EXPECT_EQ(out->rule, "isolated lab: nothing leaves");
    auto nat = trace(model, {"fwt1", "192.0.2.2", Protocol::Icmp, 0});
    ASSERT_TRUE(nat);
    EXPECT_TRUE(nat->allowed);
}

TEST_F(FirewallLive, ApplyingTwiceGivesAByteIdenticalRuleset) {
    model.groups = {{"ssh", {{Direction::In, Protocol::Tcp, 22, 22, "10.0.0.0/8"}}}};
    model.ports[1].groups = {"ssh"};
    apply_model();
    std::string first = sh("nft list ruleset").output;
    apply_model();
    EXPECT_EQ(sh("nft list ruleset").output, first);
    // A restart builds the model in whatever order its inventory gives: the same ruleset.
    std::reverse(model.ports.begin(), model.ports.end());
    std::reverse(model.networks.begin(), model.networks.end());
    apply_model();
    EXPECT_EQ(sh("nft list ruleset").output, first);
    EXPECT_EQ(sh("nft list tables").output, "table bridge corral\ntable inet corral\ntable ip corral_nat\n");
    // Another tool's table is never touched, by apply or by remove_all.
    ASSERT_TRUE(sh("nft add table inet other && nft add chain inet other c").ok());
    apply_model();
    ASSERT_TRUE(remove_all());
    EXPECT_EQ(sh("nft list tables").output, "table inet other\n");
    ASSERT_TRUE(remove_all()) << "removing absent tables is not an error";
}

TEST_F(FirewallLive, AFailedApplyLeavesThePreviousRules) {
    model.groups = {{"ssh", {{Direction::In, Protocol::Tcp, 22, 22, ""}}}};
    model.ports[1].groups = {"ssh"};
    apply_model();
    std::string before = sh("nft list ruleset").output;
    // An nft that adds a rule the kernel refuses at the end of the transaction (after the
    // delete and redefinition of the tables): nothing of it may be committed.
    std::string wrapper = lab->dir() + "/nft-failing";
    std::ofstream(wrapper) << "#!/bin/sh\n{ cat; echo 'add rule inet corral forward jump no_such_chain'; } | nft \"$@\"\n";
    sh("chmod +x " + wrapper);
    ::setenv("CORRAL_NFT", wrapper.c_str(), 1);
    model.ports[1].groups = {};
    auto failed = apply(model);
    ::unsetenv("CORRAL_NFT");
    ASSERT_FALSE(failed);
    EXPECT_NE(failed.error().message().find("nft refused the ruleset (the previous rules stay)"), std::string::npos)
        << failed.error().message();
    EXPECT_NE(failed.error().message().find("no_such_chain"), std::string::npos) << failed.error().message();
    EXPECT_EQ(sh("nft list ruleset").output, before);
    EXPECT_EQ(lab->tcp_exchange("a", "b", "10.77.0.3", 80), "") << "the old group no longer holds";

    // An invalid model never reaches nft.
    model.ports[1].groups = {"nope"};
    auto invalid = apply(model);
    ASSERT_FALSE(invalid);
    EXPECT_EQ(invalid.error().message(), "ports[1].groups: 'nope' is not a known group");
    EXPECT_EQ(sh("nft list ruleset").output, before);
}

TEST_F(FirewallLive, HostPolicyThatDropsVmTrafficIsReportedWithTheFix) {
    apply_model();
    EXPECT_TRUE(check_host_policy().ok());
    ASSERT_TRUE(lab->pings("a", "10.77.0.3"));
    // What Docker does: a forward chain with policy drop (here in nft; iptables-nft is the same).
    ASSERT_TRUE(sh("nft add table ip filter && nft add chain ip filter FORWARD "
                   "'{ type filter hook forward priority 0; policy drop; }' && sysctl -qw net.ipv4.ip_forward=0").ok());
    EXPECT_FALSE(lab->pings("a", "10.77.0.3")) << "the other table's drop policy should hit bridged traffic too";
    HostPolicyReport report = check_host_policy();
    ASSERT_EQ(report.problems.size(), 2u);
    EXPECT_EQ(report.problems[0].problem,
              "net.ipv4.ip_forward is 0: the host does not route, nat networks cannot reach the uplink");
    EXPECT_EQ(report.problems[0].fix, "sysctl -w net.ipv4.ip_forward=1 (and set it in /etc/sysctl.d/ to keep it)");
    EXPECT_NE(report.problems[1].problem.find("chain ip filter FORWARD (hook forward) has policy drop"), std::string::npos);
    EXPECT_NE(report.problems[1].fix.find("iptables -I FORWARD -i <bridge> -j ACCEPT"), std::string::npos);
    sh("nft delete table ip filter; sysctl -qw net.ipv4.ip_forward=1");
    EXPECT_TRUE(lab->pings("a", "10.77.0.3"));
}

}  // namespace
}  // namespace corral::net::firewall
