#pragma once

// The noisy-neighbour event (issue 17, "Seeing contention"): a VM whose vCPUs keep waiting for a
// host CPU while another VM on the host burns CPU. The slow panel answers "why is it slow" when
// someone looks; this says so by itself, as an event (`corral events`, the web UI's feed), once
// when it starts and once when it clears.

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/metrics_history.h"

namespace corral::daemon {

namespace noisy_thresholds {
/// Run delay per vCPU that counts as suffering: the slow panel's "problem" level (VMware's
/// "CPU ready" guidance: above 10% users feel it).
constexpr double k_suffering_run_delay = 0.10;
/// Below the panel's "warning" level (5%) the VM is fine again.
constexpr double k_recovered_run_delay = 0.05;
/// A neighbour is noisy when it used at least a quarter of a CPU on average meanwhile (and is
/// the busiest other VM): on a CPU a few threads share, that much keeps another vCPU waiting a
/// tenth of its time; an idle VM (a few percent) never counts.
constexpr double k_noisy_cpus = 0.25;
/// Intervals in a row before raising or clearing: one sampling hiccup is not an event.
constexpr unsigned k_hold_intervals = 3;
}  // namespace noisy_thresholds

/// Watches each tick's samples (MetricsHistory::on_tick). Not thread-safe: one sampling thread
/// calls observe().
class NoisyNeighbourWatch {
public:
    using Readings = std::vector<std::pair<std::string, std::optional<MetricsSample>>>;

    /// The events this tick raises: {"kind": "vm.noisy_neighbour", "target", "neighbour",
    /// "run_delay", "neighbour_cpus", "message"} when a VM has suffered for k_hold_intervals while
    /// a neighbour was noisy, and {"kind": "vm.noisy_neighbour.cleared", "target", "message"}
    /// when it has been fine as long again (or stopped).
    std::vector<nlohmann::json> observe(const Readings& vms);

private:
    struct Watched {
        MetricsSample last;
        unsigned suffering = 0;  ///< intervals in a row with run delay above k_suffering_run_delay
        unsigned fine = 0;       ///< intervals in a row below k_recovered_run_delay
        double delay_sum = 0;    ///< run delay over the suffering run, to report its mean
        std::map<std::string, double> neighbour_cpu_seconds;  ///< CPU the others used meanwhile
        double suffering_seconds = 0;
        bool raised = false;
    };
    std::map<std::string, Watched> m_vms;
};

}  // namespace corral::daemon
