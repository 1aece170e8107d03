#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"

namespace corral::daemon {

/// Live numbers of one running VM (GET /vms/{name}/metrics, /metrics).
struct VmMetrics {
    double cpu_seconds = 0;
    uint64_t memory_bytes = 0;  // resident set of the VM process
    // Contention (branch contention): time the vCPU threads were ready but waited for a host CPU
    // (schedstat run delay, the host's view of steal), and time the VM's cgroup held it back
    // under its CPU cap (cpu.stat); both counters since the VM process started.
    double vcpu_run_delay_seconds = 0;
    double cpu_throttled_seconds = 0;
    std::vector<engine::DiskCounters> disks;
    /// The guest's own view of its memory (virtio-balloon statistics); nullopt until it reported
    /// them, or when the VM has no balloon.
    std::optional<uint64_t> guest_memory_free_bytes, guest_memory_available_bytes, guest_memory_total_bytes;
    struct Nic {
        std::string tap;
        uint64_t rx_bytes = 0, tx_bytes = 0, rx_packets = 0, tx_packets = 0;  // as the guest sees them
    };
    std::vector<Nic> nics;
};

/// utime + stime in clock ticks from the text of /proc/PID/stat; nullopt when it is not one.
std::optional<uint64_t> cpu_ticks_from_proc_stat(std::string_view stat);

/// The VM's numbers: CPU time and resident memory of its process (`pid`, from /proc), the
/// instance's disk counters, and each tap's counters turned round to the guest's view.
VmMetrics collect_vm_metrics(pid_t pid, engine::Instance& instance, const std::vector<std::string>& taps);

}  // namespace corral::daemon
