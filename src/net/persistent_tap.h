#pragma once

#include <sys/types.h>

#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace corral::net {

/// Creates a persistent tap device `name` (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR) that outlives
/// the creating process, so a VM monitor (corral-vmm or QEMU) can open it by name. Its owner is
/// our euid: no other user may attach to it. Needs CAP_NET_ADMIN. EEXIST when a device of that
/// name exists.
Result<void> create_persistent_tap(const std::string& name);
/// Removes a tap made by create_persistent_tap (ENOENT when there is none).
Result<void> delete_persistent_tap(const std::string& name);
/// Enslaves `device` to the Linux bridge `bridge` and sets it up. ENOENT naming the bridge when
/// it does not exist, EINVAL when `bridge` is not a bridge.
Result<void> attach_to_bridge(const std::string& device, const std::string& bridge);
/// Attaches to the existing tap `name` (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR) and returns the
/// queue's descriptor, to hand to a VM process that then needs no right to open taps at all
/// (QEMU's `-netdev tap,fd=N`). Needs CAP_NET_ADMIN or to be the tap's owner.
Result<UniqueFd> open_tap(const std::string& name);
/// Makes `uid` (and `gid`) the owner of the persistent tap `name` (TUNSETOWNER/TUNSETGROUP):
/// only a process with that euid and in that group may attach to it without CAP_NET_ADMIN (an
/// ownerless tap: anyone), so a VM monitor that opens its tap by name (corral-vmm) can run
/// with no capability while other users cannot.
Result<void> set_tap_owner(const std::string& name, uid_t uid, gid_t gid);
/// True when a network device `name` exists and is a Linux bridge.
bool is_bridge(const std::string& name);

}  // namespace corral::net
