#pragma once

// Judges alarm rules (alarm_rules.h) on each metrics tick: per rule and target (a VM, or "host")
// whether the threshold is breached, since when, and whether it has held for the rule's
// for_seconds. Pure bookkeeping on the samples it is given, so tests drive it with hand-made ones.

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/alarm_rules.h"
#include "daemon/metrics_history.h"

namespace corral::daemon {

/// Where one rule stands for one target.
struct AlarmTargetState {
    std::optional<double> value;           ///< the last value measured
    double measured_at = 0;                ///< Unix time of that value's sample
    std::optional<double> breached_since;  ///< start of the first interval of the current breach
    std::optional<double> firing_since;    ///< when it fired; nullopt while ok (or pending)
};

/// Not thread-safe: the caller (AlarmService) serializes observe() and the readers.
class AlarmEvaluator {
public:
    using Readings = std::vector<std::pair<std::string, std::optional<MetricsSample>>>;

    /// `host_cpus` turns the host's busy CPU-seconds into host.cpu's busy fraction.
    explicit AlarmEvaluator(unsigned host_cpus) : m_host_cpus(host_cpus) {}

    /// One tick: every VM's sample (nullopt when it is not running; a VM missing was deleted)
    /// and the host's. Returns the events it raises: alarm.firing when a breach has held for
    /// for_seconds, alarm.resolved when a firing target is back within the threshold, or stopped
    /// or was deleted. Each: {kind, alarm, target, metric, value, threshold, above|below,
    /// for_seconds, message}.
    std::vector<nlohmann::json> observe(const std::vector<AlarmRule>& rules, const Readings& vms,
                                        const std::optional<MetricsSample>& host);

    /// The targets `rule` has judged, by name ("host" for host.* metrics).
    const std::map<std::string, AlarmTargetState>* targets(const std::string& rule) const;

private:
    unsigned m_host_cpus;
    std::map<std::string, MetricsSample> m_last_vm;  // each running VM's previous sample
    std::optional<MetricsSample> m_last_host;
    std::map<std::string, std::map<std::string, AlarmTargetState>> m_states;  // rule -> target -> state
};

/// The target name host.* rules are judged under.
inline constexpr const char* k_alarm_host_target = "host";

}  // namespace corral::daemon
