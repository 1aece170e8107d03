#include "daemon/alarm_rules.h"

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "base/private_file.h"

namespace corral::daemon {
namespace {

using nlohmann::json;

/// Growth of a counter per second; a counter that went back (a restarted VM) counts as 0.
double per_second(double before, double after, double seconds) {
    return after >= before ? (after - before) / seconds : 0.0;
}

double per_second(uint64_t before, uint64_t after, double seconds) {
    return per_second(static_cast<double>(before), static_cast<double>(after), seconds);
}

}  // namespace

const std::vector<AlarmMetric>& alarm_metrics() {
    static const std::vector<AlarmMetric> metrics = {
        {"vm.cpu", "CPUs used", false},
        {"vm.memory", "bytes resident", false},
        {"vm.disk_read", "bytes/s", false},
        {"vm.disk_write", "bytes/s", false},
        {"vm.net_rx", "bytes/s", false},
        {"vm.net_tx", "bytes/s", false},
        {"vm.run_delay", "fraction of its vCPUs' time waiting for a host CPU", false},
        {"vm.disk_write_latency", "ms per write", false},
        {"host.cpu", "busy fraction of all CPUs", true},
        {"host.memory", "bytes used", true},
    };
    return metrics;
}

std::optional<AlarmMetric> find_alarm_metric(const std::string& name) {
    for (const auto& metric : alarm_metrics())
        if (name == metric.name)
            return metric;
    return std::nullopt;
}

std::string alarm_metric_names() {
    std::string out;
    for (const auto& metric : alarm_metrics())
        out += (out.empty() ? "" : ", ") + std::string(metric.name);
    return out;
}

std::optional<double> metric_value(const std::string& metric, const MetricsSample& before, const MetricsSample& after,
                                   unsigned host_cpus) {
    const double seconds = after.time - before.time;
    if (!(seconds > 0))
        return std::nullopt;
    if (metric == "vm.cpu")
        return per_second(before.cpu_seconds, after.cpu_seconds, seconds);
    if (metric == "vm.memory" || metric == "host.memory")
        return static_cast<double>(after.memory_bytes);
    if (metric == "vm.disk_read")
        return per_second(before.disk_read_bytes, after.disk_read_bytes, seconds);
    if (metric == "vm.disk_write")
        return per_second(before.disk_write_bytes, after.disk_write_bytes, seconds);
    if (metric == "vm.net_rx")
        return per_second(before.net_rx_bytes, after.net_rx_bytes, seconds);
    if (metric == "vm.net_tx")
        return per_second(before.net_tx_bytes, after.net_tx_bytes, seconds);
    if (metric == "vm.run_delay")
        return std::clamp(per_second(before.vcpu_run_delay_seconds, after.vcpu_run_delay_seconds, seconds) /
                              std::max(1u, after.vcpus),
                          0.0, 1.0);
    if (metric == "vm.disk_write_latency") {
        // No write completed in the interval: no latency to judge, which is not a slow disk.
        if (after.disk_write_ops <= before.disk_write_ops || after.disk_write_time_ns < before.disk_write_time_ns)
            return 0.0;
        return static_cast<double>(after.disk_write_time_ns - before.disk_write_time_ns) /
               static_cast<double>(after.disk_write_ops - before.disk_write_ops) / 1e6;
    }
    if (metric == "host.cpu")
        return std::clamp(per_second(before.cpu_seconds, after.cpu_seconds, seconds) / std::max(1u, host_cpus), 0.0,
                          1.0);
    return std::nullopt;
}

json alarm_rule_json(const AlarmRule& rule) {
    json out = {{"name", rule.name},
                {"metric", rule.metric},
                {"vm", rule.vm ? json(*rule.vm) : json()},
                {"above", nullptr},
                {"below", nullptr},
                {"for_seconds", rule.for_seconds},
                {"webhook", rule.webhook.empty() ? json() : json(rule.webhook)},
                {"created_at", rule.created_at}};
    out[rule.direction == AlarmDirection::Above ? "above" : "below"] = rule.threshold;
    return out;
}

Result<AlarmRule> alarm_rule_from_json(const json& item) {
    auto invalid = [&item](const char* why) {
        return fail(fmt::format("alarm rule {} {}", item.is_object() ? item.value("name", "?") : "?", why), EINVAL);
    };
    if (!item.is_object() || !item.contains("name") || !item["name"].is_string())
        return invalid("has no name");
    AlarmRule rule;
    rule.name = item["name"].get<std::string>();
    rule.metric = item.value("metric", "");
    if (!find_alarm_metric(rule.metric))
        return invalid("names no known metric");
    if (item.contains("vm") && item["vm"].is_string())
        rule.vm = item["vm"].get<std::string>();
    if (item.contains("above") && item["above"].is_number()) {
        rule.direction = AlarmDirection::Above;
        rule.threshold = item["above"].get<double>();
    } else if (item.contains("below") && item["below"].is_number()) {
        rule.direction = AlarmDirection::Below;
        rule.threshold = item["below"].get<double>();
    } else {
        return invalid("has neither above nor below");
    }
    if (item.contains("for_seconds") && item["for_seconds"].is_number_unsigned())
        rule.for_seconds = item["for_seconds"].get<uint64_t>();
    if (item.contains("webhook") && item["webhook"].is_string())
        rule.webhook = item["webhook"].get<std::string>();
    rule.created_at = item.value("created_at", "");
    return rule;
}

Result<std::vector<AlarmRule>> AlarmFile::load() const {
    std::vector<AlarmRule> rules;
    std::ifstream in(m_path);
    if (!in) {
        if (errno == ENOENT || !std::filesystem::exists(m_path))
            return rules;
        return fail_errno(fmt::format("reading {}", m_path.string()));
    }
    std::stringstream text;
    text << in.rdbuf();
    auto list = json::parse(text.str(), nullptr, false);
    if (!list.is_array())
        return fail(fmt::format("{} is not a JSON array of alarm rules", m_path.string()));
    for (const auto& item : list)
        rules.push_back(TRY_CONTEXT(alarm_rule_from_json(item), m_path.string()));
    return rules;
}

Result<void> AlarmFile::save(const std::vector<AlarmRule>& rules) const {
    json list = json::array();
    for (const auto& rule : rules)
        list.push_back(alarm_rule_json(rule));
    return write_file_atomically(m_path.string(), list.dump(2) + "\n", 0600);
}

}  // namespace corral::daemon
