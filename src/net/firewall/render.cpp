// render(): the Model as one nft script. Layout and reasons are in firewall.h; here the order
// of every list is fixed (sorted) so the same model always gives the same bytes.

#include <sys/socket.h>

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "net/firewall/address.h"
#include "net/firewall/firewall.h"
#include "net/firewall/render_parts.h"

namespace corral::net::firewall {
namespace {

std::string quoted(const std::string& text) { return "\"" + text + "\""; }

void emit_set(std::string& out, const std::string& name, const std::string& type, std::vector<std::string> elements,
              bool is_map = false) {
    std::sort(elements.begin(), elements.end());
    elements.erase(std::unique(elements.begin(), elements.end()), elements.end());
    out += fmt::format("\t{} {} {{\n\t\ttype {}\n", is_map ? "map" : "set", name, type);
    if (!elements.empty()) out += fmt::format("\t\telements = {{ {} }}\n", fmt::join(elements, ",\n\t\t\t     "));
    out += "\t}\n";
}

std::string rule_protocol(const Rule& rule, int family) {
    std::string ports;
    if (rule.port_from != 0)
        ports = rule.port_from == rule.port_to ? std::to_string(rule.port_from)
                                               : fmt::format("{}-{}", rule.port_from, rule.port_to);
    // Protocol numbers, not names: nft looks a name it has no keyword for (ipv6-icmp) up in
    // /etc/protocols, which minimal hosts and containers lack, and the whole ruleset then fails
    // to load. `nft list` shows the names again where /etc/protocols exists.
    switch (rule.protocol) {
    case Protocol::Tcp: return ports.empty() ? "meta l4proto 6 " : "tcp dport " + ports + " ";
    case Protocol::Udp: return ports.empty() ? "meta l4proto 17 " : "udp dport " + ports + " ";
    case Protocol::Icmp:
        if (family == AF_INET) return "meta l4proto 1 ";
        if (family == AF_INET6) return "meta l4proto 58 ";
        return "meta l4proto { 1, 58 } ";
    case Protocol::Any: return "";
    }
    return "";
}

std::string describe_rule(const Rule& rule) {
    const char* protocols[] = {"tcp", "udp", "icmp", "any"};
    std::string text = rule.direction == Direction::In ? "in " : "out ";
    text += protocols[static_cast<int>(rule.protocol)];
    if (rule.port_from != 0)
        text += rule.port_from == rule.port_to ? fmt::format(" {}", rule.port_from)
                                               : fmt::format(" {}-{}", rule.port_from, rule.port_to);
    text += rule.direction == Direction::In ? " from " : " to ";
    text += rule.remote.empty() ? "any" : rule.remote;
    return text;
}

// The nft lines of one group rule inside a port's chain: matched traffic returns to the base
// chain (allowed so far), the chain's last rule drops the rest.
void emit_group_rule(std::string& out, const std::string& group, size_t index, const Rule& rule) {
    std::string comment = fmt::format("comment \"group {} rule {}: {}\"", group, index, describe_rule(rule));
    const char* side = rule.direction == Direction::In ? "saddr" : "daddr";
    if (rule.remote.empty()) {
        out += fmt::format("\t\t{}return {}\n", rule_protocol(rule, 0), comment);
    } else if (auto cidr = parse_cidr(rule.remote)) {
        const char* ip = cidr->family == AF_INET ? "ip" : "ip6";
        out += fmt::format("\t\t{} {} {} {}return {}\n", ip, side, cidr->network().to_string(),
                           rule_protocol(rule, cidr->family), comment);
    } else {
        out += fmt::format("\t\tip {} @{} {}return {}\n", side, group_set_name(rule.remote, AF_INET),
                           rule_protocol(rule, AF_INET), comment);
        out += fmt::format("\t\tip6 {} @{} {}return {}\n", side, group_set_name(rule.remote, AF_INET6),
                           rule_protocol(rule, AF_INET6), comment);
    }
}

void emit_port_chain(std::string& out, const std::string& name, Direction direction,
                     const std::vector<const SecurityGroup*>& groups) {
    out += fmt::format("\n\tchain {} {{\n", name);
    if (direction == Direction::In) {
        out += "\t\tudp sport 67 udp dport 68 return comment \"DHCP replies\"\n";
        out += "\t\ticmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } return "
               "comment \"IPv6 neighbour discovery\"\n";
    } else {
        out += "\t\tudp sport 68 udp dport 67 return comment \"DHCP requests\"\n";
        out += "\t\ticmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } return "
               "comment \"IPv6 neighbour discovery\"\n";
    }
    for (const SecurityGroup* group : groups)
        for (size_t i = 0; i < group->rules.size(); ++i)
            if (group->rules[i].direction == direction) emit_group_rule(out, group->name, i, group->rules[i]);
    out += fmt::format("\t\tdrop comment \"{}: no group allows it\"\n", name);
    out += "\t}\n";
}

}  // namespace

std::string group_set_name(const std::string& group, int family) {
    return fmt::format("grp{}_{}", family == AF_INET ? 4 : 6, group);
}

std::string port_chain_name(Direction direction, const std::vector<std::string>& groups) {
    std::vector<std::string> sorted = groups;
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    return fmt::format("{}_{}", direction == Direction::In ? "in" : "out", fmt::join(sorted, "."));
}

Model sorted_model(const Model& model) {
    Model out = model;
    std::sort(out.networks.begin(), out.networks.end(), [](auto& a, auto& b) { return a.name < b.name; });
    std::sort(out.ports.begin(), out.ports.end(), [](auto& a, auto& b) { return a.tap < b.tap; });
    std::sort(out.groups.begin(), out.groups.end(), [](auto& a, auto& b) { return a.name < b.name; });
    for (Port& port : out.ports) {
        std::sort(port.groups.begin(), port.groups.end());
        port.groups.erase(std::unique(port.groups.begin(), port.groups.end()), port.groups.end());
    }
    return out;
}

std::string render_reset() {
    // `table X {}` makes sure the table exists, so `delete table X` never fails; the whole
    // file is one transaction, so nothing is ever seen half-replaced.
    std::string out;
    for (auto [family, name] :
         {std::pair{"bridge", k_bridge_table}, {"inet", k_inet_table}, {"ip", k_nat_table}, {"ip6", k_nat6_table}})
        out += fmt::format("table {0} {1} {{}}\ndelete table {0} {1}\n", family, name);
    return out;
}

std::string render_bridge(const Model& model) {
    std::vector<std::string> ports, macs, checked, grouped, ip4, ip6;
    for (const Port& port : model.ports) {
        ports.push_back(quoted(port.tap));
        if (!port.groups.empty()) grouped.push_back(quoted(port.tap));
        std::string mac = port.mac;
        std::transform(mac.begin(), mac.end(), mac.begin(), [](char c) { return static_cast<char>(std::tolower(c)); });
        macs.push_back(quoted(port.tap) + " . " + mac);
        if (!port.addresses.empty()) checked.push_back(quoted(port.tap));
        for (const std::string& text : port.addresses) {
            auto address = parse_cidr(text);
            (address->family == AF_INET ? ip4 : ip6).push_back(quoted(port.tap) + " . " + address->to_string());
        }
    }
    std::string out = fmt::format("\ntable bridge {} {{\n", k_bridge_table);
    emit_set(out, "ports", "ifname", ports);
    emit_set(out, "port_mac", "ifname . ether_addr", macs);
    emit_set(out, "ip_checked", "ifname", checked);
    emit_set(out, "grouped", "ifname", grouped);
    emit_set(out, "port_ip4", "ifname . ipv4_addr", ip4);
    emit_set(out, "port_ip6", "ifname . ipv6_addr", ip6);
    out += R"nft(
	chain prerouting {
		type filter hook prerouting priority filter; policy accept;
		iifname != @ports accept comment "not a managed port"
		iifname . ether saddr != @port_mac drop comment "anti-spoof: source MAC"
		ether type arp iifname . arp saddr ether != @port_mac drop comment "anti-spoof: ARP sender MAC"
		ether type { 8021q, 8021ad } drop comment "anti-spoof: VLAN-tagged frame from a VM hiding its addresses"
		udp sport 67 drop comment "anti-spoof: DHCP server reply from a VM"
		udp sport 547 drop comment "anti-spoof: DHCPv6 server reply from a VM"
		icmpv6 type nd-router-advert drop comment "anti-spoof: router advertisement from a VM"
		iifname != @ip_checked accept comment "no addresses known for the port"
		ether type arp arp saddr ip 0.0.0.0 accept comment "ARP probe"
		ether type arp iifname . arp saddr ip != @port_ip4 drop comment "anti-spoof: ARP sender address"
		ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept comment "DHCP request before a lease"
		ether type ip iifname . ip saddr != @port_ip4 drop comment "anti-spoof: source IPv4"
		ip6 saddr { ::, fe80::/10 } accept comment "IPv6 link-local and unspecified"
		ether type ip6 iifname . ip6 saddr != @port_ip6 drop comment "anti-spoof: source IPv6"
	}

	chain to_grouped {
		ether type arp accept comment "ARP"
		udp sport 67 udp dport 68 accept comment "DHCP replies"
		icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept comment "IPv6 neighbour discovery"
		ether type ip oifname . ip daddr @port_ip4 accept comment "to the port's own address: groups decide in table inet"
		ether type ip6 oifname . ip6 daddr @port_ip6 accept comment "to the port's own address: groups decide in table inet"
		drop comment "groups: broadcast, multicast, link-local or foreign address to a port with groups"
	}

	chain forward {
		type filter hook forward priority filter; policy accept;
		oifname @grouped jump to_grouped comment "groups: only its own addresses reach a port with groups"
	}

	chain output {
		type filter hook output priority filter; policy accept;
		oifname @grouped jump to_grouped comment "groups: only its own addresses reach a port with groups"
	}
}
)nft";
    return out;
}

