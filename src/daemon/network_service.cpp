#include "daemon/network_service.h"

#include <net/if.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "base/log.h"
#include "daemon/network/dnsmasq_config.h"
#include "daemon/network/network_spec.h"
#include "engine/process.h"
#include "net/bridge.h"
#include "net/interface_ipv6.h"
#include "net/ipv4.h"
#include "net/ipv6.h"

namespace corral::daemon {

namespace fs = std::filesystem;
using inventory::NetworkRecord;

namespace {

bool runs_dnsmasq(const NetworkRecord& network) {
    return network.kind == "nat" || network.kind == "isolated";
}

/// Bridges corrald made (and removes with the network); a bridged network's bridge is the host's.
bool owns_bridge(const NetworkRecord& network) {
    return network.kind != "bridged";
}

net::firewall::Network firewall_network(const NetworkRecord& network) {
    net::firewall::Network out;
    out.name = network.name;
    out.bridge = network.bridge;
    out.kind = network.kind;
    out.subnet4 = network.subnet4;
    out.gateway4 = network.gateway4;
    if (!network.subnet6.empty()) out.subnet6 = network.subnet6;
    return out;
}

}  // namespace

net::firewall::Rule firewall_rule(const inventory::SecurityRuleRecord& rule) {
    using net::firewall::Protocol;
    net::firewall::Rule out;
    out.direction = rule.direction == "out" ? net::firewall::Direction::Out : net::firewall::Direction::In;
    out.protocol = rule.protocol == "tcp"    ? Protocol::Tcp
                   : rule.protocol == "udp"  ? Protocol::Udp
                   : rule.protocol == "icmp" ? Protocol::Icmp
                                             : Protocol::Any;
    out.port_from = rule.port_from;
    out.port_to = rule.port_to;
    out.remote = rule.remote_group.empty() ? rule.remote_cidr : rule.remote_group;
    return out;
}

NetworkService::NetworkService(inventory::Inventory& inventory, fs::path state_dir, DefaultNetwork default_network)
    : m_inventory(inventory), m_dir(std::move(state_dir) / "networks"), m_default_network(default_network) {}

NetworkService::~NetworkService() {
    // dnsmasq keeps running (the next corrald adopts it); stop watching before the loop goes.
    std::lock_guard lock(m_mutex);
    m_dnsmasq.clear();
    if (m_loop) m_loop->stop();
}

fs::path NetworkService::network_dir(const std::string& name) const {
    return m_dir / name;
}

void NetworkService::set_port_source(PortSource source) {
    std::lock_guard lock(m_mutex);
    m_ports = std::move(source);
}

DnsmasqProcess& NetworkService::dnsmasq_for(const std::string& name) {
    auto& slot = m_dnsmasq[name];
    if (!slot) slot = std::make_unique<DnsmasqProcess>(name, DnsmasqPaths::of(network_dir(name)), *m_loop);
    return *slot;
}

Result<void> NetworkService::ensure_default_network() {
    // Once only: an administrator who deletes the default network does not get it back.
    const fs::path marker = m_dir / "default-network-created";
    std::error_code error;
    if (fs::exists(marker, error)) return {};
    auto networks = TRY(m_inventory.list_networks());
    if (networks.empty()) {
        std::vector<net::Ipv4Subnet> taken;
        for (const auto& used : net::host_ipv4_subnets()) taken.push_back(used.subnet);
        auto subnet = pick_free_subnet(taken);
        if (!subnet) return fail("no free /24 in 10.0.100.0 - 10.0.254.0 for the default network");
        NetworkRecord network;
        network.name = "default";
        network.kind = "nat";
        network.bridge = default_bridge_name("default");
        network.subnet4 = subnet->to_string();
        network.gateway4 = net::format_ipv4(subnet->first_host());
        network.dhcp_start = net::format_ipv4(subnet->network + 128);
        network.dhcp_end = net::format_ipv4(subnet->last_host());
        TRY(m_inventory.create_network(network));
        log_info("created the default network ({} on bridge {})", network.subnet4, network.bridge);
    }
    TRY_VOID(engine::write_file_atomic(marker, "corrald made the default network once; it is not made again\n"));
    return {};
}

Result<void> NetworkService::start() {
    std::lock_guard lock(m_mutex);
    std::error_code error;
    fs::create_directories(m_dir, error);
    if (error) return fail(fmt::format("creating {}: {}", m_dir.string(), error.message()), error.value());
    m_loop = TRY(EventLoop::start("corral-net"));
    if (m_default_network == DefaultNetwork::Create)
        TRY_CONTEXT(ensure_default_network(), "creating the default network");
    clean_leftovers();
    const auto networks = TRY(m_inventory.list_networks());
    // No networks, no tables: a corrald without networks (tests sharing the host's namespace)
    // leaves the host's nftables alone.
    if (networks.empty()) return {};
    for (const auto& network : networks) {
        if (auto up = bring_up(network); !up) {
            m_problems[network.name] = up.error().describe();
            log_error("network {}: {}", network.name, up.error().describe());
        }
    }
    if (auto applied = apply_firewall_locked(); !applied)
        log_error("applying the firewall: {}", applied.error().describe());
    for (const auto& problem : net::firewall::check_host_policy(routes_ipv6()).problems)
        log_warning("host policy: {} (fix: {})", problem.problem, problem.fix);
    return {};
}

void NetworkService::clean_leftovers() {
    // Folders of networks deleted while no corrald ran (or whose deletion was cut short): stop
    // their dnsmasq and remove their bridge, named in the configuration we wrote.
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(m_dir, error)) {
        if (!entry.is_directory()) continue;
        const std::string name = entry.path().filename().string();
        if (m_inventory.get_network(name)) continue;
        const DnsmasqPaths paths = DnsmasqPaths::of(entry.path());
        DnsmasqProcess leftover(name, paths, *m_loop);
        std::string bridge;
        if (auto config = engine::read_text_file(paths.config())) {
            std::istringstream lines(*config);
            for (std::string line; std::getline(lines, line);)
                if (line.rfind("interface=", 0) == 0) bridge = line.substr(10);
        }
        leftover.stop();  // the dnsmasq running on its configuration, if any
        if (!bridge.empty() && net::bridge_exists(bridge)) (void)net::delete_bridge(bridge);
        fs::remove_all(paths.reread_dir, error);
        fs::remove_all(entry.path(), error);
        log_info("removed what was left of network {}", name);
    }
}

