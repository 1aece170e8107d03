#include "cli/security_group_commands.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>

#include "cli/json_fields.h"
#include "cli/table.h"

namespace corral::cli {

namespace {

std::string group_path(const std::string& name = {}) {
    return name.empty() ? "/api/v1/security-groups" : "/api/v1/security-groups/" + name;
}

std::string joined(const nlohmann::json& list) {
    std::string out;
    for (const auto& item : items(list)) out += (out.empty() ? "" : ", ") + (item.is_string() ? item.get<std::string>() : item.dump());
    return out.empty() ? "-" : out;
}

bool parse_port(const std::string& text, int& port) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
    return ec == std::errc() && end == text.data() + text.size() && port >= 1 && port <= 65535;
}

}  // namespace

std::string check_port_range(const std::string& text) {
    const size_t dash = text.find('-');
    int from = 0;
    int to = 0;
    const bool ok = dash == std::string::npos ? parse_port(text, from)
                                              : parse_port(text.substr(0, dash), from) && parse_port(text.substr(dash + 1), to);
    if (!ok) return fmt::format("'{}' is not a port (1-65535) or a range FROM-TO", text);
    return {};
}

SecurityGroupCommands::SecurityGroupCommands(CLI::App& app, Invocation& invocation) : m_inv(invocation) {
    CLI::App* sg = app.add_subcommand("security-group", "security groups: firewall rules attached to VM NICs")
                       ->alias("sg")
                       ->require_subcommand(1);
    auto name_arg = [this](CLI::App* cmd, const char* what) { cmd->add_option("name", m_name, what)->required(); };

    CLI::App* create = sg->add_subcommand("create", "create a security group (add rules with rule-add)");
    name_arg(create, "the group's name");
    create->add_option("--description", m_description, "what the group is for");
    create->callback([this] {
        nlohmann::json body = {{"name", m_name}};
        if (!m_description.empty()) body["description"] = m_description;
        call("POST", group_path(), View::SecurityGroup, body, fmt::format("created security group {}", m_name));
    });
    sg->add_subcommand("list", "list security groups")->callback([this] {
        call("GET", group_path(), View::SecurityGroupTable);
    });
    CLI::App* show = sg->add_subcommand("show", "show a group's rules and the VMs that carry it");
    name_arg(show, "the group");
    show->callback([this] { call("GET", group_path(m_name), View::SecurityGroup); });

    CLI::App* edit = sg->add_subcommand("edit", "change a group's description");
    name_arg(edit, "the group");
    edit->add_option("--description", m_description, "what the group is for")->required();
    edit->callback([this] {
        call("PATCH", group_path(m_name), View::SecurityGroup, {{"description", m_description}},
             fmt::format("changed security group {}", m_name));
    });

    CLI::App* del = sg->add_subcommand("delete", "delete a group no NIC carries");
    name_arg(del, "the group");
    del->callback([this] {
        call("DELETE", group_path(m_name), View::None, nullptr, fmt::format("deleted security group {}", m_name));
    });

    CLI::App* add = sg->add_subcommand("rule-add", "add a rule to a group; running VMs follow at once");
    name_arg(add, "the group");
    add->add_option("--direction", m_direction, "in (default) or out")->check(CLI::IsMember({"in", "out"}));
    add->add_option("--protocol", m_protocol, "tcp, udp, icmp or any (default)")
        ->check(CLI::IsMember({"tcp", "udp", "icmp", "any"}));
    add->add_option("--port", m_port, "tcp/udp: a port or a range FROM-TO (default: every port)")
        ->check(CLI::Validator(check_port_range, "PORT[-PORT]"))
        ->type_name("PORT[-PORT]");
    add->add_option("--remote", m_remote, "who is on the other side: a CIDR or address, or a group's name "
                                          "(default: anyone)")
        ->type_name("CIDR|GROUP");
    add->callback([this] {
        call("POST", group_path(m_name) + "/rules", View::SecurityGroup, rule(),
             fmt::format("added a rule to security group {}", m_name));
    });

    CLI::App* remove = sg->add_subcommand("rule-remove", "remove rule INDEX (as `show` numbers them) from a group");
    name_arg(remove, "the group");
    remove->add_option("index", m_index, "the rule's number")->required()->check(CLI::NonNegativeNumber);
    remove->callback([this] {
        call("DELETE", fmt::format("{}/rules/{}", group_path(m_name), m_index), View::SecurityGroup, nullptr,
             fmt::format("removed rule {} from security group {}", m_index, m_name));
    });

    CLI::App* set_nic = sg->add_subcommand("set-nic", "set the groups of a VM's NIC, live (none given: no groups)");
    set_nic->add_option("vm", m_name, "the VM")->required();
    set_nic->add_option("groups", m_groups, "the groups, in order (none: the NIC passes everything)");
    set_nic->add_option("--nic", m_nic, "the NIC's number (default 0, the first)");
    set_nic->callback([this] {
        call("PUT", fmt::format("/api/v1/vms/{}/nics/{}/groups", m_name, m_nic), View::None,
             {{"groups", m_groups}},
             m_groups.empty() ? fmt::format("NIC {} of {} has no security groups", m_nic, m_name)
                              : fmt::format("NIC {} of {} carries {}", m_nic, m_name, fmt::join(m_groups, ", ")));
    });
}

nlohmann::json SecurityGroupCommands::rule() const {
    nlohmann::json body = {{"direction", m_direction}, {"protocol", m_protocol}};
    if (!m_port.empty()) {
        const size_t dash = m_port.find('-');
        body["port_from"] = std::stoi(m_port.substr(0, dash));
        body["port_to"] = std::stoi(dash == std::string::npos ? m_port : m_port.substr(dash + 1));
    }
    // An address has a '.' or ':'; a group's name has neither.
    if (!m_remote.empty()) body[m_remote.find_first_of(".:") == std::string::npos ? "remote_group" : "remote_cidr"] = m_remote;
    return body;
}

void SecurityGroupCommands::call(std::string method, std::string target, View view, nlohmann::json body,
                                 std::string done) {
    m_inv.set_call(std::move(method), std::move(target), view, std::move(body), m_name, std::move(done));
}

std::string render_security_group_view(View view, const nlohmann::json& answer) {
    switch (view) {
    case View::SecurityGroupTable: {
        Table table({"NAME", "RULES", "VMS", "DESCRIPTION"});
        for (const auto& group : items(answer))
            table.add_row({field_text(group, "name"), std::to_string(items(group, "rules").size()),
                           joined(group.contains("vms") ? group["vms"] : nlohmann::json()),
                           field_text(group, "description")});
        return table.render();
    }
    case View::SecurityGroup: {
        std::string out = render_fields(
            {{"name", field_text(answer, "name")},
             {"description", field_text(answer, "description")},
             {"vms", joined(answer.is_object() && answer.contains("vms") ? answer["vms"] : nlohmann::json())}});
        Table table({"#", "RULE"});
        for (const auto& rule : items(answer, "rules"))
            table.add_row({field_text(rule, "index"), field_text(rule, "summary")});
        if (items(answer, "rules").empty()) return out + "rules: none (a NIC carrying only this group lets nothing in)\n";
        return out + table.render();
    }
    case View::Trace:
        return field_text(answer, "explanation") + "\n";
    default: return {};
    }
}

}  // namespace corral::cli
