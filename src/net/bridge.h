#pragma once

#include <string>

#include "base/result.h"

/// Linux bridges corrald owns (the bridge of a nat or isolated network): made, configured and
/// removed through the kernel's ioctls, each call checked and safe to repeat, so that a corrald
/// that starts again converges on the same state instead of failing on what exists.
namespace corral::net {

/// Makes bridge `name` unless it exists, with nf_call_iptables/nf_call_ip6tables on (the
/// firewall's groups need them; set again on an existing bridge). EINVAL when a device of that name exists and is not a
/// bridge (corrald never takes over someone else's interface).
/// The MAC corrald gives bridge `name`: locally administered, from the name, so it never follows
/// its ports' MACs.
std::string bridge_mac(const std::string& name);
Result<void> ensure_bridge(const std::string& name);
/// True when a device `name` exists in this network namespace and is a Linux bridge (asked of
/// its driver, so it is right in any namespace).
bool bridge_exists(const std::string& name);
/// Sets the device down and removes the bridge. ENOENT when there is none.
Result<void> delete_bridge(const std::string& name);
/// Sets the device up (IFF_UP); nothing when it already is.
Result<void> set_link_up(const std::string& name);
/// Sets the device's MTU (68..65535).
Result<void> set_mtu(const std::string& name, int mtu);
/// The device's MTU.
Result<int> get_mtu(const std::string& name);
/// Gives the device the IPv4 address `address`/`prefix_length` as its primary address,
/// replacing the one it had: setting the same address twice changes nothing.
Result<void> set_ipv4_address(const std::string& name, const std::string& address, int prefix_length);
/// The device's primary IPv4 address ("" when it has none).
Result<std::string> get_ipv4_address(const std::string& name);

/// The 802.1Q interface of `parent` with tag `vlan_id` (named "<parent>.<id>", or a short hash
/// when that is too long), made unless it exists, enslaved to `bridge` and set up, so frames on
/// the bridge leave `parent` tagged. Needs the kernel's 8021q module: the error says so.
Result<std::string> ensure_vlan_port(const std::string& parent, int vlan_id, const std::string& bridge);
/// Removes the interface ensure_vlan_port made (nothing when there is none).
void delete_vlan_port(const std::string& parent, int vlan_id);

}  // namespace corral::net
