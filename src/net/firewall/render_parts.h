#pragma once

// The pieces render() is made of, shared with the benchmark's chain-per-port layout and trace.

#include <string>
#include <vector>

#include "net/firewall/firewall.h"

namespace corral::net::firewall {

/// The model with networks, ports and groups sorted by name (and each port's groups sorted,
/// deduplicated): the order render() writes everything in.
Model sorted_model(const Model& model);
/// "table X {}" + "delete table X" for each of corrald's tables.
std::string render_reset();
std::string render_bridge(const Model& sorted);
std::string render_inet(const Model& sorted);
/// The masquerade table of `family` (AF_INET: nat networks' subnet4, `ip corral_nat`; AF_INET6:
/// their subnet6, `ip6 corral_nat6`).
std::string render_nat(const Model& sorted, int family);
/// The named set holding the addresses of a group's ports ("grp4_web").
std::string group_set_name(const std::string& group, int family);
/// The chain a port with these groups jumps to ("in_ssh.web").
std::string port_chain_name(Direction direction, const std::vector<std::string>& groups);

}  // namespace corral::net::firewall
