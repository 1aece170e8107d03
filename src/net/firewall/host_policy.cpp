// check_host_policy(): settings outside corrald's tables that silently drop VM traffic. Docker
// sets iptables' FORWARD policy to DROP; with br_netfilter that drops even bridged VM-to-VM
// frames, and our `accept` cannot override another table's drop (every base chain must accept).

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "net/firewall/firewall.h"
#include "net/firewall/nft.h"

namespace corral::net::firewall {

HostPolicyReport check_host_policy() {
    HostPolicyReport report;
    std::ifstream forward("/proc/sys/net/ipv4/ip_forward");
    std::string value;
    if (forward >> value && value == "0")
        report.problems.push_back({"net.ipv4.ip_forward is 0: the host does not route, nat networks cannot reach the uplink",
                                   "sysctl -w net.ipv4.ip_forward=1 (and set it in /etc/sysctl.d/ to keep it)"});

    // br_netfilter (built in, or the module) shows itself with /proc/sys/net/bridge.
    if (!std::filesystem::exists("/proc/sys/net/bridge"))
        report.problems.push_back(
            {"br_netfilter is not loaded: security groups do not apply between VMs on the same bridge",
             "modprobe br_netfilter (corral's bridges turn on nf_call_iptables for themselves; "
             "sysctl net.bridge.bridge-nf-call-iptables=0 keeps other bridges out of the firewall)"});

    auto run = run_nft({"-j", "list", "chains"});
    if (!run || run->exit_code != 0) return report;
    auto document = nlohmann::json::parse(run->out, nullptr, false);
    if (document.is_discarded() || !document.contains("nftables")) return report;
    for (const auto& item : document["nftables"]) {
        auto chain = item.find("chain");
        if (chain == item.end() || chain->value("hook", "") != "forward" || chain->value("policy", "") != "drop")
            continue;
        std::string family = chain->value("family", "");
        std::string table = chain->value("table", "");
        std::string name = chain->value("name", "");
        if (table == k_inet_table && family == "inet") continue;
        // iptables-nft shows up as table ip filter, chain FORWARD: say it the way its users know it.
        std::string fix = (family == "ip" && table == "filter" && name == "FORWARD")
                              ? "iptables -I FORWARD -i <bridge> -j ACCEPT; iptables -I FORWARD -o <bridge> -j ACCEPT "
                                "(for each corral bridge; or iptables -P FORWARD ACCEPT)"
                              : fmt::format("nft add rule {} {} {} iifname <bridge> accept; and oifname <bridge> accept",
                                            family, table, name);
        report.problems.push_back(
            {fmt::format("chain {} {} {} (hook forward) has policy drop (Docker sets this): it drops VM traffic that "
                         "corral's rules allow",
                         family, table, name),
             fix});
    }
    return report;
}

}  // namespace corral::net::firewall
