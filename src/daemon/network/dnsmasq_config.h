#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "daemon/inventory/inventory.h"

namespace corral::daemon {

/// A fixed DHCP host of a network: a reservation or a NIC's reserved address.
struct DhcpHost {
    std::string mac;
    std::string ipv4;
    std::string hostname;  // "" = none; else a DNS label (VM names are)
    bool operator==(const DhcpHost&) const = default;
};

/// Where one network's dnsmasq keeps its files: the configuration, pid file, leases and log in the
/// network's state folder; what it reads again on SIGHUP (the fixed hosts, the DHCP options, the
/// DNS forwarders) in `reread_dir`.
///
/// dnsmasq reads those (on start and on SIGHUP) after dropping to an unprivileged user (nobody),
/// which cannot enter corrald's state folder (0750). So they live in a folder of their own under
/// /run that anyone may read, as libvirt keeps them in /var/lib/libvirt/dnsmasq: MACs, addresses,
/// names and options that the network's DHCP and DNS hand to anyone who asks anyway. Only root
/// writes there.
struct DnsmasqPaths {
    std::filesystem::path dir;
    std::filesystem::path reread_dir;
    std::filesystem::path config() const { return dir / "dnsmasq.conf"; }
    std::filesystem::path pid_file() const { return dir / "dnsmasq.pid"; }
    std::filesystem::path leases() const { return dir / "leases"; }
    std::filesystem::path log() const { return dir / "dnsmasq.log"; }
    /// MAC,address[,name] per line (`dhcp-hostsfile`).
    std::filesystem::path dhcp_hosts() const { return reread_dir / "dhcp-hosts"; }
    /// "address name name.network" per line (`addn-hosts`).
    std::filesystem::path dns_hosts() const { return reread_dir / "hosts"; }
    /// One DHCP option per line (`dhcp-optsfile`): router, DNS server, MTU.
    std::filesystem::path dhcp_opts() const { return reread_dir / "dhcp-opts"; }
    /// "server=ADDRESS" per line (`servers-file`): the DNS forwarders of a nat network.
    std::filesystem::path servers() const { return reread_dir / "servers"; }

    /// The paths of the network whose state folder is `dir`: reread_dir is
    /// k_dnsmasq_reread_root/<network>-<hash of dir>, so two corralds (two state folders) on one
    /// host never share one.
    static DnsmasqPaths of(const std::filesystem::path& dir);
};

/// Where every network's reread_dir is made (0755, root's).
inline constexpr const char* k_dnsmasq_reread_root = "/run/corral-dnsmasq";

/// What dnsmasq reads: its configuration (once, at start: a change means a restart) and the
/// files it reads again on SIGHUP (a change of only those means a reload, which keeps the
/// process, its leases and its sockets).
struct DnsmasqFiles {
    std::string config;
    std::string dhcp_hosts;
    std::string dns_hosts;
    std::string dhcp_opts;
    std::string servers;
    bool operator==(const DnsmasqFiles&) const = default;
};

/// dnsmasq's files for a nat or isolated network: DHCP on the network's bridge only, its dynamic
/// range, every fixed host (a `dhcp-hostsfile` line, and an `addn-hosts` line so a VM's name
/// resolves before it asks for a lease), DNS for the network's names, forwarded upstream for nat
/// networks (isolated ones answer only their own names and give no default route). A change of
/// the fixed hosts, the MTU or a non-empty list of forwarders touches only the files read again on
/// SIGHUP; a change of the subnet, the range or between no forwarders and some changes the
/// configuration.
/// Deterministic: the same inputs give the same bytes.
DnsmasqFiles render_dnsmasq(const inventory::NetworkRecord& network, const std::vector<DhcpHost>& hosts,
                            const DnsmasqPaths& paths);

}  // namespace corral::daemon
