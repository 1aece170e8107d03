#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "net/firewall/firewall.h"
#include "net/firewall/render_parts.h"
#include "models.h"

namespace corral::net::firewall {
namespace {

std::string golden_path(const std::string& name) {
    return std::string(CORRAL_UNIT_NET_DIR) + "/golden/" + name + ".nft";
}

// CORRAL_UPDATE_GOLDEN=1 rewrites the files instead (then review the diff before committing).
TEST(FirewallRender, MatchesGoldenFiles) {
    for (const auto& [name, model] : testing::golden_models()) {
        SCOPED_TRACE(name);
        ASSERT_TRUE(validate(model)) << validate(model).error().message();
        std::string rendered = render(model);
        if (std::getenv("CORRAL_UPDATE_GOLDEN")) {
            std::ofstream(golden_path(name)) << rendered;
            continue;
        }
        std::ifstream file(golden_path(name));
        ASSERT_TRUE(file) << "missing " << golden_path(name);
        std::stringstream expected;
        expected << file.rdbuf();
        EXPECT_EQ(rendered, expected.str());
    }
}

TEST(FirewallRender, OrderOfTheModelDoesNotMatter) {
    Model model = testing::groups_model();
    Model shuffled = model;
    std::reverse(shuffled.ports.begin(), shuffled.ports.end());
    std::reverse(shuffled.groups.begin(), shuffled.groups.end());
    std::reverse(shuffled.ports.back().groups.begin(), shuffled.ports.back().groups.end());
    EXPECT_EQ(render(model), render(shuffled));
}

TEST(FirewallRender, ReplacesOnlyCorraldsTablesAtomically) {
    std::string script = render(testing::nat_model());
    // Each table is made to exist, deleted, and defined again, all in the one file (= transaction).
    for (std::string table : {"bridge corral", "inet corral", "ip corral_nat", "ip6 corral_nat6"}) {
        auto created = script.find("table " + table + " {}\n");
        auto deleted = script.find("delete table " + table + "\n");
        auto defined = script.find("table " + table + " {\n");
        ASSERT_NE(created, std::string::npos) << table;
        EXPECT_LT(created, deleted) << table;
        EXPECT_LT(deleted, defined) << table;
    }
    EXPECT_EQ(script.find("flush ruleset"), std::string::npos);
}

TEST(FirewallRender, LookupsAreMapsNotAChainPerPort) {
    // 200 ports with the same group: one chain for the group combination, one map element per address.
    Model model = testing::groups_model();
    model.ports.clear();
    for (int i = 0; i < 200; ++i)
        model.ports.push_back({"vm" + std::to_string(i), "default",
                               fmt::format("52:54:00:00:{:02x}:{:02x}", i / 256, i % 256),
                               {fmt::format("10.77.0.{}", i + 2)}, {"ssh"}});
    ASSERT_TRUE(validate(model)) << validate(model).error().message();
    std::string inet = render_inet(sorted_model(model));
    size_t chains = 0;
    for (size_t at = inet.find("\tchain "); at != std::string::npos; at = inet.find("\tchain ", at + 1)) ++chains;
    EXPECT_EQ(chains, 4u);  // in_ssh + forward, input, output
    EXPECT_NE(inet.find("10.77.0.201 : jump in_ssh"), std::string::npos);
}

TEST(FirewallRender, NamesEachGroupRuleInItsComment) {
    std::string script = render(testing::groups_model());
    EXPECT_NE(script.find("comment \"group web rule 0: in tcp 80-443 from 10.0.0.0/8\""), std::string::npos);
    EXPECT_NE(script.find("comment \"group web rule 1: in icmp from ssh\""), std::string::npos);
    EXPECT_NE(script.find("comment \"group ssh rule 0: in tcp 22 from any\""), std::string::npos);
}

// nft resolves a protocol name it has no keyword for (ipv6-icmp) through /etc/protocols, which
// minimal hosts lack: every protocol is written as its number.
TEST(FirewallRender, WritesProtocolNumbersNotNames) {
    Model model = testing::groups_model();
    std::vector<Rule>& rules = model.groups[0].rules;
    for (Direction direction : {Direction::In, Direction::Out})
        for (Protocol protocol : {Protocol::Tcp, Protocol::Udp, Protocol::Icmp, Protocol::Any})
            for (std::string remote : {"", "10.0.0.0/8", "fd00::/8", "web"}) rules.push_back({direction, protocol, 0, 0, remote});
    ASSERT_TRUE(validate(model)) << validate(model).error().message();
    std::string script = render(model);
    EXPECT_NE(script.find("ip6 saddr @grp6_web meta l4proto 58 return"), std::string::npos);
    EXPECT_NE(script.find("ip saddr @grp4_web meta l4proto 1 return"), std::string::npos);
    EXPECT_NE(script.find("ip daddr 10.0.0.0/8 meta l4proto 17 return"), std::string::npos);
    EXPECT_NE(script.find("ip6 daddr fd00::/8 meta l4proto 6 return"), std::string::npos);
    EXPECT_NE(script.find("meta l4proto { 1, 58 } return"), std::string::npos);
    for (const char* name : {"ipv6-icmp", "l4proto tcp", "l4proto udp", "l4proto icmp"})
        EXPECT_EQ(script.find(name), std::string::npos) << name;
}

}  // namespace
}  // namespace corral::net::firewall
