#pragma once

// Alarm rules (issue 17, "Alarms"; docs/api.md "Alarms"): a threshold on one metric of one VM,
// of every VM, or of the host, held for a while before it fires. This file is the rule itself,
// the metrics a rule may name and how each is measured between two samples, and the file that
// keeps the rules across restarts (STATE/alarms.json, written atomically).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "daemon/metrics_history.h"

namespace corral::daemon {

/// A metric an alarm may watch: its API name, what it is measured in, and whether it is the host's.
struct AlarmMetric {
    const char* name;  ///< "vm.cpu"
    const char* unit;  ///< "CPUs used", for messages and docs
    bool host;
};

/// Every metric a rule may name, in the order docs/api.md lists them.
const std::vector<AlarmMetric>& alarm_metrics();
/// The metric called `name`; nullopt for an unknown name.
std::optional<AlarmMetric> find_alarm_metric(const std::string& name);
/// "vm.cpu, vm.memory, ..." for error messages.
std::string alarm_metric_names();

/// The value of `metric` between two samples of the same VM (or of the host, which has
/// `host_cpus` CPUs): rates for counters (bytes/s, CPUs), the newer sample for gauges (memory);
/// nullopt when the samples make no interval (the same time, or the clock went back).
std::optional<double> metric_value(const std::string& metric, const MetricsSample& before, const MetricsSample& after,
                                   unsigned host_cpus);

enum class AlarmDirection { Above, Below };

struct AlarmRule {
    std::string name;
    std::string metric;
    std::optional<std::string> vm;  ///< one VM; nullopt: every VM (vm.* metrics) or the host (host.*)
    AlarmDirection direction = AlarmDirection::Above;
    double threshold = 0;
    uint64_t for_seconds = 0;  ///< how long the condition must hold before the alarm fires
    std::string webhook;       ///< URL POSTed each firing and resolved event; empty for none
    std::string created_at;

    /// Whether `value` breaks the rule (strictly above or below the threshold).
    bool breached(double value) const {
        return direction == AlarmDirection::Above ? value > threshold : value < threshold;
    }
};

/// The rule as the API and the file show it: {name, metric, vm, above|below, for_seconds, webhook, created_at}.
nlohmann::json alarm_rule_json(const AlarmRule& rule);
/// A rule from alarm_rule_json()'s form (the file); an Invalid error when it is not one.
Result<AlarmRule> alarm_rule_from_json(const nlohmann::json& json);

/// STATE/alarms.json: the rules, a JSON array, replaced atomically on each change.
class AlarmFile {
public:
    explicit AlarmFile(std::filesystem::path path) : m_path(std::move(path)) {}
    /// The rules kept; none when the file does not exist yet.
    Result<std::vector<AlarmRule>> load() const;
    Result<void> save(const std::vector<AlarmRule>& rules) const;
    const std::filesystem::path& path() const { return m_path; }

private:
    std::filesystem::path m_path;
};

}  // namespace corral::daemon