Result<std::vector<DhcpHost>> NetworkService::dhcp_hosts(const NetworkRecord& network) {
    std::vector<DhcpHost> hosts;
    for (const auto& reservation : network.reservations)
        hosts.push_back({reservation.mac, reservation.ipv4, reservation.hostname});
    for (const auto& vm : TRY(m_inventory.list_vms())) {
        for (size_t i = 0; i < vm.nics.size(); ++i) {
            const auto& nic = vm.nics[i];
            if (nic.network != network.name || nic.ipv4.empty() || nic.mac.empty()) continue;
            // The VM's first NIC on the network carries its name in DNS; others are "<vm>-nicN".
            hosts.push_back({nic.mac, nic.ipv4, i == 0 ? vm.name : fmt::format("{}-nic{}", vm.name, i)});
        }
    }
    return hosts;
}

Result<void> NetworkService::bring_up(const NetworkRecord& network) {
    if (network.kind == "bridged") {
        if (!net::bridge_exists(network.bridge))
            return fail(fmt::format("there is no bridge named {} on this host", network.bridge), ENOENT);
        return {};
    }
    TRY_VOID(net::ensure_bridge(network.bridge));
    TRY_VOID(net::set_mtu(network.bridge, network.mtu));
    if (auto subnet = net::parse_ipv4_subnet(network.subnet4); subnet && !network.gateway4.empty())
        TRY_VOID(net::set_ipv4_address(network.bridge, network.gateway4, subnet->prefix));
    // The IPv6 gateway is always the subnet's ::1 (its guests learn it from router
    // advertisements, not from a setting); no subnet6 takes away one set before.
    std::optional<net::InterfaceIpv6> gateway6;
    if (auto subnet6 = net::parse_ipv6_subnet(network.subnet6)) gateway6 = net::InterfaceIpv6{subnet6->gateway(), 64};
    TRY_VOID(net::set_global_ipv6_address(network.bridge, gateway6));
    if (network.kind == "vlan") TRY(net::ensure_vlan_port(network.parent, network.vlan_id, network.bridge));
    TRY_VOID(net::set_link_up(network.bridge));
    if (runs_dnsmasq(network)) {
        auto hosts = TRY(dhcp_hosts(network));
        const DnsmasqPaths paths = DnsmasqPaths::of(network_dir(network.name));
        TRY_VOID(dnsmasq_for(network.name).run(render_dnsmasq(network, hosts, paths)));
    }
    m_problems.erase(network.name);
    return {};
}

