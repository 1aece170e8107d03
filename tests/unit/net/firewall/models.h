#pragma once

// Representative firewall models shared by the render, validation and trace tests (and the
// golden files tests/unit/net/golden/<name>.nft rendered from them).

#include <string>
#include <utility>
#include <vector>

#include "net/firewall/firewall.h"

namespace corral::net::firewall::testing {

/// One nat network with an uplink, two ports without groups.
inline Model nat_model() {
    Model model;
    model.networks.push_back({"default", "corbr0", "nat", "10.77.0.0/24", "10.77.0.1", "eth0", std::nullopt});
    model.ports.push_back({"tap1", "default", "52:54:00:00:00:01", {"10.77.0.2"}, {}});
    model.ports.push_back({"tap2", "default", "52:54:00:00:00:02", {"10.77.0.3"}, {}});
    return model;
}

/// An isolated network next to a nat network without an uplink (any interface) and IPv6.
inline Model isolated_model() {
    Model model;
    model.networks.push_back({"lab", "corbr1", "isolated", "10.78.0.0/24", "10.78.0.1", "", std::nullopt});
    model.networks.push_back({"default", "corbr0", "nat", "10.77.0.0/24", "10.77.0.1", "", std::string("fd77::/64")});
    model.ports.push_back({"tap3", "lab", "52:54:00:00:00:03", {"10.78.0.2"}, {}});
    model.ports.push_back({"tap4", "lab", "52:54:00:00:00:04", {"10.78.0.3"}, {}});
    return model;
}

/// Groups with CIDR and group remotes, port ranges, ICMP, an Out rule; ports carrying several groups.
inline Model groups_model() {
    Model model;
    model.networks.push_back({"default", "corbr0", "nat", "10.77.0.0/24", "10.77.0.1", "", std::nullopt});
    model.groups.push_back({"ssh", {{Direction::In, Protocol::Tcp, 22, 22, ""}}});
    model.groups.push_back({"web",
                            {{Direction::In, Protocol::Tcp, 80, 443, "10.0.0.0/8"},
                             {Direction::In, Protocol::Icmp, 0, 0, "ssh"},
                             {Direction::Out, Protocol::Udp, 53, 53, "10.77.0.1"},
                             {Direction::Out, Protocol::Tcp, 0, 0, "fd00::/8"}}});
    model.ports.push_back({"tap1", "default", "52:54:00:00:00:01", {"10.77.0.2"}, {}});
    model.ports.push_back({"tap2", "default", "52:54:00:00:00:02", {"10.77.0.3"}, {"ssh"}});
    model.ports.push_back({"tap5", "default", "52:54:00:00:00:05", {"10.77.0.5", "fd77::5"}, {"web", "ssh"}});
    return model;
}

/// Anti-spoofing: IPv4 + IPv6 addresses, a port with no known address, upper-case MAC.
inline Model antispoof_model() {
    Model model;
    model.networks.push_back({"default", "corbr0", "nat", "10.77.0.0/24", "10.77.0.1", "", std::string("fd77::/64")});
    model.ports.push_back({"tap1", "default", "52:54:00:AA:00:01", {"10.77.0.2", "fd77::2"}, {}});
    model.ports.push_back({"tap2", "default", "52:54:00:aa:00:02", {}, {}});
    return model;
}

inline std::vector<std::pair<std::string, Model>> golden_models() {
    return {{"nat", nat_model()}, {"isolated", isolated_model()}, {"groups", groups_model()}, {"antispoof", antispoof_model()}};
}

}  // namespace corral::net::firewall::testing
