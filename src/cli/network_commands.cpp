#include "cli/network_commands.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cctype>
#include <charconv>

#include "cli/json_fields.h"
#include "cli/table.h"

namespace corral::cli {

namespace {

std::string network_path(const std::string& name = {}) {
    return name.empty() ? "/api/v1/networks" : "/api/v1/networks/" + name;
}

/// "MAC=IP" or "MAC=IP=HOSTNAME" -> a reservation; the daemon checks the values themselves.
std::string check_reservation(const std::string& text) {
    const size_t first = text.find('=');
    if (first == std::string::npos || first == 0 || first + 1 == text.size())
        return fmt::format("'{}' is not MAC=IP or MAC=IP=HOSTNAME", text);
    return {};
}

nlohmann::json reservation_json(const std::string& text) {
    const size_t first = text.find('=');
    const size_t second = text.find('=', first + 1);
    nlohmann::json out = {{"mac", text.substr(0, first)},
                          {"ipv4", text.substr(first + 1, second == std::string::npos ? std::string::npos
                                                                                       : second - first - 1)}};
    if (second != std::string::npos) out["hostname"] = text.substr(second + 1);
    return out;
}

/// Query-string encoding for a VM name or an address (IPv6 has ':', harmless, kept readable).
std::string percent_encode(const std::string& text) {
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':') out += static_cast<char>(c);
        else out += fmt::format("%{:02X}", c);
    }
    return out;
}

std::string check_range(const std::string& text) {
    const size_t dash = text.find('-');
    if (dash == std::string::npos || dash == 0 || dash + 1 == text.size())
        return fmt::format("'{}' is not START-END, e.g. 10.0.101.128-10.0.101.254", text);
    return {};
}

std::string joined(const nlohmann::json& object, const char* key) {
    if (!object.is_object() || !object.contains(key) || !object[key].is_array() || object[key].empty()) return "-";
    std::string out;
    for (const auto& item : object[key]) {
        if (!out.empty()) out += ", ";
        out += item.is_string() ? item.get<std::string>() : item.dump();
    }
    return out;
}

std::string render_network(const nlohmann::json& network) {
    std::vector<std::pair<std::string, std::string>> fields = {
        {"name", field_text(network, "name")},
        {"kind", field_text(network, "kind")},
        {"bridge", field_text(network, "bridge")},
        {"subnet4", field_text(network, "subnet4")},
        {"gateway4", field_text(network, "gateway4")},
        {"dhcp range", field_text(network, "dhcp_start") + " - " + field_text(network, "dhcp_end")},
        {"subnet6", field_text(network, "subnet6")},
        {"mtu", field_text(network, "mtu")},
        {"dns forwarders", joined(network, "dns_forwarders")},
        {"vms", joined(network, "vms")},
    };
    if (network.contains("vlan_id") && !network["vlan_id"].is_null()) {
        fields.insert(fields.begin() + 3, {"parent", field_text(network, "parent")});
        fields.insert(fields.begin() + 4, {"vlan id", field_text(network, "vlan_id")});
    }
    std::string reservations;
    if (network.contains("reservations") && network["reservations"].is_array())
        for (const auto& reservation : network["reservations"]) {
            if (!reservations.empty()) reservations += ", ";
            reservations += field_text(reservation, "mac") + "=" + field_text(reservation, "ipv4");
            if (reservation.contains("hostname") && !reservation["hostname"].is_null())
                reservations += "=" + field_text(reservation, "hostname");
        }
    fields.push_back({"reservations", reservations.empty() ? "-" : reservations});
    if (network.contains("status") && network["status"].is_object()) {
        const auto& status = network["status"];
        const auto& dnsmasq = status.contains("dnsmasq") ? status["dnsmasq"] : nlohmann::json();
        fields.push_back(
            {"dnsmasq", dnsmasq.is_object()
                            ? fmt::format("pid {}, restarted {} times, reloaded {} times", field_text(dnsmasq, "pid"),
                                          field_text(dnsmasq, "restarts"), field_text(dnsmasq, "reloads"))
                            : "-"});
        fields.push_back({"problems", joined(status, "problems")});
    }
    std::string out = render_fields(fields);
    if (network.contains("host_policy") && network["host_policy"].is_object()) {
        const auto& policy = network["host_policy"];
        if (policy.contains("problems") && policy["problems"].is_array())
            for (const auto& problem : policy["problems"])
                out += fmt::format("host problem: {}\n  fix: {}\n", field_text(problem, "problem"),
                                   field_text(problem, "fix"));
    }
    return out;
}

}  // namespace

