#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "net/ipv6.h"

/// IPv6 addresses of a host interface (a managed network's bridge): the gateway address its
/// guests route through and its dnsmasq answers on.
namespace corral::net {

/// An address on an interface, with its prefix length.
struct InterfaceIpv6 {
    Ipv6Address address{};
    int prefix = 0;
    bool operator==(const InterfaceIpv6&) const = default;
};

/// The device's IPv6 addresses of global scope (link-local ones are the kernel's), read from
/// /proc/thread-self/net/if_inet6.
Result<std::vector<InterfaceIpv6>> global_ipv6_addresses(const std::string& name);

/// Makes `wanted` the device's only global IPv6 address (none: removes them all). Duplicate
/// address detection is turned off on the device first (its accept_dad, nothing host-wide): the
/// host owns the subnet, and a tentative address could not be bound by dnsmasq for the seconds
/// DAD takes, or at all while the bridge has no port and so no carrier. Setting the same
/// address twice changes nothing.
Result<void> set_global_ipv6_address(const std::string& name, const std::optional<InterfaceIpv6>& wanted);

}  // namespace corral::net