void NetworkService::tear_down(const NetworkRecord& network) {
    if (auto it = m_dnsmasq.find(network.name); it != m_dnsmasq.end()) {
        it->second->stop();
        m_dnsmasq.erase(it);
    }
    if (network.kind == "vlan") net::delete_vlan_port(network.parent, network.vlan_id);
    if (owns_bridge(network) && net::bridge_exists(network.bridge)) {
        if (auto removed = net::delete_bridge(network.bridge); !removed)
            log_warning("network {}: {}", network.name, removed.error().describe());
    }
    std::error_code error;
    fs::remove_all(DnsmasqPaths::of(network_dir(network.name)).reread_dir, error);
    fs::remove_all(network_dir(network.name), error);
    m_problems.erase(network.name);
}

Result<void> NetworkService::apply_firewall() {
    std::lock_guard lock(m_mutex);
    return apply_firewall_locked();
}

Result<net::firewall::Model> NetworkService::firewall_model() {
    net::firewall::Model model;
    for (const auto& network : TRY(m_inventory.list_networks())) model.networks.push_back(firewall_network(network));
    for (const auto& group : TRY(m_inventory.list_security_groups())) {
        net::firewall::SecurityGroup out{group.name, {}};
        for (const auto& rule : group.rules) out.rules.push_back(firewall_rule(rule));
        model.groups.push_back(std::move(out));
    }
    if (m_ports) model.ports = m_ports();
    return model;
}

Result<void> NetworkService::apply_firewall_locked() {
    const net::firewall::Model model = TRY(firewall_model());
    auto applied = model.networks.empty() ? net::firewall::remove_all() : net::firewall::apply(model);
    m_firewall_problem = applied ? "" : applied.error().describe();
    return applied;
}

Result<NetworkRecord> NetworkService::create(const NetworkRecord& network) {
    std::lock_guard lock(m_mutex);
    // A bridge corrald makes must be new: it is removed with the network, and someone else's
    // device must never be.
    if (owns_bridge(network) && ::if_nametoindex(network.bridge.c_str()) != 0)
        return fail(fmt::format("a network device named {} already exists on the host: give the network another "
                                "bridge name (or make it a bridged network to use that bridge)",
                                network.bridge),
                    EEXIST);
    auto stored = TRY(m_inventory.create_network(network));
    auto undo = [&](const Error& error) -> Result<NetworkRecord> {
        tear_down(stored);
        (void)m_inventory.delete_network(stored.name);
        (void)apply_firewall_locked();
        return fail(error);
    };
    if (auto up = bring_up(stored); !up) return undo(up.error().with_context(fmt::format("bringing up network {}", stored.name)));
    if (auto applied = apply_firewall_locked(); !applied)
        return undo(applied.error().with_context(fmt::format("applying the firewall for network {}", stored.name)));
    return stored;
}

