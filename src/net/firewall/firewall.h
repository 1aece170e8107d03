#pragma once

// corrald's nftables firewall for managed networks: NAT and isolation between networks, security
// groups on NICs, anti-spoofing, and a trace that answers from the live ruleset.
//
// Layout (see render.cpp for the details, docs/firewall.md for the why):
// - `table bridge corral`: per-frame anti-spoofing on managed ports (source MAC, source IPv4/IPv6,
//   ARP sender MAC/IP) and no DHCP-server/router-advertisement replies from a VM; and a port with
//   groups receives only frames for its own addresses (plus ARP, DHCP replies, neighbour
//   discovery), so broadcast, multicast and IPv6 link-local cannot go around its groups. Stateless,
//   so it needs no bridge conntrack (CONFIG_NF_CONNTRACK_BRIDGE is missing on many kernels).
// - `table inet corral`: security groups, NAT/isolated forwarding policy, isolated networks' access
//   to the host. Traffic between two VMs on the SAME bridge reaches the inet forward hook through
//   br_netfilter, enabled per bridge (`ip link add BR type bridge nf_call_iptables 1
//   nf_call_ip6tables 1`: the bridge's own option, no host-wide sysctl), so conntrack gives
//   "established replies" for bridged and routed traffic alike. Ports are identified by their
//   (anti-spoofed) addresses: `ip saddr vmap @egress4`, `ip daddr vmap @ingress4`.
// - `table ip corral_nat`: masquerade of nat networks' subnets; `table ip6 corral_nat6`: the same for
//   their subnet6 (a ULA prefix such as fd00::/64 reaches the outside only that way, as IPv4's
//   private subnets do; libvirt routes IPv6 instead, which needs the upstream to route it back).
// Every lookup is a set or verdict map, so the per-packet cost does not grow with the number of VMs.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace corral::net::firewall {

/// A managed network as the firewall sees it.
struct Network {
    std::string name;
    std::string bridge;    ///< the Linux bridge carrying it (created with nf_call_iptables 1)
    std::string kind;      ///< "nat", "isolated", "bridged" or "vlan"
    std::string subnet4;   ///< IPv4 CIDR, e.g. "10.77.0.0/24" (may be empty for bridged/vlan)
    std::string gateway4;  ///< the host's address on the bridge (DHCP/DNS server), inside subnet4
    std::string uplink;    ///< nat: the interface to masquerade to; empty = any but the bridge
    std::optional<std::string> subnet6;  ///< IPv6 CIDR; masqueraded to the uplink on nat networks
};

enum class Direction { In, Out };
enum class Protocol { Tcp, Udp, Icmp, Any };

/// One rule of a security group: what a NIC carrying the group lets in (In) or out (Out).
struct Rule {
    Direction direction = Direction::In;
    Protocol protocol = Protocol::Any;
    /// Port range (tcp/udp only); 0..0 = every port. A single port is {22, 22}.
    int port_from = 0;
    int port_to = 0;
    /// Who is on the other side: empty = anyone, an IPv4/IPv6 CIDR ("10.0.0.0/8", "fd00::/64",
    /// a bare address is a /32 or /128), or the name of a group (= the addresses of every port
    /// carrying that group).
    std::string remote;
};

/// A named set of rules. A NIC with groups denies inbound traffic except what one of its groups
/// allows and replies to connections it made; outbound is free unless one of its groups has an
/// Out rule, then only what Out rules allow (and replies) leaves.
struct SecurityGroup {
    std::string name;  ///< [a-z0-9][a-z0-9_-]*, at most 40 characters
    std::vector<Rule> rules;
};

/// A VM NIC plugged into a managed network.
struct Port {
    std::string tap;      ///< the tap interface name (unique)
    std::string network;  ///< Network::name
    std::string mac;      ///< "52:54:00:12:34:56"; the only source MAC the port may use
    /// The only source addresses the port may use (IPv4 and IPv6; IPv6 link-local is always
    /// allowed). Empty: source MAC checked, source addresses not (the VM has no known address
    /// yet). Groups are enforced by address, so a port with groups must list its addresses.
    std::vector<std::string> addresses;
    std::vector<std::string> groups;  ///< SecurityGroup::name; empty = everything passes
};

