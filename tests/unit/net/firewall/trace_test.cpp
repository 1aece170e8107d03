// trace's evaluation against a ruleset saved from a real `nft -j list table inet corral` of
// models.h's groups_model() (golden/groups.live.json, nft 1.0.6): the same JSON trace() reads live.

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "net/firewall/evaluate.h"
#include "net/firewall/live_ruleset.h"
#include "models.h"

namespace corral::net::firewall {
namespace {

LiveTable saved_table() {
    std::ifstream file(std::string(CORRAL_UNIT_NET_DIR) + "/golden/groups.live.json");
    std::stringstream text;
    text << file.rdbuf();
    auto table = parse_live_table(text.str());
    EXPECT_TRUE(table) << table.error().message();
    return table ? *table : LiveTable{};
}

// The saved table as `nft -j` prints it on a host without /etc/protocols: protocol numbers
// where the names were.
LiveTable saved_table_without_protocol_names() {
    std::ifstream file(std::string(CORRAL_UNIT_NET_DIR) + "/golden/groups.live.json");
    std::stringstream stream;
    stream << file.rdbuf();
    std::string text = stream.str();
    for (auto [name, number] : {std::pair{"\"tcp\"", "6"}, {"\"icmp\"", "1"}, {"\"ipv6-icmp\"", "58"}}) {
        const std::string from = std::string("\"right\": ") + name, to = std::string("\"right\": ") + number;
        size_t replaced = 0;
        for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()), ++replaced)
            text.replace(at, from.size(), to);
        EXPECT_GT(replaced, 0u) << name;
    }
    auto table = parse_live_table(text);
    EXPECT_TRUE(table) << table.error().message();
    return table ? *table : LiveTable{};
}

TraceVerdict ask(const std::string& from, const std::string& to, Protocol protocol, int port) {
    auto verdict = trace_in(saved_table(), testing::groups_model(), {from, to, protocol, port});
    if (!verdict) ADD_FAILURE() << verdict.error().message();
    return verdict ? *verdict : TraceVerdict{};
}

TEST(FirewallTrace, GroupAllowsSshAndNamesTheRule) {
    TraceVerdict verdict = ask("tap1", "tap2", Protocol::Tcp, 22);
    EXPECT_TRUE(verdict.allowed);
    EXPECT_EQ(verdict.rule, "group ssh rule 0: in tcp 22 from any");
    EXPECT_EQ(verdict.chain, "in_ssh");
    EXPECT_EQ(verdict.path, (std::vector<std::string>{"forward", "in_ssh"}));
}

TEST(FirewallTrace, WhatNoGroupAllowsIsDropped) {
    TraceVerdict verdict = ask("tap1", "tap2", Protocol::Tcp, 80);
    EXPECT_FALSE(verdict.allowed);
    EXPECT_EQ(verdict.rule, "in_ssh: no group allows it");
}

TEST(FirewallTrace, CidrAndGroupRemotes) {
    EXPECT_EQ(ask("tap1", "tap5", Protocol::Tcp, 443).rule, "group web rule 0: in tcp 80-443 from 10.0.0.0/8");
    // tap1 carries no group: the icmp rule (from group ssh) does not let it in.
    EXPECT_FALSE(ask("tap1", "tap5", Protocol::Icmp, 0).allowed);
    TraceVerdict verdict = ask("tap2", "tap5", Protocol::Icmp, 0);
    EXPECT_TRUE(verdict.allowed);
    EXPECT_EQ(verdict.rule, "group web rule 1: in icmp from ssh");
}

TEST(FirewallTrace, OutRulesLimitWhatLeaves) {
    TraceVerdict verdict = ask("tap5", "tap1", Protocol::Tcp, 80);
    EXPECT_FALSE(verdict.allowed);
    EXPECT_EQ(verdict.rule, "out_ssh.web: no group allows it");
    verdict = ask("tap5", "10.77.0.1", Protocol::Udp, 53);
    EXPECT_TRUE(verdict.allowed);
    EXPECT_EQ(verdict.rule, "group web rule 2: out udp 53 to 10.77.0.1");
    EXPECT_EQ(verdict.path.front(), "input");
}

TEST(FirewallTrace, NatNetworkBoundaries) {
    TraceVerdict verdict = ask("192.0.2.9", "tap1", Protocol::Tcp, 22);
    EXPECT_FALSE(verdict.allowed);
    EXPECT_EQ(verdict.rule, "net default: no new connections from outside");
    verdict = ask("tap1", "192.0.2.9", Protocol::Tcp, 443);
    EXPECT_TRUE(verdict.allowed);
    EXPECT_EQ(verdict.rule, "forward policy accept");
}

TEST(FirewallTrace, UnknownEndpointsNameTheField) {
    auto verdict = trace_in(saved_table(), testing::groups_model(), {"tap9", "tap1", Protocol::Tcp, 22});
    ASSERT_FALSE(verdict);
    EXPECT_EQ(verdict.error().message(), "from: 'tap9' is neither a port (tap) nor an address");
    verdict = trace_in(saved_table(), testing::groups_model(), {"tap1", "tap2", Protocol::Tcp, 0});
    ASSERT_FALSE(verdict);
    EXPECT_EQ(verdict.error().message(), "port: 0 is out of range 1-65535");
    verdict = trace_in(saved_table(), testing::groups_model(), {"tap1", "tap2", Protocol::Any, 0});
    ASSERT_FALSE(verdict);
    EXPECT_EQ(verdict.error().message(), "protocol: trace needs tcp, udp or icmp (a packet has one)");
}

TEST(FirewallTrace, UnknownExpressionsAreAnErrorNotAGuess) {
    auto table = parse_live_table(R"({"nftables": [
        {"chain": {"family": "inet", "table": "corral", "name": "forward", "hook": "forward", "policy": "accept"}},
        {"rule": {"chain": "forward", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "skuid"}}, "right": 0}}, {"drop": null}]}}]})");
    ASSERT_TRUE(table);
    auto verdict = trace_in(*table, testing::groups_model(), {"tap1", "tap2", Protocol::Tcp, 22});
    ASSERT_FALSE(verdict);
    EXPECT_EQ(verdict.error().message(), "trace does not know meta skuid");
}

TEST(FirewallTrace, ReadsProtocolNumbersAsWellAsNames) {
    const LiveTable table = saved_table_without_protocol_names();
    auto icmp = trace_in(table, testing::groups_model(), {"tap2", "tap5", Protocol::Icmp, 0});
    ASSERT_TRUE(icmp) << icmp.error().message();
    EXPECT_TRUE(icmp->allowed);
    EXPECT_EQ(icmp->rule, "group web rule 1: in icmp from ssh");
    auto v6 = trace_in(table, testing::groups_model(), {"tap5", "fd00::9", Protocol::Tcp, 80});
    ASSERT_TRUE(v6) << v6.error().message();
    EXPECT_TRUE(v6->allowed);
    EXPECT_EQ(v6->rule, "group web rule 3: out tcp to fd00::/8");
    auto udp = trace_in(table, testing::groups_model(), {"tap5", "fd00::9", Protocol::Udp, 53});
    ASSERT_TRUE(udp) << udp.error().message();
    EXPECT_FALSE(udp->allowed);
}

}  // namespace
}  // namespace corral::net::firewall
