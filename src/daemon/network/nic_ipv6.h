#pragma once

#include <map>
#include <string>

#include "daemon/inventory/inventory.h"

namespace corral::daemon {

/// The IPv6 address a NIC with `mac` gives itself on a network with `subnet6` (SLAAC, modified
/// EUI-64: net::slaac_address). corrald does not hand it out; it knows it, so the firewall pins
/// the NIC's port to it and `vm show` lists it. "" when the network has no subnet6.
std::string nic_ipv6_address(const std::string& subnet6, const std::string& mac);

/// Each managed network's subnet6 by network name (networks without one are left out); empty
/// when the inventory cannot be read (the addresses are then not shown, nothing fails).
std::map<std::string, std::string> subnet6_by_network(inventory::Inventory& inventory);

}  // namespace corral::daemon
