#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"

namespace CLI {
class App;
}

namespace corral::cli {

/// `corral security-group create|list|show|edit|delete|rule-add|rule-remove|set-nic` (alias `sg`,
/// docs/cli.md "Security groups"). The object holds what CLI11 binds the options to, so it lives
/// as long as the parse.
class SecurityGroupCommands {
public:
    SecurityGroupCommands(CLI::App& app, Invocation& invocation);

private:
    void call(std::string method, std::string target, View view, nlohmann::json body = nullptr, std::string done = {});
    /// The rule given by --direction/--protocol/--port/--remote as the API's JSON.
    nlohmann::json rule() const;

    Invocation& m_inv;
    std::string m_name;
    std::string m_description;
    bool m_description_given = false;
    std::string m_direction = "in";
    std::string m_protocol = "any";
    std::string m_port;
    std::string m_remote;
    int m_index = 0;
    size_t m_nic = 0;
    std::vector<std::string> m_groups;
};

/// "22", "8000-8100": "" when it is a port or a range of ports, else what is wrong.
std::string check_port_range(const std::string& text);

/// The security-group views (View::SecurityGroupTable, View::SecurityGroup) and the trace
/// answer (View::Trace) as text.
std::string render_security_group_view(View view, const nlohmann::json& answer);

}  // namespace corral::cli
