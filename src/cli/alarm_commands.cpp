#include "cli/alarm_commands.h"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <charconv>

#include "base/api_path.h"
#include "cli/json_fields.h"
#include "cli/table.h"

namespace corral::cli {

namespace {

std::string alarms_path(const std::string& name = {}) {
    return name.empty() ? api_path("/alarms") : api_path("/alarms/" + name);
}

/// "above 0.8" or "below 1e+09".
std::string condition(const nlohmann::json& alarm) {
    for (const char* side : {"above", "below"})
        if (alarm.is_object() && alarm.contains(side) && alarm[side].is_number())
            return fmt::format("{} {:g}", side, alarm[side].get<double>());
    return "-";
}

/// Each target's state in one cell: "web1 firing since 12:00:03Z (0.97)", "ok" when none fires.
std::string targets_text(const nlohmann::json& alarm, bool every) {
    std::string out;
    if (alarm.is_object() && alarm.contains("targets"))
        for (const auto& t : items(alarm["targets"])) {
            const std::string state = field_text(t, "state");
            if (!every && state == "ok")
                continue;
            std::string line = fmt::format("{} {}", field_text(t, "target"), state);
            if (state == "firing")
                line += " since " + field_text(t, "firing_since");
            else if (state == "pending")
                line += " since " + field_text(t, "breached_since");
            line += fmt::format(" ({})", field_text(t, "value"));
            out += (out.empty() ? "" : "; ") + line;
        }
    return out.empty() ? (every ? "-" : "ok") : out;
}

}  // namespace

std::optional<uint64_t> parse_alarm_duration(const std::string& text) {
    uint64_t number = 0;
    const char* end = text.data() + text.size();
    auto [rest, ec] = std::from_chars(text.data(), end, number);
    if (ec != std::errc() || rest == text.data())
        return std::nullopt;
    const std::string unit(rest, end);
    uint64_t scale = 0;
    if (unit.empty() || unit == "s")
        scale = 1;
    else if (unit == "m")
        scale = 60;
    else if (unit == "h")
        scale = 3600;
    else
        return std::nullopt;
    if (number > UINT64_MAX / scale)
        return std::nullopt;
    return number * scale;
}

AlarmCommands::AlarmCommands(CLI::App& app, Invocation& invocation) : m_inv(invocation) {
    CLI::App* alarm = app.add_subcommand("alarm", "threshold alarms on metrics: events and webhooks when one holds")
                          ->require_subcommand(1);

    CLI::App* create = alarm->add_subcommand("create", "watch a metric: fire when it crosses a threshold for a while");
    create->add_option("name", m_name, "the alarm's name")->required();
    create
        ->add_option("--metric", m_metric,
                     "vm.cpu (CPUs used), vm.memory (bytes), vm.disk_read, vm.disk_write, vm.net_rx, vm.net_tx "
                     "(bytes/s), vm.run_delay (fraction), vm.disk_write_latency (ms), host.cpu (busy fraction), "
                     "host.memory (bytes used)")
        ->required()
        ->type_name("METRIC");
    auto* above = create->add_option("--above", m_above, "fire when the metric is above this")->type_name("NUMBER");
    auto* below = create->add_option("--below", m_below, "fire when the metric is below this")->type_name("NUMBER");
    above->excludes(below);
    create->add_option("--vm", m_vm, "only this VM (default: every VM, for vm.* metrics)")->type_name("VM");
    create->add_option("--for", m_for, "how long the condition must hold before it fires: 90, 90s, 5m, 1h (default 0)")
        ->type_name("DURATION");
    create->add_option("--webhook", m_webhook, "POST each firing and resolved event as JSON to this URL")
        ->type_name("URL");
    create->callback([this] {
        if (!m_above && !m_below)
            throw CLI::ValidationError("alarm create needs --above N or --below N: the threshold to watch");
        nlohmann::json body = {{"name", m_name}, {"metric", m_metric}};
        if (m_above)
            body["above"] = *m_above;
        if (m_below)
            body["below"] = *m_below;
        if (!m_vm.empty())
            body["vm"] = m_vm;
        if (!m_for.empty()) {
            auto seconds = parse_alarm_duration(m_for);
            if (!seconds)
                throw CLI::ValidationError(fmt::format(
                    "--for '{}' is not a duration: give seconds (90 or 90s), minutes (5m) or hours (1h)", m_for));
            body["for_seconds"] = *seconds;
        }
        if (!m_webhook.empty())
            body["webhook"] = m_webhook;
        call("POST", alarms_path(), View::Alarm, body, fmt::format("created alarm {}", m_name));
    });
    alarm->add_subcommand("list", "list alarms with their state")->callback([this] {
        call("GET", alarms_path(), View::AlarmTable);
    });
    CLI::App* show = alarm->add_subcommand("show", "show an alarm and its state for each VM it watches");
    show->add_option("name", m_name, "the alarm")->required();
    show->callback([this] { call("GET", alarms_path(m_name), View::Alarm); });
    CLI::App* del = alarm->add_subcommand("delete", "delete an alarm");
    del->add_option("name", m_name, "the alarm")->required();
    del->callback(
        [this] { call("DELETE", alarms_path(m_name), View::None, nullptr, fmt::format("deleted alarm {}", m_name)); });
}

void AlarmCommands::call(std::string method, std::string target, View view, nlohmann::json body, std::string done) {
    m_inv.set_call(std::move(method), std::move(target), view, std::move(body), m_name, std::move(done));
}

std::string render_alarm_view(View view, const nlohmann::json& answer) {
    switch (view) {
        case View::AlarmTable: {
            Table table({"NAME", "METRIC", "VM", "CONDITION", "FOR", "STATE", "WEBHOOK ERROR"});
            for (const auto& a : items(answer))
                table.add_row({field_text(a, "name"), field_text(a, "metric"), field_text(a, "vm"), condition(a),
                               field_text(a, "for_seconds") + "s", targets_text(a, false),
                               field_text(a, "last_webhook_error")});
            return table.render();
        }
        case View::Alarm: {
            std::string out = render_fields({{"name", field_text(answer, "name")},
                                             {"metric", field_text(answer, "metric")},
                                             {"vm", field_text(answer, "vm")},
                                             {"condition", condition(answer)},
                                             {"for", field_text(answer, "for_seconds") + "s"},
                                             {"webhook", field_text(answer, "webhook")},
                                             {"last webhook error", field_text(answer, "last_webhook_error")},
                                             {"state", field_text(answer, "state")},
                                             {"created", field_text(answer, "created_at")}});
            Table table({"TARGET", "STATE", "VALUE", "MEASURED", "BREACHED SINCE", "FIRING SINCE"});
            if (answer.is_object() && answer.contains("targets"))
                for (const auto& t : items(answer["targets"]))
                    table.add_row({field_text(t, "target"), field_text(t, "state"), field_text(t, "value"),
                                   field_text(t, "measured_at"), field_text(t, "breached_since"),
                                   field_text(t, "firing_since")});
            return out + table.render();
        }
        default:
            return {};
    }
}

}  // namespace corral::cli
