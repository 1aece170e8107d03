#include "daemon/alarm_evaluator.h"

#include <cmath>
#include <set>

#include <fmt/format.h>

namespace corral::daemon {
namespace {

using nlohmann::json;

/// Values in events and the API: three decimals are plenty for fractions, CPUs and ms, and
/// leave byte counts whole.
double rounded(double value) {
    return std::round(value * 1000) / 1000;
}

/// A value for a message: byte counts whole ("2000000000", not "2e+09"), small numbers short.
std::string number_text(double value) {
    return std::fabs(value) >= 1e5 ? fmt::format("{:.0f}", value) : fmt::format("{:g}", rounded(value));
}

const char* direction_word(const AlarmRule& rule) {
    return rule.direction == AlarmDirection::Above ? "above" : "below";
}

std::string target_text(const AlarmRule& rule, const std::string& target) {
    return target == k_alarm_host_target && !rule.vm ? std::string("the host") : target;
}

json event_of(const char* kind, const AlarmRule& rule, const std::string& target, std::optional<double> value,
              std::string message) {
    json event = {{"kind", kind},
                  {"alarm", rule.name},
                  {"target", target},
                  {"metric", rule.metric},
                  {"value", value ? json(rounded(*value)) : json()},
                  {"threshold", rule.threshold},
                  {direction_word(rule), rule.threshold},
                  {"for_seconds", rule.for_seconds},
                  {"message", std::move(message)}};
    if (!rule.webhook.empty())
        event["webhook"] = rule.webhook;
    return event;
}

}  // namespace

std::vector<json> AlarmEvaluator::observe(const std::vector<AlarmRule>& rules, const Readings& vms,
                                          const std::optional<MetricsSample>& host) {
    std::vector<json> events;
    // Each target's interval: its previous sample and this one.
    std::map<std::string, std::pair<MetricsSample, MetricsSample>> vm_intervals;
    std::set<std::string> known;    // VMs that exist
    std::set<std::string> running;  // VMs with a sample now
    for (const auto& [name, sample] : vms) {
        known.insert(name);
        if (!sample)
            continue;
        running.insert(name);
        if (auto it = m_last_vm.find(name); it != m_last_vm.end())
            vm_intervals.emplace(name, std::pair{it->second, *sample});
    }

    std::set<std::string> rule_names;
    for (const auto& rule : rules) {
        rule_names.insert(rule.name);
        auto& states = m_states[rule.name];
        const auto metric = find_alarm_metric(rule.metric);
        if (!metric)
            continue;
        auto judge = [&](const std::string& target, const MetricsSample& before, const MetricsSample& after) {
            auto value = metric_value(rule.metric, before, after, m_host_cpus);
            if (!value)
                return;
            auto& state = states[target];
            state.value = *value;
            state.measured_at = after.time;
            if (!rule.breached(*value)) {
                state.breached_since.reset();
                if (state.firing_since) {
                    state.firing_since.reset();
                    events.push_back(
                        event_of("alarm.resolved", rule, target, value,
                                 fmt::format("alarm {}: {} of {} is {}, back {} {}", rule.name, rule.metric,
                                             target_text(rule, target), number_text(*value),
                                             rule.direction == AlarmDirection::Above ? "at or under" : "at or over",
                                             number_text(rule.threshold))));
                }
                return;
            }
            // The value covers the whole interval, so the breach began when the interval did.
            if (!state.breached_since)
                state.breached_since = before.time;
            const double held = after.time - *state.breached_since;
            if (!state.firing_since && held >= static_cast<double>(rule.for_seconds)) {
                state.firing_since = after.time;
                events.push_back(
                    event_of("alarm.firing", rule, target, value,
                             fmt::format("alarm {}: {} of {} is {} ({}), {} {} for {:.0f} s", rule.name, rule.metric,
                                         target_text(rule, target), number_text(*value), metric->unit,
                                         direction_word(rule), number_text(rule.threshold), held)));
            }
        };

        if (metric->host) {
            if (host && m_last_host)
                judge(k_alarm_host_target, *m_last_host, *host);
        } else {
            for (const auto& [name, interval] : vm_intervals)
                if (!rule.vm || *rule.vm == name)
                    judge(name, interval.first, interval.second);
        }

        // A VM that stopped or was deleted is no longer breaching anything: a firing alarm on
        // it resolves, so whoever was paged hears it ended.
        for (auto it = states.begin(); it != states.end();) {
            const std::string& target = it->first;
            if (metric->host || running.contains(target)) {
                ++it;
                continue;
            }
            if (it->second.firing_since)
                events.push_back(event_of("alarm.resolved", rule, target, std::nullopt,
                                          fmt::format("alarm {}: {} {}", rule.name, target,
                                                      known.contains(target) ? "stopped" : "was deleted")));
            it = states.erase(it);
        }
    }
    // Deleted rules' states go with them.
    std::erase_if(m_states, [&rule_names](const auto& entry) { return !rule_names.contains(entry.first); });

    m_last_vm.clear();
    for (const auto& [name, sample] : vms)
        if (sample)
            m_last_vm.emplace(name, *sample);
    m_last_host = host;
    return events;
}

const std::map<std::string, AlarmTargetState>* AlarmEvaluator::targets(const std::string& rule) const {
    auto it = m_states.find(rule);
    return it == m_states.end() ? nullptr : &it->second;
}

}  // namespace corral::daemon
