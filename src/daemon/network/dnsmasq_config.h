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

/// Where one network's dnsmasq keeps its files (all in the network's state folder).
struct DnsmasqPaths {
    std::filesystem::path dir;
    std::filesystem::path config() const { return dir / "dnsmasq.conf"; }
    std::filesystem::path pid_file() const { return dir / "dnsmasq.pid"; }
    std::filesystem::path leases() const { return dir / "leases"; }
    std::filesystem::path log() const { return dir / "dnsmasq.log"; }
};

/// dnsmasq's configuration for a nat or isolated network: DHCP on the network's bridge only,
/// its dynamic range, every fixed host (`dhcp-host`, and `host-record` so a VM's name resolves
/// before it asks for a lease), DNS for the network's names, forwarded upstream for nat networks
/// (isolated ones answer only their own names and give no default route).
///
/// The hosts are in this file rather than in a --dhcp-hostsfile because dnsmasq reads that file
/// (on start and on SIGHUP) after dropping to an unprivileged user that cannot enter corrald's
/// state folder; this file is read as root at start, so a change of hosts restarts dnsmasq (the
/// leases file keeps the leases). Deterministic: the same inputs give the same bytes.
std::string render_dnsmasq_config(const inventory::NetworkRecord& network, const std::vector<DhcpHost>& hosts,
                                  const DnsmasqPaths& paths);

}  // namespace corral::daemon