Result<NetworkRecord> NetworkService::edit(const NetworkRecord& changed) {
    std::lock_guard lock(m_mutex);
    const NetworkRecord old = TRY(m_inventory.get_network(changed.name));
    // NICs keep the address they were given: a subnet that would leave one outside is refused.
    if (changed.subnet4 != old.subnet4) {
        auto subnet = net::parse_ipv4_subnet(changed.subnet4);
        for (const auto& vm : TRY(m_inventory.list_vms()))
            for (const auto& nic : vm.nics)
                if (nic.network == changed.name && !nic.ipv4.empty() &&
                    (!subnet || !subnet->contains(net::parse_ipv4(nic.ipv4).value_or(0))))
                    return fail(fmt::format("VM {} has address {} on network {}, outside subnet {}: remove its NIC "
                                            "first",
                                            vm.name, nic.ipv4, changed.name, changed.subnet4),
                                EBUSY);
    }
    auto stored = TRY(m_inventory.update_network(changed));
    auto up = bring_up(stored);
    auto applied = up ? apply_firewall_locked() : Result<void>{};
    if (!up || !applied) {
        const Error error = (!up ? up.error() : applied.error()).with_context(fmt::format("changing network {}", changed.name));
        (void)m_inventory.update_network(old);
        if (auto restored = bring_up(old); !restored)
            log_error("network {}: restoring the previous settings: {}", old.name, restored.error().describe());
        (void)apply_firewall_locked();
        return fail(error);
    }
    return stored;
}

Result<void> NetworkService::remove(const std::string& name) {
    std::lock_guard lock(m_mutex);
    const NetworkRecord network = TRY(m_inventory.get_network(name));
    TRY_VOID(m_inventory.delete_network(name));  // EBUSY while a VM has a NIC on it
    tear_down(network);
    if (auto applied = apply_firewall_locked(); !applied)
        log_error("applying the firewall after deleting network {}: {}", name, applied.error().describe());
    return {};
}

Result<std::vector<Lease>> NetworkService::leases(const std::string& name) {
    TRY(m_inventory.get_network(name));
    std::vector<Lease> out;
    // dnsmasq's leases file: "<expiry> <mac> <ip> <hostname|*> <client-id|*>" per line.
    std::ifstream file(DnsmasqPaths::of(network_dir(name)).leases());
    for (std::string line; std::getline(file, line);) {
        std::istringstream fields(line);
        Lease lease;
        std::string hostname;
        if (!(fields >> lease.expires >> lease.mac >> lease.ipv4 >> hostname)) continue;
        if (lease.mac.find(':') == std::string::npos) continue;  // a DHCPv6 "duid" line
        lease.hostname = hostname == "*" ? "" : hostname;
        out.push_back(std::move(lease));
    }
    std::sort(out.begin(), out.end(), [](const Lease& a, const Lease& b) {
        return net::parse_ipv4(a.ipv4).value_or(0) < net::parse_ipv4(b.ipv4).value_or(0);
    });
    return out;
}

nlohmann::json NetworkService::status(const NetworkRecord& network) {
    std::lock_guard lock(m_mutex);
    nlohmann::json problems = nlohmann::json::array();
    if (auto it = m_problems.find(network.name); it != m_problems.end()) problems.push_back(it->second);
    if (!m_firewall_problem.empty()) problems.push_back("firewall: " + m_firewall_problem);
    nlohmann::json dnsmasq = nullptr;
    if (auto it = m_dnsmasq.find(network.name); it != m_dnsmasq.end()) {
        const std::string problem = it->second->problem();
        dnsmasq = {{"pid", it->second->pid()},
                   {"restarts", it->second->restarts()},
                   {"reloads", it->second->reloads()},
                   {"problem", problem.empty() ? nlohmann::json() : nlohmann::json(problem)}};
        if (!problem.empty()) problems.push_back("dnsmasq: " + problem);
    }
    return {{"bridge_present", net::bridge_exists(network.bridge)}, {"dnsmasq", dnsmasq}, {"problems", problems}};
}

bool NetworkService::routes_ipv6() {
    auto networks = m_inventory.list_networks();
    return networks && std::any_of(networks->begin(), networks->end(), [](const NetworkRecord& network) {
               return network.kind == "nat" && !network.subnet6.empty();
           });
}

