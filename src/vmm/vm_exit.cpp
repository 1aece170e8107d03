#include "vmm/vm_exit.h"

namespace corral::vmm {

void ExitLatch::report(VmExit exit) {
    {
        std::lock_guard lock(m_mutex);
        if (m_exit) return;
        m_exit = std::move(exit);
    }
    m_event.signal();
}

std::optional<VmExit> ExitLatch::exit() const {
    std::lock_guard lock(m_mutex);
    return m_exit;
}

int exit_code_for(const VmExit& exit) {
    switch (exit.reason) {
        case VmExitReason::PowerOff:
        case VmExitReason::Reset:
        case VmExitReason::Stopped: return 0;
        case VmExitReason::Crash:
        case VmExitReason::Failure: return 1;
    }
    return 1;
}

const char* describe(VmExitReason reason) {
    switch (reason) {
        case VmExitReason::PowerOff: return "guest powered off";
        case VmExitReason::Reset: return "guest reset";
        case VmExitReason::Crash: return "guest crashed";
        case VmExitReason::Failure: return "monitor failure";
        case VmExitReason::Stopped: return "stopped by the host";
    }
    return "?";
}

}  // namespace corral::vmm