std::string check_trace_port(const std::string& text) {
    if (text == "icmp") return {};
    const size_t slash = text.find('/');
    const std::string number = text.substr(0, slash);
    const std::string protocol = slash == std::string::npos ? "tcp" : text.substr(slash + 1);
    int port = 0;
    const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), port);
    if (ec != std::errc() || end != number.data() + number.size() || port < 1 || port > 65535 ||
        (protocol != "tcp" && protocol != "udp"))
        return fmt::format("'{}' is not PORT/tcp, PORT/udp (PORT 1-65535) or icmp", text);
    return {};
}

NetworkCommands::NetworkCommands(CLI::App& app, Invocation& invocation) : m_inv(invocation) {
    CLI::App* network = app.add_subcommand("network", "managed networks (NAT, isolated, bridged, VLAN)")
                            ->require_subcommand(1);
    auto name_arg = [this](CLI::App* cmd, const char* what) { cmd->add_option("name", m_name, what)->required(); };
    auto settings_options = [this](CLI::App* cmd) {
        cmd->add_option("--subnet", m_subnet, "IPv4 subnet, e.g. 10.0.101.0/24 (default: the first free /24)")
            ->type_name("CIDR");
        cmd->add_option("--gateway", m_gateway, "the host's address on the network (default: the first host)")
            ->type_name("IP");
        cmd->add_option("--dhcp-range", m_dhcp_range, "dynamic DHCP range (default: the upper half of the subnet)")
            ->check(CLI::Validator(check_range, "START-END"))
            ->type_name("START-END");
        cmd->add_option("--subnet6", m_subnet6,
                        "IPv6 /64 for SLAAC and NAT66, e.g. fd00:1::/64 (nat and isolated networks)")
            ->type_name("CIDR");
        cmd->add_option("--mtu", m_mtu, "MTU of the bridge and the VMs' NICs (576-9000, default 1500)");
        cmd->add_option("--dns", m_dns, "an upstream DNS server (repeatable; default: the host's)")->type_name("IP");
        cmd->add_option("--reserve", m_reserve, "a static DHCP reservation MAC=IP[=HOSTNAME] (repeatable)")
            ->check(CLI::Validator(check_reservation, "MAC=IP[=HOSTNAME]"))
            ->type_name("MAC=IP[=HOSTNAME]");
    };

    CLI::App* create = network->add_subcommand("create", "create a network and bring it up");
    name_arg(create, "the network's name");
    create->add_option("--kind", m_kind, "nat (default), isolated, bridged or vlan")
        ->check(CLI::IsMember({"nat", "isolated", "bridged", "vlan"}));
    create->add_option("--bridge", m_bridge, "bridged: the host bridge; others: the bridge to make (default crl-NAME)");
    create->add_option("--parent", m_parent, "vlan: the interface that carries the tagged frames");
    create->add_option("--vlan", m_vlan, "vlan: the 802.1Q tag (1-4094)");
    settings_options(create);
    create->callback([this] {
        nlohmann::json body = settings();
        body["name"] = m_name;
        if (!m_kind.empty()) body["kind"] = m_kind;
        if (!m_bridge.empty()) body["bridge"] = m_bridge;
        if (!m_parent.empty()) body["parent"] = m_parent;
        if (m_vlan) body["vlan_id"] = *m_vlan;
        call("POST", network_path(), View::Network, body, fmt::format("created network {}", m_name));
    });

    network->add_subcommand("list", "list networks")->callback([this] {
        call("GET", network_path(), View::NetworkTable);
    });
    CLI::App* show = network->add_subcommand("show", "show a network, its VMs, its dnsmasq and host problems");
    name_arg(show, "the network");
    show->callback([this] { call("GET", network_path(m_name), View::Network); });

    CLI::App* edit = network->add_subcommand("edit", "change a network's addresses, MTU, DNS or reservations");
    name_arg(edit, "the network");
    settings_options(edit);
    edit->add_flag("--no-dns", m_no_dns, "forget the upstream DNS servers (use the host's)");
    edit->add_flag("--no-reservations", m_no_reservations, "remove every reservation");
    edit->callback([this] {
        call("PATCH", network_path(m_name), View::Network, settings(), fmt::format("changed network {}", m_name));
    });

    CLI::App* del = network->add_subcommand("delete", "delete a network no VM uses");
    name_arg(del, "the network");
    del->callback([this] {
        call("DELETE", network_path(m_name), View::None, nullptr, fmt::format("deleted network {}", m_name));
    });

    CLI::App* trace = network->add_subcommand(
        "trace", "would a new connection pass? the verdict of the installed rules and the rule that decides");
    name_arg(trace, "the network");
    trace->add_option("--from", m_from, "a VM on the network, or an address")->required()->type_name("VM|IP");
    trace->add_option("--to", m_to, "a VM on the network, or an address")->required()->type_name("VM|IP");
    trace->add_option("--port", m_port, "PORT/tcp (the default protocol), PORT/udp, or icmp")
        ->required()
        ->check(CLI::Validator(check_trace_port, "PORT[/tcp|/udp]|icmp"))
        ->type_name("PORT[/PROTO]|icmp");
    trace->callback([this] {
        std::string protocol = "tcp";
        std::string port = m_port;
        if (m_port == "icmp") {
            protocol = "icmp";
            port.clear();
        } else if (const size_t slash = m_port.find('/'); slash != std::string::npos) {
            protocol = m_port.substr(slash + 1);
            port = m_port.substr(0, slash);
        }
        std::string target = fmt::format("{}/trace?from={}&to={}&protocol={}", network_path(m_name),
                                         percent_encode(m_from), percent_encode(m_to), protocol);
        if (!port.empty()) target += "&port=" + port;
        call("GET", target, View::Trace);
    });

    CLI::App* leases = network->add_subcommand("leases", "the DHCP leases handed out on a network");
    name_arg(leases, "the network");
    leases->callback([this] { call("GET", network_path(m_name) + "/leases", View::LeaseTable); });
}

