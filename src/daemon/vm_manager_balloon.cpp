// VmManager's memory balloon (docs/api.md "Memory balloon"): the engine owns the device; corrald
// passes the target on and reads back the balloon's size and the guest's memory statistics.

#include <fmt/format.h>

#include "daemon/vm_manager.h"

namespace corral::daemon {

Result<std::shared_ptr<VmManager::LiveVm>> VmManager::live_vm(const std::string& name) {
    auto vm = TRY(m_inventory.get_vm(name));
    std::shared_ptr<LiveVm> live;
    {
        std::lock_guard lock(m_mutex);
        if (auto it = m_live.find(name); it != m_live.end() && !it->second->exited)
            live = it->second;
    }
    // Starting and stopping VMs are left alone too: their monitor may not answer yet, or no more.
    if (!live || (vm.state != "running" && vm.state != "paused"))
        return fail(
            fmt::format("{} is {}: its balloon exists only while it runs ('corral vm start {}')", name, vm.state, name),
            EBUSY);
    return live;
}

namespace {

/// ENOTSUP from the engine: this VM's process has no balloon (started by an older corrald).
template <typename T>
Result<T> busy_when_unsupported(Result<T> result) {
    if (!result && result.error().errno_value() == ENOTSUP)
        return fail(result.error().message(), EBUSY);
    return result;
}

}  // namespace

Result<engine::BalloonInfo> VmManager::set_balloon(const std::string& name, uint64_t target_mib) {
    auto live = TRY(live_vm(name));
    TRY_VOID(busy_when_unsupported(live->instance->set_balloon_target(target_mib * 1024 * 1024)));
    return busy_when_unsupported(live->instance->balloon());
}

Result<engine::BalloonInfo> VmManager::balloon(const std::string& name) {
    auto live = TRY(live_vm(name));
    return busy_when_unsupported(live->instance->balloon());
}

}  // namespace corral::daemon