/// Everything the firewall renders: the whole desired state, not a delta.
struct Model {
    std::vector<Network> networks;
    std::vector<Port> ports;
    std::vector<SecurityGroup> groups;
};

/// The tables corrald owns, and no other: render() and apply() touch nothing else.
inline constexpr const char* k_bridge_table = "corral";  ///< family bridge
inline constexpr const char* k_inet_table = "corral";    ///< family inet
inline constexpr const char* k_nat_table = "corral_nat"; ///< family ip
inline constexpr const char* k_nat6_table = "corral_nat6";  ///< family ip6

/// Checks a model: CIDRs, gateway inside its subnet, kinds, group names, unknown groups and
/// networks, port ranges (1..65535, from <= to), MACs, duplicate taps. The error names the
/// field ("groups[web].rules[1].port_to: 70000 is out of range 1-65535") and is ErrorKind::Invalid.
Result<void> validate(const Model& model);

/// A complete nft script that (re)defines only corrald's tables, atomically when loaded with
/// `nft -f` (`table X {}` + `delete table X` + the definition: idempotent, no duplicates).
/// Deterministic: same model (in any order) -> same bytes, so a restart yields the same ruleset.
/// The model must be valid (validate()); render() of an invalid model is unspecified.
std::string render(const Model& model);

/// Validates, renders and loads the model in one `nft -f -` transaction. On failure the previous
/// ruleset stays in force and the error carries nft's message. Before loading, it turns on
/// nf_call_iptables/nf_call_ip6tables of each nat/isolated network's bridge that exists (the
/// bridge's own flag in /sys/class/net/BR/bridge/, nothing host-wide). On a bridged/vlan network
/// (a host bridge) groups between VMs need that flag too; corrald leaves the host's bridge alone.
Result<void> apply(const Model& model);

/// Removes corrald's tables (all of them, in one transaction); absent tables are not an error.
Result<void> remove_all();

/// Something on the host that would break VM traffic, with the command that fixes it.
struct HostPolicyProblem {
    std::string problem;  ///< one line: what is wrong
    std::string fix;      ///< one line: a command (or change) that fixes it
};

/// What check_host_policy() found; empty = nothing in the way.
struct HostPolicyReport {
    std::vector<HostPolicyProblem> problems;
    bool ok() const { return problems.empty(); }
};

/// Looks for host settings that drop VM traffic: net.ipv4.ip_forward off, a forward-hook chain of
/// another table (iptables' FORWARD as Docker sets it, an nft filter) whose policy is drop, an
/// input-hook chain with policy drop (DHCP/DNS from VMs to the host), and br_netfilter missing (then groups do not
/// apply between VMs on one bridge). Never fails: what it cannot read it does not report. `routes_ipv6`: a nat network
/// has a subnet6, so IPv6 forwarding matters too.
HostPolicyReport check_host_policy(bool routes_ipv6 = false);

/// A question for trace(): would a new connection from `from` to `to` pass?
struct TraceQuery {
    std::string from;  ///< a port's tap name, or an address (outside the managed networks)
    std::string to;    ///< a port's tap name, or an address
    Protocol protocol = Protocol::Tcp;  ///< tcp, udp or icmp (an echo request)
    int port = 0;      ///< destination port (tcp/udp); ignored for icmp
};

/// trace()'s answer.
struct TraceVerdict {
    bool allowed = false;
    /// The rule that decided, as its comment says ("group web rule 0: in tcp 22 from any",
    /// "port tap1: no group allows it", "isolated net1: no forwarding"), or "chain policy".
    std::string rule;
    std::string chain;                  ///< the chain holding that rule (e.g. "forward", "in_web")
    std::vector<std::string> path;      ///< the chains walked, in order
};

/// Evaluates a new connection's first packet against the ruleset installed NOW (read with
/// `nft -j list table inet corral`, not from the model); the model only resolves tap names to
/// their addresses and networks. Fails when the tables are not installed or an endpoint is unknown.
Result<TraceVerdict> trace(const Model& model, const TraceQuery& query);

}  // namespace corral::net::firewall