nlohmann::json NetworkService::host_policy() {
    nlohmann::json problems = nlohmann::json::array();
    for (const auto& problem : net::firewall::check_host_policy(routes_ipv6()).problems)
        problems.push_back({{"problem", problem.problem}, {"fix", problem.fix}});
    return {{"ok", problems.empty()}, {"problems", problems}};
}

Result<std::string> NetworkService::allocate_address(const std::string& name, const std::vector<std::string>& also_taken) {
    std::lock_guard lock(m_mutex);
    const NetworkRecord network = TRY(m_inventory.get_network(name));
    auto subnet = net::parse_ipv4_subnet(network.subnet4);
    if (!subnet || network.kind == "bridged") return std::string();
    std::set<uint32_t> taken;
    taken.insert(net::parse_ipv4(network.gateway4).value_or(0));
    for (const auto& reservation : network.reservations) taken.insert(net::parse_ipv4(reservation.ipv4).value_or(0));
    for (const auto& address : also_taken) taken.insert(net::parse_ipv4(address).value_or(0));
    for (const auto& vm : TRY(m_inventory.list_vms()))
        for (const auto& nic : vm.nics)
            if (nic.network == name && !nic.ipv4.empty()) taken.insert(net::parse_ipv4(nic.ipv4).value_or(0));
    const uint32_t range_start = net::parse_ipv4(network.dhcp_start).value_or(0);
    const uint32_t range_end = net::parse_ipv4(network.dhcp_end).value_or(0);
    for (uint32_t address = subnet->first_host(); address <= subnet->last_host(); ++address) {
        if (address >= range_start && address <= range_end) continue;
        if (!taken.contains(address)) return net::format_ipv4(address);
    }
    return fail(fmt::format("network {} has no free address left outside its DHCP range {} - {}", name,
                            network.dhcp_start, network.dhcp_end),
                EBUSY);
}

Result<void> NetworkService::refresh(const std::string& name) {
    std::lock_guard lock(m_mutex);
    const NetworkRecord network = TRY(m_inventory.get_network(name));
    TRY_VOID(bring_up(network));
    return apply_firewall_locked();
}

namespace {

/// A MAC for NIC `index` of VM `vm`, stable across runs (FNV-1a, not std::hash, whose value may
/// change between builds), bumped until no other NIC on the network has it.
std::string make_mac(const std::string& vm, size_t index, const std::set<std::string>& taken) {
    for (uint32_t salt = 0;; ++salt) {
        uint32_t hash = 2166136261u;
        for (unsigned char c : fmt::format("{}/{}/{}", vm, index, salt)) hash = (hash ^ c) * 16777619u;
        std::string mac = fmt::format("52:54:00:{:02x}:{:02x}:{:02x}", (hash >> 16) & 0xff, (hash >> 8) & 0xff,
                                      hash & 0xff);
        if (!taken.contains(mac)) return mac;
    }
}

}  // namespace

Result<void> NetworkService::check_requested_address(const NetworkRecord& network, const std::string& vm,
                                                     size_t index, const inventory::NicRef& nic,
                                                     const std::vector<std::string>& given) {
    const std::string field = fmt::format("nics[{}].ipv4", index);
    auto subnet = net::parse_ipv4_subnet(network.subnet4);
    auto address = net::parse_ipv4(nic.ipv4);
    if (!runs_dnsmasq(network) || !subnet)
        return fail(fmt::format("{}: network {} hands out no addresses ({} network)", field, network.name, network.kind),
                    EINVAL);
    if (!address || *address < subnet->first_host() || *address > subnet->last_host())
        return fail(fmt::format("{} '{}' is not a host address of network {}'s subnet {}", field, nic.ipv4,
                                network.name, network.subnet4),
                    EINVAL);
    if (nic.ipv4 == network.gateway4)
        return fail(fmt::format("{} {} is network {}'s gateway", field, nic.ipv4, network.name), EINVAL);
    for (const auto& reservation : network.reservations)
        if (reservation.ipv4 == nic.ipv4 && reservation.mac != nic.mac)
            return fail(fmt::format("{} {} is reserved for MAC {}", field, nic.ipv4, reservation.mac), EEXIST);
    for (const auto& other : TRY(m_inventory.list_vms())) {
        if (other.name == vm) continue;
        for (const auto& theirs : other.nics)
            if (theirs.network == network.name && theirs.ipv4 == nic.ipv4)
                return fail(fmt::format("{} {} is VM {}'s address", field, nic.ipv4, other.name), EEXIST);
    }
    for (const auto& mine : given)
        if (mine == nic.ipv4) return fail(fmt::format("{} {} is given twice", field, nic.ipv4), EEXIST);
    return {};
}

