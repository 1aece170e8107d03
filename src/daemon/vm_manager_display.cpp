// VmManager's graphical display: screenshots and VNC connections of running VMs (docs/api.md
// "Graphical console"). The engine owns the RFB server; corrald only asks it for a PNG or a new
// connection, and the API relays that connection to a WebSocket (api/vnc_routes.cpp).

#include <fmt/format.h>

#include "daemon/vm_lifecycle.h"
#include "daemon/vm_manager.h"

namespace corral::daemon {

Result<std::shared_ptr<VmManager::LiveVm>> VmManager::live_display(const std::string& name) {
    auto vm = TRY(m_inventory.get_vm(name));
    if (vm.display_width == 0)
        return fail(fmt::format("this VM has no display (give it one while it is stopped: corral vm edit {} "
                                "--display 1024x768)",
                                name),
                    EBUSY);
    std::shared_ptr<LiveVm> live;
    {
        std::lock_guard lock(m_mutex);
        if (auto it = m_live.find(name); it != m_live.end() && !it->second->exited) live = it->second;
    }
    if (!live || is_down(vm.state))
        return fail(fmt::format("{} is {}: its screen exists only while it runs ('corral vm start {}')", name,
                                vm.state, name),
                    EBUSY);
    return live;
}

Result<std::string> VmManager::screenshot(const std::string& name) {
    auto live = TRY(live_display(name));
    auto png = live->instance->screenshot();
    // ENOTSUP from the engine: the process has no display after all (started before an edit).
    if (!png && png.error().errno_value() == ENOTSUP) return fail(png.error().message(), EBUSY);
    return png;
}

Result<UniqueFd> VmManager::connect_vnc(const std::string& name) {
    auto live = TRY(live_display(name));
    auto connection = live->instance->connect_vnc();
    if (!connection && connection.error().errno_value() == ENOTSUP) return fail(connection.error().message(), EBUSY);
    return connection;
}

}  // namespace corral::daemon
