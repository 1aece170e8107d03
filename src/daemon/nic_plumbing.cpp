#include "daemon/nic_plumbing.h"

#include <cstdint>

#include <fmt/format.h>

#include "net/persistent_tap.h"
#include "net/tap_rate_limit.h"

namespace corral::daemon {

// FNV-1a, not std::hash: the name must stay the same across corrald builds, since a new corrald
// finds (and removes) the taps an older one made.
std::string NicPlumbing::tap_name_for(const std::string& vm_name, size_t index) {
    uint32_t hash = 2166136261u;
    for (unsigned char c : vm_name) hash = (hash ^ c) * 16777619u;
    return fmt::format("crl{:08x}n{}", hash, index);
}

Result<PluggedNics> NicPlumbing::plug(const inventory::VmRecord& vm) {
    PluggedNics plugged;
    auto undo = [&](const Error& error) -> Result<PluggedNics> {
        unplug(plugged.created_taps);
        return fail(error);
    };
    for (size_t i = 0; i < vm.nics.size(); ++i) {
        const auto& nic = vm.nics[i];
        std::string tap = nic.tap;
        if (!nic.bridge.empty()) {
            tap = tap_name_for(vm.name, i);
            if (auto created = net::create_persistent_tap(tap); !created)
                return undo(created.error().with_context(fmt::format("NIC {} on bridge {}", i, nic.bridge)));
            plugged.created_taps.push_back(tap);
            if (auto attached = net::attach_to_bridge(tap, nic.bridge); !attached)
                return undo(attached.error().with_context(fmt::format("NIC {}", i)));
        }
        plugged.nics.push_back({tap, nic.mac});
    }
    return plugged;
}

std::vector<std::string> NicPlumbing::taps_created_for(const inventory::VmRecord& vm) const {
    std::vector<std::string> taps;
    for (size_t i = 0; i < vm.nics.size(); ++i)
        if (!vm.nics[i].bridge.empty()) taps.push_back(tap_name_for(vm.name, i));
    return taps;
}

void NicPlumbing::unplug(const std::vector<std::string>& created_taps) {
    for (const auto& tap : created_taps) {
        ignore_error(net::delete_persistent_tap(tap), "best effort: a tap that is already gone is what cleaning up wants");
        // The emulated engine's NIC limit outlives the tap in nftables (net/tap_rate_limit.h).
        ignore_error(net::set_tap_rate_limit(tap, 0),
                     "best effort: the next start of a VM on this tap replaces a leftover limit");
    }
}

std::string NicPlumbing::host_tap(const inventory::VmRecord& vm, size_t index) const {
    const auto& nic = vm.nics.at(index);
    return nic.tap.empty() ? tap_name_for(vm.name, index) : nic.tap;
}

}  // namespace corral::daemon
