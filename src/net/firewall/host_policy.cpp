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

HostPolicyReport check_host_policy(bool routes_ipv6) {
    HostPolicyReport report;
    std::ifstream forward("/proc/sys/net/ipv4/ip_forward");
    std::string value;
    if (forward >> value && value == "0")
        report.problems.push_back({"net.ipv4.ip_forward is 0: the host does not route, nat networks cannot reach the uplink",
                                   "sysctl -w net.ipv4.ip_forward=1 (and set it in /etc/sysctl.d/ to keep it)"});
    // Not turned on by corrald: host-wide, and it stops the host taking router advertisements
    // on its own uplink unless that interface says accept_ra=2.
    std::ifstream forward6("/proc/sys/net/ipv6/conf/all/forwarding");
    if (routes_ipv6 && forward6 >> value && value == "0")
        report.problems.push_back(
            {"net.ipv6.conf.all.forwarding is 0: nat networks with subnet6 cannot reach the uplink over IPv6",
             "sysctl -w net.ipv6.conf.all.forwarding=1 (an uplink that takes its own address from router "
             "advertisements also needs net.ipv6.conf.UPLINK.accept_ra=2; set both in /etc/sysctl.d/ to keep them)"});

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
        if (chain == item.end() || chain->value("policy", "") != "drop") continue;
        std::string hook = chain->value("hook", "");
        std::string family = chain->value("family", "");
        std::string table = chain->value("table", "");
        std::string name = chain->value("name", "");
        if (table == k_inet_table && family == "inet") continue;
        // iptables-nft shows up as table ip filter, chain FORWARD/INPUT: say it the way its users know it.
        bool iptables = family == "ip" && table == "filter" && (name == "FORWARD" || name == "INPUT");
        if (hook == "forward") {
            std::string fix = iptables ? "iptables -I FORWARD -i <bridge> -j ACCEPT; iptables -I FORWARD -o <bridge> -j ACCEPT "
                                         "(for each corral bridge; or iptables -P FORWARD ACCEPT)"
                                       : fmt::format("nft insert rule {} {} {} iifname <bridge> accept; "
                                                     "nft insert rule {} {} {} oifname <bridge> accept",
                                                     family, table, name, family, table, name);
            report.problems.push_back(
                {fmt::format("chain {} {} {} (hook forward) has policy drop (Docker sets this): it drops VM traffic "
                             "that corral's rules allow",
                             family, table, name),
                 fix});
        } else if (hook == "input") {
            std::string fix = iptables ? "iptables -I INPUT -i <bridge> -p udp -m multiport --dports 53,67 -j ACCEPT; "
                                         "iptables -I INPUT -i <bridge> -p tcp --dport 53 -j ACCEPT"
                                       : fmt::format("nft insert rule {} {} {} iifname <bridge> udp dport {{ 53, 67 }} accept; "
                                                     "nft insert rule {} {} {} iifname <bridge> tcp dport 53 accept",
                                                     family, table, name, family, table, name);
            report.problems.push_back(
                {fmt::format("chain {} {} {} (hook input) has policy drop: VMs' DHCP and DNS requests to the host "
                             "may be dropped",
                             family, table, name),
                 fix});
        }
    }
    return report;
}

}  // namespace corral::net::firewall
