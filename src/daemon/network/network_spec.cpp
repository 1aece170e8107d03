#include "daemon/network/network_spec.h"

#include <arpa/inet.h>

#include <cctype>
#include <set>

#include <fmt/format.h>

#include "daemon/names.h"
#include "net/ipv6.h"

namespace corral::daemon {

using inventory::NetworkRecord;
using inventory::ReservationRecord;

namespace {

constexpr size_t k_max_bridge_name = 15;  // IFNAMSIZ - 1

bool is_mac(const std::string& text) {
    if (text.size() != 17) return false;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (i % 3 == 2 ? c != ':' : !std::isxdigit(static_cast<unsigned char>(c))) return false;
    }
    return true;
}

bool is_dns_label(const std::string& text) {
    if (text.empty() || text.size() > 63 || text.front() == '-' || text.back() == '-') return false;
    for (char c : text)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    return true;
}

bool is_bridge_name(const std::string& text) {
    if (text.empty() || text.size() > k_max_bridge_name) return false;
    for (char c : text)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
    return true;
}

std::string lowercase(std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

/// Sets the derived addresses a body left out: gateway = the first host, DHCP range = the
/// upper half of the subnet (the lower half is for the addresses corrald reserves per NIC).
/// (An edit that moves the subnet cleared the addresses it did not give again.)
void fill_address_defaults(NetworkRecord& network) {
    auto subnet = net::parse_ipv4_subnet(network.subnet4);
    if (!subnet || subnet->prefix > 30) return;
    if (network.gateway4.empty()) network.gateway4 = net::format_ipv4(subnet->first_host());
    const uint32_t hosts = subnet->last_host() - subnet->first_host() + 1;
    if (network.dhcp_start.empty()) network.dhcp_start = net::format_ipv4(subnet->first_host() + hosts / 2);
    if (network.dhcp_end.empty()) network.dhcp_end = net::format_ipv4(subnet->last_host());
}

}  // namespace

std::string default_bridge_name(const std::string& name) {
    if (name == "default") return "corral0";
    std::string bridge = "crl-" + name;
    if (bridge.size() <= k_max_bridge_name) return bridge;
    uint32_t hash = 2166136261u;  // FNV-1a: stable across runs and builds
    for (unsigned char c : name) hash = (hash ^ c) * 16777619u;
    return fmt::format("crl-{}-{:04x}", name.substr(0, 6), hash & 0xffff);
}

std::optional<net::Ipv4Subnet> pick_free_subnet(const std::vector<net::Ipv4Subnet>& taken) {
    for (uint32_t third = 100; third <= 254; ++third) {
        net::Ipv4Subnet candidate{(10u << 24) | (third << 8), 24};
        bool free = true;
        for (const auto& used : taken) free = free && !used.overlaps(candidate);
        if (free) return candidate;
    }
    return std::nullopt;
}

ApiResult<NetworkRecord> read_network_body(JsonReader& body, const NetworkRecord* existing) {
    NetworkRecord network = existing ? *existing : NetworkRecord{};
    if (!existing) {
        network.name = TRY(body.required_string("name"));
        TRY_VOID(validate_name(network.name, "network name", "name"));
        network.kind = TRY(body.optional_string("kind")).value_or("nat");
        if (network.kind != "nat" && network.kind != "isolated" && network.kind != "bridged" && network.kind != "vlan")
            return api_fail(400, fmt::format("kind '{}' is not one of nat, isolated, bridged, vlan", network.kind),
                            "kind");
    } else {
        for (const char* fixed : {"name", "kind"})
            if (body.has(fixed))
                return api_fail(400, fmt::format("{} cannot change: delete the network and create it again", fixed),
                                fixed);
    }
    const bool managed = network.kind == "nat" || network.kind == "isolated";
    if (auto bridge = TRY(body.optional_string("bridge"))) {
        if (existing && *bridge != existing->bridge)
            return api_fail(400, "bridge cannot change: delete the network and create it again", "bridge");
        if (!is_bridge_name(*bridge))
            return api_fail(400,
                            fmt::format("bridge '{}' must be 1 to 15 letters, digits, '-', '_' or '.'", *bridge),
                            "bridge");
        network.bridge = *bridge;
    }
    if (network.bridge.empty()) {
        if (network.kind == "bridged")
            return api_fail(400, "bridge is required for a bridged network: the name of an existing host bridge",
                            "bridge");
        network.bridge = default_bridge_name(network.name);
    }
    if (network.kind == "vlan") {
        if (auto parent = TRY(body.optional_string("parent"))) network.parent = *parent;
        if (network.parent.empty() || !is_bridge_name(network.parent))
            return api_fail(400, "parent is required for a vlan network: the host interface that carries the tags",
                            "parent");
        if (auto id = TRY(body.optional_uint("vlan_id", 1, 4094))) network.vlan_id = static_cast<int>(*id);
        if (network.vlan_id == 0) return api_fail(400, "vlan_id (1 to 4094) is required for a vlan network", "vlan_id");
    } else {
        for (const char* field : {"parent", "vlan_id"})
            if (body.has(field))
                return api_fail(400, fmt::format("{} is only for vlan networks (kind is {})", field, network.kind),
                                field);
    }
    bool subnet_changed = false;
    if (auto subnet = TRY(body.optional_string("subnet4"))) {
        auto parsed = net::parse_ipv4_subnet(*subnet);
        if (!parsed)
            return api_fail(400,
                            fmt::format("subnet4 '{}' is not an IPv4 subnet like 10.0.101.0/24 (no host bits set)",
                                        *subnet),
                            "subnet4");
        if (managed && parsed->prefix > 29)
            return api_fail(400, fmt::format("subnet4 {} is too small: a /29 or larger leaves room for VMs", *subnet),
                            "subnet4");
        subnet_changed = *subnet != network.subnet4;
        network.subnet4 = *subnet;
    }
    for (auto* field : {&network.gateway4, &network.dhcp_start, &network.dhcp_end}) {
        const char* name = field == &network.gateway4 ? "gateway4" : field == &network.dhcp_start ? "dhcp_start" : "dhcp_end";
        if (auto value = TRY(body.optional_string(name))) {
            if (!net::parse_ipv4(*value))
                return api_fail(400, fmt::format("{} '{}' is not an IPv4 address", name, *value), name);
            *field = *value;
        } else if (subnet_changed && existing) {
            field->clear();  // derived from the old subnet: derive again
        }
    }
    if (auto subnet6 = TRY(body.optional_string("subnet6"))) {
        if (!subnet6->empty()) {
            auto parsed = net::parse_ipv6_subnet(*subnet6);
            if (!parsed)
                return api_fail(400, fmt::format("subnet6 '{}' is not an IPv6 subnet like fd00:1::/64", *subnet6),
                                "subnet6");
            // Guests make their own addresses from the prefix and their MAC (SLAAC), which
            // takes exactly 64 bits of prefix.
            if (parsed->prefix != 64)
                return api_fail(400,
                                fmt::format("subnet6 {} must be a /64: guests make their addresses from the prefix "
                                            "and their MAC (SLAAC)",
                                            *subnet6),
                                "subnet6");
            if (network.kind != "nat" && network.kind != "isolated")
                return api_fail(400,
                                fmt::format("subnet6 is for nat and isolated networks, whose bridge and router "
                                            "advertisements corrald runs (kind is {})",
                                            network.kind),
                                "subnet6");
            network.subnet6 = parsed->to_string();  // one spelling, so equal subnets compare equal
        } else {
            network.subnet6.clear();
        }
    }
    if (auto mtu = TRY(body.optional_uint("mtu", 576, 9000))) network.mtu = static_cast<int>(*mtu);
    if (auto servers = TRY(body.optional_strings("dns_forwarders", 8))) {
        for (size_t i = 0; i < servers->size(); ++i) {
            in6_addr v6{};
            const std::string& server = (*servers)[i];
            if (!net::parse_ipv4(server) && ::inet_pton(AF_INET6, server.c_str(), &v6) != 1)
                return api_fail(400, fmt::format("dns_forwarders[{}] '{}' is not an IP address", i, server),
                                fmt::format("dns_forwarders[{}]", i));
        }
        network.dns_forwarders = *servers;
    }
    if (auto items = TRY(body.optional_objects("reservations", 4096))) {
        network.reservations.clear();
        for (auto& item : *items) {
            ReservationRecord reservation;
            reservation.mac = lowercase(TRY(item.required_string("mac")));
            if (!is_mac(reservation.mac))
                return api_fail(400, fmt::format("{} '{}' is not a MAC address like 52:54:00:12:34:56",
                                                 item.path_of("mac"), reservation.mac),
                                item.path_of("mac"));
            reservation.ipv4 = TRY(item.required_string("ipv4"));
            if (!net::parse_ipv4(reservation.ipv4))
                return api_fail(400, fmt::format("{} '{}' is not an IPv4 address", item.path_of("ipv4"), reservation.ipv4),
                                item.path_of("ipv4"));
            reservation.hostname = TRY(item.optional_string("hostname")).value_or("");
            if (!reservation.hostname.empty() && !is_dns_label(reservation.hostname))
                return api_fail(400,
                                fmt::format("{} '{}' must be a DNS label: 1 to 63 letters, digits and '-'",
                                            item.path_of("hostname"), reservation.hostname),
                                item.path_of("hostname"));
            network.reservations.push_back(std::move(reservation));
        }
    }
    if (!managed && (!network.subnet4.empty() || !network.reservations.empty()) && network.kind == "bridged")
        return api_fail(400, "a bridged network gets no addresses from corrald: leave out subnet4 and reservations",
                        network.subnet4.empty() ? "reservations" : "subnet4");
    fill_address_defaults(network);
    return network;
}

ApiResult<void> check_network(const NetworkRecord& network, const std::vector<NetworkRecord>& others,
                              const std::vector<net::HostSubnet>& host) {
    for (const auto& other : others)
        if (other.name != network.name && other.bridge == network.bridge)
            return api_fail(400, fmt::format("bridge {} already belongs to network {}", network.bridge, other.name),
                            "bridge");
    if (network.subnet4.empty()) {
        if (network.kind == "nat" || network.kind == "isolated")
            return api_fail(400, fmt::format("subnet4 is required for a {} network", network.kind), "subnet4");
        return {};
    }
    if (auto subnet6 = net::parse_ipv6_subnet(network.subnet6)) {
        for (const auto& other : others) {
            if (other.name == network.name) continue;
            if (auto theirs = net::parse_ipv6_subnet(other.subnet6); theirs && theirs->overlaps(*subnet6))
                return api_fail(400,
                                fmt::format("subnet6 {} overlaps network {}'s subnet {}", network.subnet6, other.name,
                                            other.subnet6),
                                "subnet6");
        }
    }
    const auto subnet = *net::parse_ipv4_subnet(network.subnet4);
    for (const auto& other : others) {
        if (other.name == network.name || other.subnet4.empty()) continue;
        if (auto theirs = net::parse_ipv4_subnet(other.subnet4); theirs && theirs->overlaps(subnet))
            return api_fail(400,
                            fmt::format("subnet4 {} overlaps network {}'s subnet {}", network.subnet4, other.name,
                                        other.subnet4),
                            "subnet4");
    }
    for (const auto& used : host) {
        if (used.device == network.bridge) continue;  // our own bridge carries our own subnet
        if (used.subnet.overlaps(subnet))
            return api_fail(400,
                            fmt::format("subnet4 {} overlaps {} on the host's interface {}: pick another subnet",
                                        network.subnet4, used.subnet.to_string(), used.device),
                            "subnet4");
    }
    const uint32_t gateway = *net::parse_ipv4(network.gateway4);
    if (gateway < subnet.first_host() || gateway > subnet.last_host())
        return api_fail(400,
                        fmt::format("gateway4 {} is not a host address of subnet4 {} ({} to {})", network.gateway4,
                                    network.subnet4, net::format_ipv4(subnet.first_host()),
                                    net::format_ipv4(subnet.last_host())),
                        "gateway4");
    const uint32_t start = *net::parse_ipv4(network.dhcp_start), end = *net::parse_ipv4(network.dhcp_end);
    for (auto [value, field] : {std::pair{start, "dhcp_start"}, std::pair{end, "dhcp_end"}})
        if (value < subnet.first_host() || value > subnet.last_host())
            return api_fail(400,
                            fmt::format("{} {} is not a host address of subnet4 {}", field, net::format_ipv4(value),
                                        network.subnet4),
                            field);
    if (start > end)
        return api_fail(400, fmt::format("dhcp_start {} is after dhcp_end {}", network.dhcp_start, network.dhcp_end),
                        "dhcp_start");
    if (gateway >= start && gateway <= end)
        return api_fail(400,
                        fmt::format("gateway4 {} is inside the DHCP range {} - {}", network.gateway4,
                                    network.dhcp_start, network.dhcp_end),
                        "gateway4");
    std::set<std::string> macs;
    std::set<uint32_t> addresses;
    for (size_t i = 0; i < network.reservations.size(); ++i) {
        const auto& reservation = network.reservations[i];
        const uint32_t address = *net::parse_ipv4(reservation.ipv4);
        const std::string field = fmt::format("reservations[{}].ipv4", i);
        if (address < subnet.first_host() || address > subnet.last_host())
            return api_fail(400,
                            fmt::format("{} {} is outside subnet4 {}", field, reservation.ipv4, network.subnet4), field);
        if (address == gateway)
            return api_fail(400, fmt::format("{} {} is the gateway's address", field, reservation.ipv4), field);
        if (!addresses.insert(address).second)
            return api_fail(400, fmt::format("{} {} is reserved twice", field, reservation.ipv4), field);
        if (!macs.insert(reservation.mac).second)
            return api_fail(400, fmt::format("reservations[{}].mac {} is reserved twice", i, reservation.mac),
                            fmt::format("reservations[{}].mac", i));
    }
    return {};
}

}  // namespace corral::daemon