Result<inventory::VmRecord> NetworkService::define_vm(
    inventory::VmRecord vm, const std::vector<inventory::NicRef>& previous,
    const std::function<Result<inventory::VmRecord>(const inventory::VmRecord&)>& store) {
    std::lock_guard lock(m_mutex);
    std::set<std::string> touched;
    for (const auto& nic : previous)
        if (!nic.network.empty()) touched.insert(nic.network);
    std::set<std::string> macs;  // every MAC on a managed network, this VM's new ones included
    for (const auto& other : TRY(m_inventory.list_vms()))
        if (other.name != vm.name)
            for (const auto& nic : other.nics)
                if (!nic.network.empty()) macs.insert(nic.mac);
    std::vector<bool> reused(previous.size(), false);
    std::vector<std::string> given;  // addresses handed to this VM's NICs so far
    for (size_t i = 0; i < vm.nics.size(); ++i) {
        auto& nic = vm.nics[i];
        if (nic.network.empty()) continue;
        auto network = m_inventory.get_network(nic.network);
        if (!network) return fail(fmt::format("nics[{}]: no network named {}", i, nic.network), ENOENT);
        nic.bridge = network->bridge;
        // The same NIC as before (same network, and same MAC when one was given) keeps its
        // MAC and address, so a VM edit does not renumber it.
        for (size_t j = 0; j < previous.size(); ++j) {
            if (reused[j] || previous[j].network != nic.network || (!nic.mac.empty() && previous[j].mac != nic.mac))
                continue;
            reused[j] = true;
            if (nic.mac.empty()) nic.mac = previous[j].mac;
            if (nic.ipv4.empty()) nic.ipv4 = previous[j].ipv4;
            break;
        }
        if (nic.mac.empty()) nic.mac = make_mac(vm.name, i, macs);
        if (!macs.insert(nic.mac).second)
            return fail(fmt::format("nics[{}].mac {} is already used on network {}", i, nic.mac, nic.network), EEXIST);
        if (!nic.ipv4.empty()) TRY_VOID(check_requested_address(*network, vm.name, i, nic, given));
        if (nic.ipv4.empty() && runs_dnsmasq(*network)) nic.ipv4 = TRY(allocate_address(nic.network, given));
        if (!nic.ipv4.empty()) given.push_back(nic.ipv4);
        // Groups match a NIC by its address: one corrald does not know cannot be filtered.
        if (!nic.groups.empty() && nic.ipv4.empty())
            return fail(fmt::format("nics[{}].groups: network {} ({}) gives the NIC no address, and security groups "
                                    "filter by address: use a nat or isolated network",
                                    i, nic.network, network->kind),
                        EINVAL);
        touched.insert(nic.network);
    }
    auto stored = TRY(store(vm));
    for (const auto& name : touched)
        if (auto refreshed = refresh(name); !refreshed)
            log_warning("network {}: updating its DHCP hosts for VM {}: {}", name, vm.name,
                        refreshed.error().describe());
    return stored;
}

void NetworkService::vm_removed(const std::vector<inventory::NicRef>& nics) {
    std::set<std::string> touched;
    for (const auto& nic : nics)
        if (!nic.network.empty()) touched.insert(nic.network);
    for (const auto& name : touched)
        if (auto refreshed = refresh(name); !refreshed)
            log_warning("network {}: updating its DHCP hosts: {}", name, refreshed.error().describe());
}

}  // namespace corral::daemon