void NetworkCommands::call(std::string method, std::string target, View view, nlohmann::json body, std::string done) {
    m_inv.set_call(std::move(method), std::move(target), view, std::move(body), m_name, std::move(done));
}

nlohmann::json NetworkCommands::settings() const {
    nlohmann::json body = nlohmann::json::object();
    if (!m_subnet.empty()) body["subnet4"] = m_subnet;
    if (!m_gateway.empty()) body["gateway4"] = m_gateway;
    if (!m_dhcp_range.empty()) {
        const size_t dash = m_dhcp_range.find('-');
        body["dhcp_start"] = m_dhcp_range.substr(0, dash);
        body["dhcp_end"] = m_dhcp_range.substr(dash + 1);
    }
    if (!m_subnet6.empty()) body["subnet6"] = m_subnet6;
    if (m_mtu) body["mtu"] = *m_mtu;
    if (!m_dns.empty() || m_no_dns) body["dns_forwarders"] = m_dns;
    if (!m_reserve.empty() || m_no_reservations) {
        body["reservations"] = nlohmann::json::array();
        for (const auto& reservation : m_reserve) body["reservations"].push_back(reservation_json(reservation));
    }
    return body;
}

std::string render_network_view(View view, const nlohmann::json& answer) {
    switch (view) {
    case View::NetworkTable: {
        Table table({"NAME", "KIND", "BRIDGE", "SUBNET", "GATEWAY", "VMS"});
        for (const auto& network : items(answer)) {
            const size_t vms = network.contains("vms") && network["vms"].is_array() ? network["vms"].size() : 0;
            table.add_row({field_text(network, "name"), field_text(network, "kind"), field_text(network, "bridge"),
                           field_text(network, "subnet4"), field_text(network, "gateway4"), std::to_string(vms)});
        }
        return table.render();
    }
    case View::Network: return render_network(answer);
    case View::LeaseTable: {
        Table table({"IPV4", "MAC", "HOSTNAME", "EXPIRES"});
        for (const auto& lease : items(answer))
            table.add_row({field_text(lease, "ipv4"), field_text(lease, "mac"), field_text(lease, "hostname"),
                           field_text(lease, "expires")});
        return table.render();
    }
    default: return {};
    }
}

}  // namespace corral::cli
