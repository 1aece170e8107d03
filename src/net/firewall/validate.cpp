// validate(): every field of a Model checked before anything is rendered, each error naming the
// field and what is allowed (user input reaches here through the networks API).

#include <sys/socket.h>

#include <map>
#include <set>

#include <fmt/format.h>

#include "net/firewall/address.h"
#include "net/firewall/firewall.h"

namespace corral::net::firewall {
namespace {

std::unexpected<Error> invalid(const std::string& field, const std::string& what) {
    return fail(ErrorKind::Invalid, field + ": " + what);
}

bool valid_name(const std::string& name, size_t max_length) {
    if (name.empty() || name.size() > max_length) return false;
    for (size_t i = 0; i < name.size(); ++i) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && (c == '-' || c == '_'));
        if (!ok) return false;
    }
    return true;
}

// Interface names go into nft strings: IFNAMSIZ-1 characters, none that need quoting.
bool valid_ifname(const std::string& name) {
    if (name.empty() || name.size() > 15) return false;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.'))
            return false;
    return true;
}

bool valid_mac(const std::string& mac) {
    if (mac.size() != 17) return false;
    for (size_t i = 0; i < mac.size(); ++i) {
        char c = mac[i];
        if (i % 3 == 2) {
            if (c != ':') return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}

Result<void> validate_network(const Network& network, const std::string& field) {
    if (!valid_name(network.name, 40))
        return invalid(field + ".name", fmt::format("'{}' is not a name ([a-z0-9][a-z0-9_-]*, at most 40)", network.name));
    if (!valid_ifname(network.bridge))
        return invalid(field + ".bridge", fmt::format("'{}' is not an interface name (1-15 of [A-Za-z0-9._-])", network.bridge));
    static const std::set<std::string> kinds = {"nat", "isolated", "bridged", "vlan"};
    if (!kinds.contains(network.kind))
        return invalid(field + ".kind", fmt::format("'{}' is not one of nat, isolated, bridged, vlan", network.kind));
    bool managed = network.kind == "nat" || network.kind == "isolated";
    std::optional<Cidr> subnet;
    if (!network.subnet4.empty() || managed) {
        subnet = parse_cidr(network.subnet4);
        if (!subnet || subnet->family != AF_INET || subnet->prefix > 30)
            return invalid(field + ".subnet4", fmt::format("'{}' is not an IPv4 CIDR of /30 or larger (e.g. 10.77.0.0/24)",
                                                           network.subnet4));
    }
    if (!network.gateway4.empty() || managed) {
        auto gateway = parse_cidr(network.gateway4);
        if (!gateway || gateway->family != AF_INET || !gateway->is_host())
            return invalid(field + ".gateway4", fmt::format("'{}' is not an IPv4 address", network.gateway4));
        if (subnet && !subnet->contains(*gateway))
            return invalid(field + ".gateway4",
                           fmt::format("{} is outside the subnet {}", network.gateway4, network.subnet4));
    }
    if (network.subnet6) {
        auto subnet6 = parse_cidr(*network.subnet6);
        if (!subnet6 || subnet6->family != AF_INET6 || subnet6->prefix > 126)
            return invalid(field + ".subnet6", fmt::format("'{}' is not an IPv6 CIDR (e.g. fd77::/64)", *network.subnet6));
    }
    if (!network.uplink.empty() && !valid_ifname(network.uplink))
        return invalid(field + ".uplink", fmt::format("'{}' is not an interface name (1-15 of [A-Za-z0-9._-])", network.uplink));
    return {};
}

Result<void> validate_rule(const Rule& rule, const std::string& field, const std::set<std::string>& groups) {
    bool ported = rule.protocol == Protocol::Tcp || rule.protocol == Protocol::Udp;
    if (!ported && (rule.port_from != 0 || rule.port_to != 0))
        return invalid(field + ".port_from", "ports apply only to tcp and udp rules");
    if (ported && !(rule.port_from == 0 && rule.port_to == 0)) {
        if (rule.port_from < 1 || rule.port_from > 65535)
            return invalid(field + ".port_from", fmt::format("{} is out of range 1-65535", rule.port_from));
        if (rule.port_to < 1 || rule.port_to > 65535)
            return invalid(field + ".port_to", fmt::format("{} is out of range 1-65535", rule.port_to));
        if (rule.port_to < rule.port_from)
            return invalid(field + ".port_to", fmt::format("{} is below port_from {}", rule.port_to, rule.port_from));
    }
    if (!rule.remote.empty() && !parse_cidr(rule.remote) && !groups.contains(rule.remote))
        return invalid(field + ".remote",
                       fmt::format("'{}' is neither a CIDR nor a known group", rule.remote));
    return {};
}

}  // namespace

Result<void> validate(const Model& model) {
    std::set<std::string> networks, bridges, groups, taps;
    for (size_t i = 0; i < model.networks.size(); ++i) {
        const Network& network = model.networks[i];
        std::string field = fmt::format("networks[{}]", i);
        TRY_VOID(validate_network(network, field));
        if (!networks.insert(network.name).second)
            return invalid(field + ".name", fmt::format("'{}' is used by another network", network.name));
        if (!bridges.insert(network.bridge).second)
            return invalid(field + ".bridge", fmt::format("'{}' is used by another network", network.bridge));
    }
    for (size_t i = 0; i < model.groups.size(); ++i) {
        const std::string& name = model.groups[i].name;
        if (!valid_name(name, 40))
            return invalid(fmt::format("groups[{}].name", i),
                           fmt::format("'{}' is not a name ([a-z0-9][a-z0-9_-]*, at most 40)", name));
        if (!groups.insert(name).second)
            return invalid(fmt::format("groups[{}].name", i), fmt::format("'{}' is defined twice", name));
    }
    for (const SecurityGroup& group : model.groups)
        for (size_t r = 0; r < group.rules.size(); ++r)
            TRY_VOID(validate_rule(group.rules[r], fmt::format("groups[{}].rules[{}]", group.name, r), groups));
    std::map<Cidr, std::string> owners;
    for (size_t i = 0; i < model.ports.size(); ++i) {
        const Port& port = model.ports[i];
        std::string field = fmt::format("ports[{}]", i);
        if (!valid_ifname(port.tap))
            return invalid(field + ".tap", fmt::format("'{}' is not an interface name (1-15 of [A-Za-z0-9._-])", port.tap));
        if (!taps.insert(port.tap).second)
            return invalid(field + ".tap", fmt::format("'{}' is used by another port", port.tap));
        if (!networks.contains(port.network))
            return invalid(field + ".network", fmt::format("'{}' is not a known network", port.network));
        if (!valid_mac(port.mac))
            return invalid(field + ".mac", fmt::format("'{}' is not a MAC address (xx:xx:xx:xx:xx:xx)", port.mac));
        for (const std::string& text : port.addresses) {
            auto address = parse_cidr(text);
            if (!address || !address->is_host())
                return invalid(field + ".addresses", fmt::format("'{}' is not an IPv4 or IPv6 address", text));
            auto [it, inserted] = owners.emplace(*address, port.tap);
            if (!inserted)
                return invalid(field + ".addresses", fmt::format("{} belongs to port {} already", text, it->second));
        }
        for (const std::string& group : port.groups)
            if (!groups.contains(group))
                return invalid(field + ".groups", fmt::format("'{}' is not a known group", group));
        // Groups find a port by its addresses: without them its groups would hold nothing back.
        if (!port.groups.empty() && port.addresses.empty())
            return invalid(field + ".addresses", "a port with groups needs its addresses (groups are enforced by address)");
    }
    return {};
}

}  // namespace corral::net::firewall
