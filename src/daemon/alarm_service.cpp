#include "daemon/alarm_service.h"

#include <cerrno>
#include <cmath>
#include <ctime>

#include <fmt/format.h>

#include "base/log.h"
#include "daemon/event_bus.h"
#include "daemon/http/api_error.h"

namespace corral::daemon {
namespace {

constexpr const char* k_alarm_file = "alarms.json";

nlohmann::json iso_time(std::optional<double> unix_seconds) {
    if (!unix_seconds)
        return nullptr;
    std::tm parts{};
    const std::time_t t = static_cast<std::time_t>(*unix_seconds);
    gmtime_r(&t, &parts);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
    return text;
}

}  // namespace

AlarmService::AlarmService(std::filesystem::path state_dir, EventBus& events, unsigned host_cpus, WebhookPolicy policy)
    : m_file(state_dir / k_alarm_file),
      m_events(events),
      m_evaluator(host_cpus),
      m_sender(
          [this](const std::string& alarm, const std::string&, const std::string& error) { delivered(alarm, error); },
          policy) {}

Result<void> AlarmService::load() {
    auto rules = TRY(m_file.load());
    std::lock_guard lock(m_mutex);
    m_rules = std::move(rules);
    return {};
}

std::vector<AlarmRule> AlarmService::list() const {
    std::lock_guard lock(m_mutex);
    return m_rules;
}

std::optional<AlarmRule> AlarmService::get(const std::string& name) const {
    std::lock_guard lock(m_mutex);
    for (const auto& rule : m_rules)
        if (rule.name == name)
            return rule;
    return std::nullopt;
}

Result<AlarmRule> AlarmService::add(AlarmRule rule) {
    std::lock_guard lock(m_mutex);
    for (const auto& existing : m_rules)
        if (existing.name == rule.name)
            return fail(fmt::format("an alarm named {} already exists", rule.name), EEXIST);
    rule.created_at = utc_now();
    auto rules = m_rules;
    rules.push_back(rule);
    TRY_VOID(m_file.save(rules));  // kept on disk before it is in effect: nothing half made
    m_rules = std::move(rules);
    return rule;
}

Result<void> AlarmService::remove(const std::string& name) {
    std::lock_guard lock(m_mutex);
    auto rules = m_rules;
    if (std::erase_if(rules, [&name](const AlarmRule& rule) { return rule.name == name; }) == 0)
        return fail(fmt::format("no alarm named {}", name), ENOENT);
    TRY_VOID(m_file.save(rules));
    m_rules = std::move(rules);
    m_webhook_errors.erase(name);
    return {};
}

nlohmann::json AlarmService::describe(const AlarmRule& rule) const {
    auto out = alarm_rule_json(rule);
    std::lock_guard lock(m_mutex);
    auto targets = nlohmann::json::array();
    if (const auto* states = m_evaluator.targets(rule.name)) {
        for (const auto& [target, state] : *states) {
            const char* word = state.firing_since ? "firing" : state.breached_since ? "pending" : "ok";
            targets.push_back(
                {{"target", target},
                 {"state", word},
                 {"value", state.value ? nlohmann::json(std::round(*state.value * 1000) / 1000) : nlohmann::json()},
                 {"measured_at", iso_time(state.measured_at)},
                 {"breached_since", iso_time(state.breached_since)},
                 {"firing_since", iso_time(state.firing_since)}});
        }
    }
    out["targets"] = std::move(targets);
    bool firing = false;
    for (const auto& target : out["targets"])
        firing = firing || target["state"] == "firing";
    out["state"] = firing ? "firing" : "ok";
    auto error = m_webhook_errors.find(rule.name);
    out["last_webhook_error"] =
        error == m_webhook_errors.end() || error->second.empty() ? nlohmann::json() : nlohmann::json(error->second);
    return out;
}

void AlarmService::observe(const AlarmEvaluator::Readings& vms, const std::optional<MetricsSample>& host) {
    std::vector<nlohmann::json> events;
    {
        std::lock_guard lock(m_mutex);
        events = m_evaluator.observe(m_rules, vms, host);
    }
    for (auto& event : events) {
        event["time"] = utc_now();
        // The URL is the rule's, not the event's: event watchers with no right to the rule's
        // webhook (a web UI session) need not see where it points.
        std::string webhook;
        if (event.contains("webhook")) {
            webhook = event["webhook"].get<std::string>();
            event.erase("webhook");
        }
        log_warning("{}", event.value("message", ""));
        if (!webhook.empty())
            m_sender.post(event["alarm"].get<std::string>(), webhook, dump_json(event));
        m_events.publish(std::move(event));
    }
}

void AlarmService::delivered(const std::string& alarm, const std::string& error) {
    if (!error.empty())
        log_warning("alarm {}: webhook not delivered: {}", alarm, error);
    std::lock_guard lock(m_mutex);
    // A rule deleted meanwhile has no state to show it in.
    for (const auto& rule : m_rules)
        if (rule.name == alarm)
            m_webhook_errors[alarm] = error;
}

}  // namespace corral::daemon
