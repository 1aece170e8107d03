#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace corral::daemon {

/// The "why is it slow" verdicts (issue 15; the VM page's panel and GET /vms/{name}/metrics's
/// `diagnosis`). The thresholds are product decisions, kept here in one place.
namespace slow_thresholds {
/// vCPU run delay (ready but waiting for a host CPU; VMware calls it "CPU ready"), as a share of
/// each vCPU's time. VMware's long-standing guidance: above 5% per vCPU is contention worth a
/// look, above 10% users feel it.
constexpr double k_run_delay_warning = 0.05;
constexpr double k_run_delay_problem = 0.10;
/// Time held back by the VM's own CPU cap. The cap is deliberate, so a little is expected; held
/// back a quarter of the time, the cap (not the host) is what limits the guest.
constexpr double k_throttled_warning = 0.05;
constexpr double k_throttled_problem = 0.25;
/// Mean disk latency per read or write. Common storage guidance (VMware, Microsoft): under 10 ms
/// is good, above 20 ms a database or a boot feels it, above 50 ms everything does.
constexpr double k_latency_warning_ms = 20;
constexpr double k_latency_problem_ms = 50;
/// The verdicts judge the last five minutes: long enough to smooth a burst, short enough to
/// answer "why is it slow now".
constexpr double k_window_seconds = 300;
}  // namespace slow_thresholds

/// What the verdicts need to know besides the VM's series.
struct SlowContext {
    std::string vm;              ///< its name, for the commands in the fixes
    unsigned host_cpus = 1;      ///< the host's CPUs
    unsigned running_vcpus = 0;  ///< vCPUs of all running (or paused) VMs on the host
    int cpu_max_percent = 0;     ///< the VM's CPU cap in percent of one CPU; 0: none
};

/// The verdicts over `series` (a VM's metrics history, MetricsHistory::vm_series, covering the
/// window): {"window_seconds", "causes": [{"cause", "value", "unit", "level", "verdict", "fix"}]}
/// with one cause each for cpu_wait (run delay), cpu_cap (throttling), disk_read and disk_write
/// (latency); level is "ok", "warning", "problem" or "unknown" (no data in the window).
nlohmann::json diagnose_slowness(const nlohmann::json& series, const SlowContext& context);

}  // namespace corral::daemon
