// corrald's firewall on a real kernel: real nft, real bridges and veths in namespaces of our own
// (net_lab.h), traffic made by busybox nc/ping and python sockets inside the "VMs".

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "net/firewall/firewall.h"
#include "net_lab.h"

namespace corral::net::firewall {
namespace {

using corral::net::testing::NetLab;
using corral::net::testing::sh;
using corral::net::testing::Shell;

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

TEST_F(FirewallLive, Ipv6GroupsAndAntiSpoofing) {
    for (auto [vm, address] : {std::pair{"a", "fd77::2"}, {"b", "fd77::3"}})
        ASSERT_TRUE(lab->in(vm, std::string("ip -6 addr add ") + address + "/64 dev eth0 nodad").ok());
    model.networks[0].subnet6 = "fd77::/64";
    model.ports[0].addresses.push_back("fd77::2");
    model.ports[1].addresses.push_back("fd77::3");
    model.groups = {{"dns", {{Direction::In, Protocol::Udp, 53, 53, "fd77::/64"}}}};
    model.ports[1].groups = {"dns"};
    apply_model();
    EXPECT_EQ(lab->udp_exchange("a", 5000, "b", "fd77::3", 53), "offer-from-5000");
    EXPECT_EQ(lab->udp_exchange("a", 5000, "b", "fd77::3", 54), "");
    auto verdict = trace(model, {"fwt1", "fd77::3", Protocol::Udp, 53});
    ASSERT_TRUE(verdict) << verdict.error().message();
    EXPECT_EQ(verdict->rule, "group dns rule 0: in udp 53 from fd77::/64");

    // An IPv6 source address that is not the port's is dropped; its own passes again.
    model.ports[1].groups = {};
    apply_model();
    ASSERT_EQ(lab->udp_exchange("a", 5000, "b", "fd77::3", 54), "offer-from-5000");
    ASSERT_TRUE(lab->in("a", "ip -6 addr del fd77::2/64 dev eth0 && ip -6 addr add fd77::9/64 dev eth0 nodad").ok());
    EXPECT_EQ(lab->udp_exchange("a", 5000, "b", "fd77::3", 54), "") << "a new IPv6 source address passed";
    ASSERT_TRUE(lab->in("a", "ip -6 addr del fd77::9/64 dev eth0 && ip -6 addr add fd77::2/64 dev eth0 nodad").ok());
    EXPECT_EQ(lab->udp_exchange("a", 5000, "b", "fd77::3", 54), "offer-from-5000");
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

TEST_F(FirewallLive, Ipv6NatReachesTheUplinkFromAUniqueLocalSubnet) {
    // The host routes IPv6 (in this test's namespace), the uplink namespace has an address of
    // its own and no route to fd77::/64: an answer proves the masquerade.
    ASSERT_TRUE(sh("sysctl -qw net.ipv6.conf.all.forwarding=1 && ip -6 addr add fd77::1/64 dev fwbr0 nodad && "
                   "ip -6 addr add 2001:db8:1::1/64 dev fwup0 nodad")
                    .ok());
    ASSERT_TRUE(lab->in("uplink", "ip -6 addr add 2001:db8:1::2/64 dev eth0 nodad").ok());
    ASSERT_TRUE(lab->in("a", "ip -6 addr add fd77::2/64 dev eth0 nodad && ip -6 route add default via fd77::1").ok());
    model.networks[0].subnet6 = "fd77::/64";
    model.ports[0].addresses.push_back("fd77::2");
    apply_model();
    EXPECT_TRUE(lab->in("a", "busybox ping -6 -c 1 -W 2 2001:db8:1::2 || busybox ping6 -c 1 -W 2 2001:db8:1::2").ok());
    std::string listed = sh("nft list table ip6 corral_nat6").output;
    EXPECT_NE(listed.find("ip6 saddr fd77::/64 ip6 daddr != fd77::/64 oifname \"fwup0\" masquerade"), std::string::npos)
        << listed;
    // Without subnet6 the network carries only link-local IPv6: the port has no IPv6 address of
    // its own any more, so anti-spoofing drops the same ping.
    model.networks[0].subnet6.reset();
    model.ports[0].addresses.pop_back();
    apply_model();
    EXPECT_FALSE(lab->in("a", "busybox ping -6 -c 1 -W 1 2001:db8:1::2 || busybox ping6 -c 1 -W 1 2001:db8:1::2").ok());
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
    EXPECT_EQ(sh("nft list tables").output,
              "table bridge corral\ntable inet corral\ntable ip corral_nat\ntable ip6 corral_nat6\n");
    // Another tool's table is never touched, by apply or by remove_all.
    ASSERT_TRUE(sh("nft add table inet other && nft add chain inet other c").ok());
    apply_model();
    ASSERT_TRUE(remove_all());
    EXPECT_EQ(sh("nft list tables").output, "table inet other\n");
    ASSERT_TRUE(remove_all()) << "removing absent tables is not an error";
}

TEST_F(FirewallLive, ReapplyingKeepsEstablishedConnections) {
    model.groups = {{"ssh", {{Direction::In, Protocol::Tcp, 22, 22, ""}}}};
    model.ports[1].groups = {"ssh"};
    apply_model();
    std::string received = lab->dir() + "/held";
    // nc ends the connection when its stdin ends: the listener's stays open (sleep). timeout
    // runs it in a process group of its own and passes our SIGTERM on to all of it.
    int listener = lab->start("b", "exec timeout 10 sh -c \"sleep 10 | busybox nc -l -p 22 > " + received + "\"");
    ::usleep(300 * 1000);
    // One connection, open across two applies: a group change (b no longer lets new connections
    // in on 22) and the same model again (what a corrald restart does). The open connection keeps
    // going: the tables are replaced, the connection tracking is not.
    int client = lab->start("a", "exec timeout 8 sh -c \"(echo one; sleep 2; echo two) | busybox nc -w 2 10.77.0.3 22\"");
    ::usleep(700 * 1000);
    model.groups.push_back({"web", {{Direction::In, Protocol::Tcp, 80, 80, ""}}});
    model.ports[1].groups = {"web"};
    apply_model();
    apply_model();
    for (int i = 0; i < 60 && sh("grep -q two " + received).status != 0; ++i) ::usleep(100 * 1000);
    for (int pid : {listener, client})
        if (pid > 0) ::kill(pid, SIGTERM);
    std::ifstream file(received);
    std::stringstream text;
    text << file.rdbuf();
    EXPECT_EQ(text.str(), "one\ntwo\n");
    EXPECT_EQ(lab->tcp_exchange("a", "b", "10.77.0.3", 22), "") << "a new connection to 22 passed";
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
    // IPv6 forwarding matters only where a nat network has a subnet6.
    ASSERT_TRUE(sh("sysctl -qw net.ipv6.conf.all.forwarding=0").ok());
    EXPECT_TRUE(check_host_policy(/*routes_ipv6=*/false).ok());
    HostPolicyReport v6 = check_host_policy(/*routes_ipv6=*/true);
    ASSERT_EQ(v6.problems.size(), 1u);
    EXPECT_EQ(v6.problems[0].problem,
              "net.ipv6.conf.all.forwarding is 0: nat networks with subnet6 cannot reach the uplink over IPv6");
    EXPECT_EQ(v6.problems[0].fix.rfind("sysctl -w net.ipv6.conf.all.forwarding=1 ", 0), 0u) << v6.problems[0].fix;
    ASSERT_TRUE(sh("sysctl -qw net.ipv6.conf.all.forwarding=1").ok());
    EXPECT_TRUE(check_host_policy(true).ok());
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
    // A host firewall dropping what it does not know on input (DHCP and DNS from the VMs).
    ASSERT_TRUE(sh("nft add chain ip filter INPUT '{ type filter hook input priority 0; policy drop; }'").ok());
    report = check_host_policy();
    ASSERT_EQ(report.problems.size(), 3u);
    EXPECT_NE(report.problems[2].problem.find("chain ip filter INPUT (hook input) has policy drop"), std::string::npos);
    EXPECT_NE(report.problems[2].fix.find("iptables -I INPUT -i <bridge> -p udp -m multiport --dports 53,67 -j ACCEPT"),
              std::string::npos);
    sh("nft delete table ip filter; sysctl -qw net.ipv4.ip_forward=1");
    EXPECT_TRUE(lab->pings("a", "10.77.0.3"));
}

// nft resolves protocol names it has no keyword for through /etc/protocols, which minimal hosts
// and containers lack. Every kind of rule render() can write loads, and trace reads it back, with
// nft run in a mount namespace where /etc/protocols is an empty file.
TEST_F(FirewallLive, EveryRuleLoadsOnAHostWithoutEtcProtocols) {
    const std::string empty = lab->dir() + "/protocols", wrapper = lab->dir() + "/nft";
    std::ofstream(empty).flush();
    std::ofstream(wrapper) << "#!/bin/sh\n"
                              "[ -e /etc/protocols ] || exec nft \"$@\"\n"
                              "exec unshare --mount sh -c 'mount --bind \"$0\" /etc/protocols && exec nft \"$@\"' "
                           << empty << " \"$@\"\n";
    ASSERT_TRUE(sh("chmod +x " + wrapper).ok());
    ASSERT_EQ(sh("echo 'table inet probe { chain c { meta l4proto ipv6-icmp accept; }; }' | " + wrapper + " -c -f -").status,
              1) << "the wrapper should hide /etc/protocols from nft";

    for (auto [vm, address] : {std::pair{"a", "fd77::2"}, {"b", "fd77::3"}})
        ASSERT_TRUE(lab->in(vm, std::string("ip -6 addr add ") + address + "/64 dev eth0 nodad").ok());
    model.networks[0].subnet6 = "fd77::/64";
    model.ports[0].addresses.push_back("fd77::2");
    model.ports[1].addresses.push_back("fd77::3");
    SecurityGroup every{"every", {}};
    for (Direction direction : {Direction::In, Direction::Out})
        for (Protocol protocol : {Protocol::Tcp, Protocol::Udp, Protocol::Icmp, Protocol::Any})
            for (std::string remote : {"", "10.0.0.0/8", "fd00::/8", "peers"}) {
                every.rules.push_back({direction, protocol, 0, 0, remote});
                if (protocol == Protocol::Tcp || protocol == Protocol::Udp) {
                    every.rules.push_back({direction, protocol, 7000, 7000, remote});
                    every.rules.push_back({direction, protocol, 7001, 7009, remote});
                }
            }
    model.groups = {every, {"peers", {{Direction::In, Protocol::Icmp, 0, 0, "peers"}}}};
    model.ports[0].groups = {"every", "peers"};
    model.ports[1].groups = {"peers"};
    model.ports[2].groups = {"every"};
    ASSERT_TRUE(validate(model)) << validate(model).error().message();

    std::ofstream(lab->dir() + "/ruleset.nft") << render(model);
    Shell check = sh(wrapper + " -c -f " + lab->dir() + "/ruleset.nft 2>&1");
    EXPECT_TRUE(check.ok()) << check.output;

    ASSERT_EQ(::setenv("CORRAL_NFT", wrapper.c_str(), 1), 0);
    auto applied = apply(model);
    auto icmp6 = trace(model, {"fwt1", "fd77::3", Protocol::Icmp, 0});
    auto tcp6 = trace(model, {"fwt1", "fd77::3", Protocol::Tcp, 7005});
    auto udp = trace(model, {"fwt2", "10.77.0.2", Protocol::Udp, 7005});
    Shell listed = sh(wrapper + " list table inet corral");
    ::unsetenv("CORRAL_NFT");
    ASSERT_TRUE(applied) << applied.error().message();
    EXPECT_NE(listed.output.find("ip6 saddr @grp6_peers meta l4proto 58 return"), std::string::npos) << listed.output;

    // trace reads the installed rules, protocol numbers and all.
    ASSERT_TRUE(icmp6) << icmp6.error().message();
    EXPECT_TRUE(icmp6->allowed);
    EXPECT_EQ(icmp6->rule, "group peers rule 0: in icmp from peers");
    ASSERT_TRUE(tcp6) << tcp6.error().message();
    EXPECT_FALSE(tcp6->allowed);
    EXPECT_EQ(tcp6->rule, "in_peers: no group allows it");
    ASSERT_TRUE(udp) << udp.error().message();
    EXPECT_TRUE(udp->allowed);
    EXPECT_EQ(udp->rule, "group every rule 12: in udp from any");
    // And the kernel runs them: a pings b (icmp from group peers), b's udp reaches a, a's tcp does not reach b.
    EXPECT_TRUE(lab->pings("a", "10.77.0.3"));
    EXPECT_EQ(lab->udp_exchange("b", 5000, "a", "10.77.0.2", 7005), "offer-from-5000");
    EXPECT_EQ(lab->tcp_exchange("a", "b", "10.77.0.3", 7005), "");
}

}  // namespace
}  // namespace corral::net::firewall
