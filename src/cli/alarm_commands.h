#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"

namespace CLI {
class App;
}

namespace corral::cli {

/// `corral alarm create|list|show|delete` (docs/cli.md "Alarms"). The object holds what CLI11
/// binds the options to, so it lives as long as the parse.
class AlarmCommands {
public:
    AlarmCommands(CLI::App& app, Invocation& invocation);

private:
    void call(std::string method, std::string target, View view, nlohmann::json body = nullptr, std::string done = {});

    Invocation& m_inv;
    std::string m_name;
    std::string m_metric;
    std::string m_vm;
    std::optional<double> m_above, m_below;
    std::string m_for;
    std::string m_webhook;
};

/// "90", "90s", "5m", "1h" as seconds; nullopt when it is none of those.
std::optional<uint64_t> parse_alarm_duration(const std::string& text);

/// The alarm views (View::AlarmTable, Alarm) as text.
std::string render_alarm_view(View view, const nlohmann::json& answer);

}  // namespace corral::cli
