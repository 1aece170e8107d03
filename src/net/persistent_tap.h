#pragma once

#include <string>

#include "base/result.h"

namespace corral::net {

/// Creates a persistent tap device `name` (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR) that outlives
/// the creating process, so a VM monitor (corral-vmm or QEMU) can open it by name. Needs
/// CAP_NET_ADMIN. EEXIST when a device of that name exists.
Result<void> create_persistent_tap(const std::string& name);
/// Removes a tap made by create_persistent_tap (ENOENT when there is none).
Result<void> delete_persistent_tap(const std::string& name);
/// Enslaves `device` to the Linux bridge `bridge` and sets it up. ENOENT naming the bridge when
/// it does not exist, EINVAL when `bridge` is not a bridge.
Result<void> attach_to_bridge(const std::string& device, const std::string& bridge);
/// True when a network device `name` exists and is a Linux bridge.
bool is_bridge(const std::string& name);

}  // namespace corral::net
