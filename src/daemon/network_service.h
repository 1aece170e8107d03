#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/event_loop.h"
#include "base/result.h"
#include "daemon/inventory/inventory.h"
#include "daemon/network/dnsmasq_process.h"
#include "net/firewall/firewall.h"

namespace corral::daemon {

/// A DHCP lease as dnsmasq recorded it.
struct Lease {
    int64_t expires = 0;  // seconds since the epoch; 0 = never
    std::string mac;
    std::string ipv4;
    std::string hostname;  // "" when the client sent none
};

/// A stored security-group rule as the firewall's Rule (remote: the group, else the CIDR).
net::firewall::Rule firewall_rule(const inventory::SecurityRuleRecord& rule);

/// The networks corrald manages (docs/api.md "Networks"), beside VmManager: their records in
/// the inventory, their bridges, one supervised dnsmasq per nat or isolated network, and the
/// firewall (net/firewall) rebuilt from the inventory after every change. Every change is all
/// or nothing: a network that cannot be brought up is removed again, an edit that cannot be
/// applied is rolled back to the previous record.
///
/// Errors carry errnos the API maps: ENOENT (no such network), EEXIST (name or bridge taken),
/// EBUSY (in use by a VM, or a change a VM's address forbids), EINVAL (bad value).
class NetworkService {
public:
    /// The NICs on managed networks as the firewall's ports (VmManager's tap names); empty until
    /// VmManager provides them.
    using PortSource = std::function<std::vector<net::firewall::Port>()>;

    /// Whether start() makes the default network on corrald's first start.
    enum class DefaultNetwork { Create, Skip };

    NetworkService(inventory::Inventory& inventory, std::filesystem::path state_dir,
                   DefaultNetwork default_network = DefaultNetwork::Create);
    ~NetworkService();

    /// Creates the default network on corrald's first start, brings every network up (adopting
    /// the dnsmasq a previous corrald left running), removes what belongs to networks that no
    /// longer exist and applies the firewall. A network that fails to come up is logged and
    /// reported by status(), not fatal.
    Result<void> start();
    void set_port_source(PortSource source);

    Result<inventory::NetworkRecord> create(const inventory::NetworkRecord& network);
    Result<inventory::NetworkRecord> edit(const inventory::NetworkRecord& changed);
    Result<void> remove(const std::string& name);
    /// The leases dnsmasq handed out on network `name`, ordered by address.
    Result<std::vector<Lease>> leases(const std::string& name);
    /// {"dnsmasq": {"pid", "restarts", "reloads", "problem"}, "bridge_up", "problems": [...]}: what is live.
    nlohmann::json status(const inventory::NetworkRecord& network);
    /// Host settings that break VM traffic, with their fixes (GET /host, network show).
    nlohmann::json host_policy();
    /// Does a nat network have a subnet6 (so the host's IPv6 forwarding matters)?
    bool routes_ipv6();

    /// An IPv4 address on network `name` for a new NIC: the lowest host address outside the
    /// DHCP range that is not the gateway, reserved, or another NIC's. "" for networks without
    /// a subnet. EBUSY when none is left.
    Result<std::string> allocate_address(const std::string& name, const std::vector<std::string>& also_taken = {});
    /// Defines (or redefines) a VM's NICs on managed networks: each gets its network's bridge
    /// (where the VM's tap goes), a MAC when none was given (kept from `previous` for the same
    /// NIC), and a fixed IPv4 address (kept from `previous`, else allocate_address()). `store`
    /// (VmManager::create or edit) runs while no other definition can take the same addresses;
    /// then the DHCP hosts of every network the VM was or is on are rewritten. ENOENT naming the
    /// network when it does not exist.
    Result<inventory::VmRecord> define_vm(
        inventory::VmRecord vm, const std::vector<inventory::NicRef>& previous,
        const std::function<Result<inventory::VmRecord>(const inventory::VmRecord&)>& store);
    /// After a VM was deleted: its networks' DHCP hosts lose it.
    void vm_removed(const std::vector<inventory::NicRef>& nics);

