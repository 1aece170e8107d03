#include "daemon/network/dnsmasq_config.h"

#include <algorithm>
#include <cstdint>

#include <fmt/format.h>

#include "net/ipv4.h"
#include "net/ipv6.h"

namespace corral::daemon {

DnsmasqPaths DnsmasqPaths::of(const std::filesystem::path& dir) {
    // FNV-1a, not std::hash, whose value may change between builds: the folder must be found
    // again by the next corrald.
    std::filesystem::path normal = dir.lexically_normal();
    if (!normal.has_filename()) normal = normal.parent_path();  // "/state/networks/lab/"
    uint64_t hash = 14695981039346656037ull;
    for (unsigned char c : normal.string()) hash = (hash ^ c) * 1099511628211ull;
    return {dir, std::filesystem::path(k_dnsmasq_reread_root) / fmt::format("{}-{:016x}", normal.filename().string(), hash)};
}

DnsmasqFiles render_dnsmasq(const inventory::NetworkRecord& network, const std::vector<DhcpHost>& hosts,
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
    const auto subnet6 = net::parse_ipv6_subnet(network.subnet6);
    if (subnet6) line(fmt::format("listen-address={}", net::format_ipv6(subnet6->gateway())));
    line(fmt::format("pid-file={}", paths.pid_file().string()));
    line(fmt::format("dhcp-leasefile={}", paths.leases().string()));
    line("no-hosts");  // the host's /etc/hosts is not the network's business
    line("domain-needed");
    line("bogus-priv");
    line(fmt::format("domain={}", network.name));
    line(fmt::format("local=/{}/", network.name));
    // What dnsmasq reads again on SIGHUP is in files of their own (dnsmasq_config.h), so that
    // a change of them reloads dnsmasq instead of restarting it.
    DnsmasqFiles files;
    if (network.kind == "isolated") {
        line("no-resolv");  // nothing leaves an isolated network, DNS questions included
    } else if (!network.dns_forwarders.empty()) {
        line("no-resolv");
        line("strict-order");
        line(fmt::format("servers-file={}", paths.servers().string()));
        for (const auto& server : network.dns_forwarders) files.servers += fmt::format("server={}\n", server);
    }
    line(fmt::format("dhcp-range={},{},{},1h", network.dhcp_start, network.dhcp_end, netmask));
    line("dhcp-authoritative");
    if (subnet6) {
        // Router advertisements of the bridge's /64: guests make their own addresses (SLAAC),
        // ask for the DNS server over stateless DHCPv6, and get AAAA names (ra-names: dnsmasq
        // derives a DHCPv4 client's SLAAC address from its MAC and checks it answers).
        line("enable-ra");
        line(fmt::format("dhcp-range=::,constructor:{},ra-stateless,ra-names,64,1h", network.bridge));
        // An isolated network routes nowhere: a router lifetime of 0 keeps the guests' default
        // route off the bridge (the prefix and the DNS server still come). The MTU is not
        // advertised here: DHCPv4's option sets the interface's, for IPv6 too, and stays a
        // reload (dhcp-optsfile) rather than a restart.
        if (network.kind == "isolated") line(fmt::format("ra-param={},60,0", network.bridge));
    }
    line(fmt::format("dhcp-hostsfile={}", paths.dhcp_hosts().string()));
    line(fmt::format("dhcp-optsfile={}", paths.dhcp_opts().string()));
    line(fmt::format("addn-hosts={}", paths.dns_hosts().string()));
    files.config = out;

    if (network.kind == "isolated")
        files.dhcp_opts += "option:router\n";  // no default route: the gateway forwards nothing
    else
        files.dhcp_opts += fmt::format("option:router,{}\n", network.gateway4);
    files.dhcp_opts += fmt::format("option:dns-server,{}\n", network.gateway4);
    if (network.mtu != 1500) files.dhcp_opts += fmt::format("option:mtu,{}\n", network.mtu);

    std::vector<DhcpHost> sorted = hosts;
    std::sort(sorted.begin(), sorted.end(), [](const DhcpHost& a, const DhcpHost& b) {
        const auto x = net::parse_ipv4(a.ipv4).value_or(0), y = net::parse_ipv4(b.ipv4).value_or(0);
        return x != y ? x < y : a.mac < b.mac;
    });
    for (const auto& host : sorted) {
        if (host.hostname.empty()) {
            files.dhcp_hosts += fmt::format("{},{}\n", host.mac, host.ipv4);
        } else {
            files.dhcp_hosts += fmt::format("{},{},{}\n", host.mac, host.ipv4, host.hostname);
            files.dns_hosts += fmt::format("{} {} {}.{}\n", host.ipv4, host.hostname, host.hostname, network.name);
        }
    }
    return files;
}

}  // namespace corral::daemon
