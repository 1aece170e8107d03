#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

/// The vCPU threads of a VM process, found by the names the monitors give them, for pinning
/// them to host CPUs and for what the scheduler counted for them (run delay: time a vCPU was
/// ready to run but waited for a host CPU, the host side of a guest's steal time).
namespace corral::daemon {

/// The vCPU index in a monitor's thread name: QEMU's "CPU 3/TCG" or "CPU 3/KVM" (with
/// `-name ...,debug-threads=on`), corral-vmm's "vcpu3"; nullopt for any other thread.
std::optional<unsigned> vcpu_index_of_thread(std::string_view comm);

struct VcpuThread {
    unsigned index = 0;
    pid_t tid = 0;
};
/// The vCPU threads of process `pid`, by vCPU index, from /proc (or `proc` in tests).
std::vector<VcpuThread> vcpu_threads(pid_t pid, const std::filesystem::path& proc = "/proc");

/// /proc/PID/task/TID/schedstat: "<ns on a CPU> <ns waiting for one> <timeslices>".
struct SchedStat {
    uint64_t run_ns = 0;
    uint64_t delay_ns = 0;
};
std::optional<SchedStat> parse_schedstat(std::string_view text);
/// The sum over the vCPU threads of `pid`; zero when it has none that can be found.
SchedStat vcpu_sched_stat(pid_t pid, const std::filesystem::path& proc = "/proc");

/// "2,3": one host CPU per vCPU, in vCPU order; the error says what the syntax is.
Result<std::vector<unsigned>> parse_vcpu_pins(std::string_view text);
/// Pins vCPU i of `pid` to host CPU pins[i] (sched_setaffinity); empty `pins` lets every vCPU
/// run on all of `all_cpus` again. Returns warnings (a vCPU whose thread was not found).
Result<std::vector<std::string>> pin_vcpus(pid_t pid, const std::vector<unsigned>& pins,
                                           const std::vector<unsigned>& all_cpus);

}  // namespace corral::daemon