std::string render_nat(const Model& model, int family) {
    const bool v4 = family == AF_INET;
    const char* ip = v4 ? "ip" : "ip6";
    std::string out = fmt::format("\ntable {} {} {{\n", ip, v4 ? k_nat_table : k_nat6_table);
    out += "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n";
    for (const Network& network : model.networks) {
        const std::optional<std::string> cidr = v4 ? std::optional<std::string>(network.subnet4) : network.subnet6;
        if (network.kind != "nat" || !cidr)
            continue;
        std::string subnet = parse_cidr(*cidr)->network().to_string();
        std::string to = network.uplink.empty() ? "" : fmt::format("oifname {} ", quoted(network.uplink));
        out += fmt::format("\t\t{0} saddr {1} {0} daddr {2} return comment \"net {3}: {4} local\"\n", ip, subnet,
                           v4 ? "{ 224.0.0.0/24, 255.255.255.255 }" : "ff00::/8", network.name,
                           v4 ? "multicast and broadcast stay" : "multicast stays");
        out += fmt::format("\t\t{0} saddr {1} {0} daddr != {1} {3}masquerade comment \"net {2}: NAT to the uplink\"\n",
                           ip, subnet, network.name, to);
    }
    out += "\t}\n}\n";
    return out;
}

std::string render_inet(const Model& model) {
    std::map<std::string, const SecurityGroup*> groups;
    for (const SecurityGroup& group : model.groups) groups[group.name] = &group;
    std::map<std::string, std::vector<std::string>> group_addresses[2];  // [v4, v6]
    std::vector<std::string> ingress[2], egress[2];
    std::map<std::string, std::vector<const SecurityGroup*>> in_chains, out_chains;
    for (const Port& port : model.ports) {
        if (port.groups.empty()) continue;
        std::vector<const SecurityGroup*> carried;
        bool has_out = false;
        for (const std::string& name : port.groups) {
            carried.push_back(groups.at(name));
            for (const Rule& rule : groups.at(name)->rules) has_out |= rule.direction == Direction::Out;
        }
        std::string in_chain = port_chain_name(Direction::In, port.groups);
        std::string out_chain = port_chain_name(Direction::Out, port.groups);
        in_chains[in_chain] = carried;
        if (has_out) out_chains[out_chain] = carried;
        for (const std::string& text : port.addresses) {
            auto address = parse_cidr(text);
            int v = address->family == AF_INET ? 0 : 1;
            ingress[v].push_back(address->to_string() + " : jump " + in_chain);
            if (has_out) egress[v].push_back(address->to_string() + " : jump " + out_chain);
            for (const std::string& name : port.groups) group_addresses[v][name].push_back(address->to_string());
        }
    }
    std::string out = fmt::format("\ntable inet {} {{\n", k_inet_table);
    for (const auto& [name, group] : groups) {
        emit_set(out, group_set_name(name, AF_INET), "ipv4_addr", group_addresses[0][name]);
        emit_set(out, group_set_name(name, AF_INET6), "ipv6_addr", group_addresses[1][name]);
    }
    emit_set(out, "ingress4", "ipv4_addr : verdict", ingress[0], true);
    emit_set(out, "ingress6", "ipv6_addr : verdict", ingress[1], true);
    emit_set(out, "egress4", "ipv4_addr : verdict", egress[0], true);
    emit_set(out, "egress6", "ipv6_addr : verdict", egress[1], true);
    for (const auto& [name, carried] : in_chains) emit_port_chain(out, name, Direction::In, carried);
    for (const auto& [name, carried] : out_chains) emit_port_chain(out, name, Direction::Out, carried);

    const std::string groups_lookup = "\t\tip saddr vmap @egress4 comment \"security groups: out\"\n"
                                      "\t\tip6 saddr vmap @egress6 comment \"security groups: out\"\n"
                                      "\t\tip daddr vmap @ingress4 comment \"security groups: in\"\n"
                                      "\t\tip6 daddr vmap @ingress6 comment \"security groups: in\"\n";
    out += "\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n";
    out += "\t\tct state established,related accept comment \"replies\"\n";
    for (const Network& network : model.networks) {
        std::string bridge = quoted(network.bridge);
        if (network.kind == "nat") {
            std::string subnet = parse_cidr(network.subnet4)->network().to_string();
            out += fmt::format("\t\tiifname {0} oifname != {0} ip saddr != {1} drop "
                               "comment \"net {2}: source outside the subnet\"\n",
                               bridge, subnet, network.name);
            if (network.subnet6)
                out += fmt::format(
                    "\t\tiifname {0} oifname != {0} ip6 saddr != {1} drop "
                    "comment \"net {2}: source outside subnet6\"\n",
                    bridge, parse_cidr(*network.subnet6)->network().to_string(), network.name);
            if (!network.uplink.empty())
                out += fmt::format("\t\tiifname {0} oifname != {{ {0}, {1} }} drop comment \"net {2}: out only to the uplink\"\n",
                                   bridge, quoted(network.uplink), network.name);
            out += fmt::format("\t\toifname {0} iifname != {0} drop comment \"net {1}: no new connections from outside\"\n",
                               bridge, network.name);
        } else if (network.kind == "isolated") {
            out += fmt::format("\t\tiifname {0} oifname != {0} drop comment \"isolated {1}: nothing leaves\"\n", bridge,
                               network.name);
            out += fmt::format("\t\toifname {0} iifname != {0} drop comment \"isolated {1}: nothing enters\"\n", bridge,
                               network.name);
        }
    }
    out += groups_lookup + "\t}\n";

    out += "\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n";
    out += "\t\tct state established,related accept comment \"replies\"\n";
    out += "\t\tip saddr vmap @egress4 comment \"security groups: out\"\n";
    out += "\t\tip6 saddr vmap @egress6 comment \"security groups: out\"\n";
    for (const Network& network : model.networks) {
        if (network.kind != "isolated") continue;
        std::string bridge = quoted(network.bridge);
        out += fmt::format("\t\tiifname {0} udp dport {{ 53, 67, 547 }} accept comment \"isolated {1}: DHCP and DNS\"\n",
                           bridge, network.name);
        out += fmt::format("\t\tiifname {0} tcp dport 53 accept comment \"isolated {1}: DNS over TCP\"\n", bridge,
                           network.name);
        out += fmt::format("\t\tiifname {0} icmpv6 type {{ nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert }} "
                           "accept comment \"isolated {1}: IPv6 neighbour discovery\"\n",
                           bridge, network.name);
        out += fmt::format("\t\tiifname {0} drop comment \"isolated {1}: nothing else reaches the host\"\n", bridge,
                           network.name);
    }
    out += "\t}\n";

    out += "\n\tchain output {\n\t\ttype filter hook output priority filter; policy accept;\n";
    out += "\t\tct state established,related accept comment \"replies\"\n";
    out += "\t\tip daddr vmap @ingress4 comment \"security groups: in\"\n";
    out += "\t\tip6 daddr vmap @ingress6 comment \"security groups: in\"\n";
    out += "\t}\n}\n";
    return out;
}

std::string render(const Model& unsorted) {
    Model model = sorted_model(unsorted);
    return render_reset() + render_bridge(model) + render_inet(model) + render_nat(model, AF_INET) +
           render_nat(model, AF_INET6);
}

}  // namespace corral::net::firewall
