#pragma once

#include <mutex>
#include <optional>
#include <string>

#include "base/event_fd.h"

namespace corral::vmm {

/// Why a VM stopped running.
enum class VmExitReason {
    PowerOff,  // the guest powered off (ACPI S5)
    Reset,     // the guest rebooted (i8042, 0xCF9, ACPI reset register)
    Crash,     // the guest triple-faulted or KVM reported a guest crash
    Failure,   // the monitor could not go on (KVM internal error, entry failure)
    Stopped,   // the host asked the monitor to stop (signal, console escape)
};

struct VmExit {
    VmExitReason reason;
    std::string detail;
};

/// The first exit any thread reports wins; the main loop waits on event_fd().
class ExitLatch {
public:
    explicit ExitLatch(EventFd event) : m_event(std::move(event)) {}

    /// Records `exit` unless an exit was already recorded, and wakes the waiter.
    void report(VmExit exit);
    std::optional<VmExit> exit() const;
    int event_fd() const { return m_event.fd(); }

private:
    EventFd m_event;
    mutable std::mutex m_mutex;
    std::optional<VmExit> m_exit;
};

/// The process exit code for a VM exit: 0 for power-off, reset and requested stops; 1 otherwise.
int exit_code_for(const VmExit& exit);
const char* describe(VmExitReason reason);

}  // namespace corral::vmm
