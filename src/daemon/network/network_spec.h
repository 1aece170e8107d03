#pragma once

#include <string>
#include <vector>

#include "daemon/http/api_error.h"
#include "daemon/http/request_body.h"
#include "daemon/inventory/inventory.h"
#include "net/ipv4.h"

namespace corral::daemon {

/// The default bridge name of network `name`: "corral0" for the default network, else
/// "crl-<name>" (shortened with a hash to fit IFNAMSIZ).
std::string default_bridge_name(const std::string& name);

/// The first /24 in 10.0.100.0 .. 10.0.254.0 that overlaps none of `taken`.
std::optional<net::Ipv4Subnet> pick_free_subnet(const std::vector<net::Ipv4Subnet>& taken);

/// Reads a network from a POST /networks body (`existing` null) or a PATCH body (the fields
/// given replace those of `existing`; name and kind cannot change). Fills in the defaults
/// (bridge, gateway, DHCP range) and checks each field on its own: 400 naming the field.
ApiResult<inventory::NetworkRecord> read_network_body(JsonReader& body, const inventory::NetworkRecord* existing);

/// Checks a whole network against the others and the host: gateway and DHCP range inside the
/// subnet, reservations inside it and unique, no subnet overlapping another network's or a
/// subnet the host already routes (`host`, which excludes the network's own bridge). 400 naming
/// the field.
ApiResult<void> check_network(const inventory::NetworkRecord& network,
                              const std::vector<inventory::NetworkRecord>& others,
                              const std::vector<net::HostSubnet>& host);

}  // namespace corral::daemon
