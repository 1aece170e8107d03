#pragma once

// corrald's alarms (docs/api.md "Alarms"): the rules kept in STATE/alarms.json, judged on every
// metrics tick (MetricsHistory::on_tick), their events on the EventBus and their webhooks.

#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "daemon/alarm_evaluator.h"
#include "daemon/alarm_rules.h"
#include "daemon/webhook_sender.h"

namespace corral::daemon {

class EventBus;

/// Thread-safe: API handlers add, remove and read rules while the sampling thread observes.
class AlarmService {
public:
    AlarmService(std::filesystem::path state_dir, EventBus& events, unsigned host_cpus, WebhookPolicy policy = {});

    /// Reads the rules kept; a file that cannot be read fails start-up (it says which).
    Result<void> load();

    std::vector<AlarmRule> list() const;
    std::optional<AlarmRule> get(const std::string& name) const;
    /// Adds `rule` (its created_at set now) and saves the file: a Conflict when the name is taken.
    Result<AlarmRule> add(AlarmRule rule);
    /// Removes the rule named `name` and saves the file: NotFound when there is none.
    Result<void> remove(const std::string& name);
    /// The rule with its state: "targets" (each: target, state ok|pending|firing, value,
    /// measured_at, breached_since, firing_since) and last_webhook_error.
    nlohmann::json describe(const AlarmRule& rule) const;

    /// One metrics tick (the sampling thread): judges every rule, publishes its events and
    /// queues their webhooks.
    void observe(const AlarmEvaluator::Readings& vms, const std::optional<MetricsSample>& host);

private:
    void delivered(const std::string& alarm, const std::string& error);

    AlarmFile m_file;
    EventBus& m_events;
    mutable std::mutex m_mutex;  // guards m_rules, m_evaluator, m_webhook_errors
    std::vector<AlarmRule> m_rules;
    AlarmEvaluator m_evaluator;
    /// Per rule: the last delivery's error, "" after a success (absent: none tried yet).
    std::map<std::string, std::string> m_webhook_errors;
    // Last: its thread calls delivered(), so it stops before the rest goes.
    WebhookSender m_sender;
};

}  // namespace corral::daemon
