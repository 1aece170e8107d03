#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "base/result.h"
#include "daemon/inventory/inventory.h"
#include "engine/engine.h"

namespace corral::daemon {

/// The host side of a VM's NICs, made when it starts and removed when it ends.
struct PluggedNics {
    std::vector<engine::NicSpec> nics;      ///< one per NIC of the VM, in order, for the engine
    std::vector<std::string> created_taps;  ///< the taps corrald made (bridge NICs): unplug() removes them
};

/// The host-side network plumbing of VMs, apart from their lifecycle: a NIC on an existing tap
/// uses it; a NIC on a bridge gets a persistent tap that corrald creates, attaches to the bridge,
/// and removes when the VM ends. Taps outlive corrald (VMs do), so a new corrald finds an older
/// one's taps by name (taps_created_for).
class NicPlumbing {
public:
    /// A bridge NIC's tap name, from the VM's name (names are longer than IFNAMSIZ allows):
    /// "crl" + 8 hex digits of an FNV-1a hash of the name + "n" + index, at most 15 characters.
    static std::string tap_name_for(const std::string& vm_name, size_t index);

    /// Makes the host side of every NIC of `vm`. All or nothing: on failure the taps it made are
    /// gone again and the error names the NIC.
    Result<PluggedNics> plug(const inventory::VmRecord& vm);
    /// The taps plug() made for `vm` (its bridge NICs), for a VM adopted from an earlier corrald.
    std::vector<std::string> taps_created_for(const inventory::VmRecord& vm) const;
    /// Removes taps plug() made. One that is already gone is fine (the caller is cleaning up).
    void unplug(const std::vector<std::string>& created_taps);
    /// The host-side tap of NIC `index` of `vm` (to read its counters).
    std::string host_tap(const inventory::VmRecord& vm, size_t index) const;
};

}  // namespace corral::daemon
