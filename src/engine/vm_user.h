#pragma once

#include <sys/types.h>

#include <string>

#include "base/result.h"

namespace corral::engine {

/// Who a VM process runs as.
///
/// Design: every emulated VM gets its own uid (and gid = uid) from a reserved range that has no
/// /etc/passwd entries, picked at launch among those no running process uses. A per-VM uid
/// isolates VMs from each other (a QEMU taken over by its guest cannot signal, ptrace or read the
/// files of another VM's QEMU), which one shared `corral-vm` user would not; and it needs no setup
/// step on the host. The VM process owns no file: corrald (root) opens everything the VM needs
/// (disks and their backing files, taps, the console and QMP sockets, the console log) and hands
/// the descriptors over, so the uid needs no path to any host file. The only file it reads by
/// name is its kernel/initrd copy in the run folder (root-owned, group = the VM's gid, 0440).
struct VmUser {
    bool switch_user = false;  ///< false: the VM process keeps corrald's uid (see `why_not`)
    uid_t uid = 0;
    gid_t gid = 0;
    std::string why_not;  ///< when !switch_user: a sentence for the log
};

/// The first uid of the reserved range (0x70000000: above systemd's container range
/// 524288-1879048191, so neither nspawn nor DynamicUser hands these out).
inline constexpr uid_t k_vm_uid_first = 0x70000000u;
/// How many VM uids the range holds.
inline constexpr uid_t k_vm_uid_count = 65536;

/// A uid from the reserved range that no process runs as and that this process did not hand out
/// in the last minute (the VM process switches to it only after its shim started); or, when
/// corrald is not root (tests run by a user), no switch and the reason. EAGAIN when every uid
/// of the range is taken.
Result<VmUser> choose_vm_user();

/// True when `uid` is one of the reserved VM uids.
inline bool is_vm_uid(uid_t uid) {
    return uid >= k_vm_uid_first && uid - k_vm_uid_first < k_vm_uid_count;
}

}  // namespace corral::engine
