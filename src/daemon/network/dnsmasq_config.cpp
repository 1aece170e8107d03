#include "daemon/network/dnsmasq_config.h"

#include <algorithm>

#include <fmt/format.h>

#include "net/ipv4.h"

namespace corral::daemon {

std::string render_dnsmasq_config(const inventory::NetworkRecord& network, const std::vector<DhcpHost>& hosts,
                                  const DnsmasqPaths& paths) {
    const auto subnet = net::parse_ipv4_subnet(network.subnet4);
    const std::string netmask = subnet ? net::format_ipv4(subnet->mask()) : "255.255.255.0";
    std::string out;
    auto line = [&out](const std::string& text) {
        out += text;
        out += '\n';
    };
    line(fmt::format("# dnsmasq for corrald's {} network {}: generated, rewritten on every change", network.kind,
                     network.name));
    // Only the network's bridge, never the host's other interfaces (a second dnsmasq, or
    // systemd-resolved on 127.0.0.53, may serve those).
    line(fmt::format("interface={}", network.bridge));
    line("bind-interfaces");
    line("except-interface=lo");
    line(fmt::format("listen-address={}", network.gateway4));
    line(fmt::format("pid-file={}", paths.pid_file().string()));
    line(fmt::format("dhcp-leasefile={}", paths.leases().string()));
    line("no-hosts");  // the host's /etc/hosts is not the network's business
    line("domain-needed");
    line("bogus-priv");
    line(fmt::format("domain={}", network.name));
    line(fmt::format("local=/{}/", network.name));
    if (network.kind == "isolated") {
        line("no-resolv");  // nothing leaves an isolated network, DNS questions included
    } else if (!network.dns_forwarders.empty()) {
        line("no-resolv");
        line("strict-order");
        for (const auto& server : network.dns_forwarders) line(fmt::format("server={}", server));
    }
    line(fmt::format("dhcp-range={},{},{},1h", network.dhcp_start, network.dhcp_end, netmask));
    if (network.kind == "isolated")
        line("dhcp-option=option:router");  // no default route: the gateway forwards nothing
    else
        line(fmt::format("dhcp-option=option:router,{}", network.gateway4));
    line(fmt::format("dhcp-option=option:dns-server,{}", network.gateway4));
    if (network.mtu != 1500) line(fmt::format("dhcp-option=option:mtu,{}", network.mtu));
    line("dhcp-authoritative");
    std::vector<DhcpHost> sorted = hosts;
    std::sort(sorted.begin(), sorted.end(), [](const DhcpHost& a, const DhcpHost& b) {
        const auto x = net::parse_ipv4(a.ipv4).value_or(0), y = net::parse_ipv4(b.ipv4).value_or(0);
        return x != y ? x < y : a.mac < b.mac;
    });
    for (const auto& host : sorted) {
        if (host.hostname.empty()) {
            line(fmt::format("dhcp-host={},{}", host.mac, host.ipv4));
        } else {
            line(fmt::format("dhcp-host={},{},{}", host.mac, host.ipv4, host.hostname));
            line(fmt::format("host-record={},{}.{},{}", host.hostname, host.hostname, network.name, host.ipv4));
        }
    }
    return out;
}

}  // namespace corral::daemon
