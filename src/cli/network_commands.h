#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"

namespace CLI {
class App;
}

namespace corral::cli {

/// `corral network create|list|show|edit|delete|leases` (docs/cli.md "Networks"). Registered on
/// the top-level app by parse_command_line; the object holds what CLI11 binds the options to, so
/// it lives as long as the parse.
class NetworkCommands {
public:
    NetworkCommands(CLI::App& app, Invocation& invocation);

private:
    void call(std::string method, std::string target, View view, nlohmann::json body = nullptr,
              std::string done = {});
    /// The JSON of the settings given on the command line (create and edit share them).
    nlohmann::json settings() const;

    Invocation& m_inv;
    std::string m_name;
    std::string m_kind;
    std::string m_bridge;
    std::string m_parent;
    std::optional<int> m_vlan;
    std::string m_subnet;
    std::string m_gateway;
    std::string m_dhcp_range;
    std::string m_subnet6;
    std::optional<int> m_mtu;
    std::vector<std::string> m_dns;
    bool m_no_dns = false;
    std::vector<std::string> m_reserve;
    bool m_no_reservations = false;
    std::string m_from;
    std::string m_to;
    std::string m_port;
};

/// "22/tcp", "53/udp", "22" (tcp) or "icmp" for `network trace --port`: "" when valid.
std::string check_trace_port(const std::string& text);

/// The network views (View::NetworkTable, View::Network, View::LeaseTable) as text.
std::string render_network_view(View view, const nlohmann::json& answer);

}  // namespace corral::cli