    /// Rewrites network `name`'s DHCP hosts (after a VM with a NIC on it came or went) and
    /// re-applies the firewall.
    Result<void> refresh(const std::string& name);
    /// Re-applies the firewall from the inventory (and the port source).
    Result<void> apply_firewall();

    /// Security groups (docs/firewall.md). Each change is stored, then the firewall is applied
    /// with it; if the firewall refuses it, the inventory goes back to what it was and the
    /// previous rules stay in force. EEXIST/ENOENT/EBUSY as the inventory says.
    Result<inventory::SecurityGroupRecord> create_group(const inventory::SecurityGroupRecord& group);
    /// Replaces a group's description and rules; running VMs' NICs carrying it change at once.
    Result<inventory::SecurityGroupRecord> update_group(const inventory::SecurityGroupRecord& group);
    /// EBUSY naming the VMs (or the group's rules) that still use it.
    Result<void> remove_group(const std::string& name);
    /// Replaces the groups of NIC `nic` of VM `vm`, live: a running VM's traffic follows at once.
    /// EINVAL when the NIC is not on a managed network that gives it an address (groups filter by
    /// address).
    Result<inventory::VmRecord> set_nic_groups(const std::string& vm, size_t nic, const std::vector<std::string>& groups);

    /// One endpoint of a trace: a VM (its NIC on the network) or an address.
    struct TraceAnswer {
        net::firewall::TraceVerdict verdict;
        std::string from;  ///< "vm web1 (10.0.100.2)" or the address
        std::string to;
    };
    /// Would a new connection from `from` to `to` on network `network` pass, and which rule of
    /// the installed ruleset decides? `from`/`to` are VM names (their NIC on the network) or
    /// addresses. ENOENT/EINVAL naming the field ("from", "to").
    Result<TraceAnswer> trace(const std::string& network, const std::string& from, const std::string& to,
                              net::firewall::Protocol protocol, int port);

    /// The network's folder in the state folder (dnsmasq.conf, leases, pid file, log).
    std::filesystem::path network_dir(const std::string& name) const;

private:
    Result<void> bring_up(const inventory::NetworkRecord& network);  // needs m_mutex
    void tear_down(const inventory::NetworkRecord& network);          // needs m_mutex
    Result<void> apply_firewall_locked();
    /// The firewall's whole desired state: networks and groups from the inventory, the ports
    /// from the port source.
    Result<net::firewall::Model> firewall_model();
    /// Applies the firewall after an inventory change; on failure runs `undo` (which puts the
    /// inventory back) and applies again, so nothing is half-applied.
    Result<void> apply_or_undo(const std::function<void()>& undo);
    /// A NIC that asks for a given address (nics[i].ipv4): inside the subnet, not the gateway,
    /// not another MAC's reservation or another VM's address. EINVAL/EEXIST naming the field.
    Result<void> check_requested_address(const inventory::NetworkRecord& network, const std::string& vm, size_t index,
                                         const inventory::NicRef& nic, const std::vector<std::string>& given);
    Result<std::vector<DhcpHost>> dhcp_hosts(const inventory::NetworkRecord& network);
    DnsmasqProcess& dnsmasq_for(const std::string& name);  // needs m_mutex
    void clean_leftovers();                                 // needs m_mutex
    Result<void> ensure_default_network();                 // needs m_mutex

    inventory::Inventory& m_inventory;
    std::filesystem::path m_dir;  // <state>/networks
    std::unique_ptr<EventLoop> m_loop;
    DefaultNetwork m_default_network;
    PortSource m_ports;
    std::recursive_mutex m_mutex;
    std::map<std::string, std::unique_ptr<DnsmasqProcess>> m_dnsmasq;
    std::map<std::string, std::string> m_problems;  // network -> why it is not (fully) up
    std::string m_firewall_problem;
};

}  // namespace corral::daemon
