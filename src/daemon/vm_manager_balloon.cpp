// VmManager's memory balloon (docs/api.md "Memory balloon"): the engine owns the device; corrald
// keeps the target with the VM (like Proxmox's `balloon:`), passes it on at every start and
// whenever it changes, and reads back the balloon's size and the guest's memory statistics.

#include <algorithm>

#include <fmt/format.h>

#include "base/log.h"
#include "daemon/vm_manager.h"

namespace corral::daemon {

namespace {

constexpr uint64_t k_mib = 1024 * 1024;

/// ENOTSUP from the engine: this VM's process has no balloon (started by an older corrald).
template <typename T>
Result<T> busy_when_unsupported(Result<T> result) {
    if (!result && result.error().errno_value() == ENOTSUP)
        return fail(result.error().message(), EBUSY);
    return result;
}

}  // namespace

Result<std::shared_ptr<VmManager::LiveVm>> VmManager::live_vm(const std::string& name) {
    auto vm = TRY(m_inventory.get_vm(name));
    std::lock_guard lock(m_mutex);
    // Starting and stopping VMs are left alone: their monitor may not answer yet, or no more.
    if (vm.state != "running" && vm.state != "paused")
        return std::shared_ptr<LiveVm>();
    if (auto it = m_live.find(name); it != m_live.end() && !it->second->exited)
        return it->second;
    return std::shared_ptr<LiveVm>();
}

Result<VmManager::BalloonView> VmManager::set_balloon(const std::string& name, uint64_t target_mib) {
    auto vm = TRY(m_inventory.get_vm(name));
    // All of its memory is no balloon at all: nothing to keep.
    const uint64_t memory = static_cast<uint64_t>(std::max<int64_t>(1, vm.memory_mib));
    if (target_mib >= memory)
        target_mib = 0;
    auto live = TRY(live_vm(name));
    if (live) {
        TRY_VOID(
            busy_when_unsupported(live->instance->set_balloon_target((target_mib == 0 ? memory : target_mib) * k_mib)));
    } else if (!is_down(vm.state)) {
        // Between states its monitor may not answer yet, or no more.
        return fail(fmt::format("{} is {}: set its balloon once it runs or while it is stopped", name, vm.state),
                    EBUSY);
    }
    {
        // Read-modify-write of the record, as set_state() does, so that no state change is lost.
        std::lock_guard lock(m_mutex);
        vm = TRY(m_inventory.get_vm(name));
        vm.balloon_target_mib = static_cast<int64_t>(target_mib);
        vm = TRY(m_inventory.update_vm(vm));
    }
    m_events.publish({{"kind", "vm.updated"}, {"target", name}});
    BalloonView view{vm, std::nullopt};
    if (live)
        view.live = TRY(busy_when_unsupported(live->instance->balloon()));
    return view;
}

Result<VmManager::BalloonView> VmManager::balloon(const std::string& name) {
    BalloonView view{TRY(m_inventory.get_vm(name)), std::nullopt};
    if (auto live = TRY(live_vm(name)))
        view.live = TRY(busy_when_unsupported(live->instance->balloon()));
    return view;
}

void VmManager::apply_kept_balloon(const std::string& name, engine::Instance& instance) {
    // The record as it is now: a target set while the VM was starting counts too.
    auto vm = m_inventory.get_vm(name);
    if (!vm || vm->balloon_target_mib <= 0 || vm->balloon_target_mib >= vm->memory_mib)
        return;
    // The balloon inflates once the guest's driver loads; until then the target waits in the device.
    if (auto set = instance.set_balloon_target(static_cast<uint64_t>(vm->balloon_target_mib) * k_mib); !set)
        log_warning("VM {}: its kept balloon target of {} MiB was not applied, it has all its memory: {}", name,
                    vm->balloon_target_mib, set.error().describe());
    else
        log_info("VM {}: balloon target {} MiB applied (kept with the VM)", name, vm->balloon_target_mib);
}

}  // namespace corral::daemon
