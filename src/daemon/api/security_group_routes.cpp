// /api/v1/security-groups and PUT /api/v1/vms/{name}/nics/{index}/groups (docs/api.md
// "Security groups"): named rule sets attached to NICs on managed networks, applied live.

#include <fmt/format.h>

#include <charconv>

#include "daemon/api/api_context.h"
#include "daemon/http/request_body.h"
#include "daemon/names.h"
#include "daemon/network/nic_ipv6.h"
#include "daemon/vm_json.h"
#include "net/firewall/address.h"

namespace corral::daemon {

using inventory::SecurityGroupRecord;
using inventory::SecurityRuleRecord;

namespace {

constexpr size_t k_max_rules = 200;
constexpr size_t k_max_description = 200;
constexpr size_t k_max_groups_per_nic = 16;

ApiResult<NetworkService*> service(ApiContext& context) {
    if (!context.networks) return api_fail(503, "security groups need managed networks, which this corrald lacks");
    return context.networks;
}

/// A group's name follows the rule of every name corrald hands out (it is a path parameter
/// too), and the firewall's: at most 40 characters (they go into nft chain names and comments).
ApiResult<void> check_group_name(const std::string& name, const std::string& field) {
    TRY_VOID(validate_name(name, "security group name", field));
    if (name.size() > 40)
        return api_fail(400, fmt::format("{} is {} characters; a security group name has at most 40", field, name.size()),
                        field);
    return {};
}

/// A rule in words: "in tcp 22 from 10.0.0.0/8", "out any to group web".
std::string rule_words(const SecurityRuleRecord& rule) {
    std::string ports;
    if (rule.port_from != 0)
        ports = rule.port_from == rule.port_to ? fmt::format(" {}", rule.port_from)
                                               : fmt::format(" {}-{}", rule.port_from, rule.port_to);
    else if (rule.protocol == "tcp" || rule.protocol == "udp")
        ports = " (every port)";
    const std::string remote = !rule.remote_group.empty() ? "group " + rule.remote_group
                               : !rule.remote_cidr.empty() ? rule.remote_cidr
                                                           : "anywhere";
    return fmt::format("{} {}{} {} {}", rule.direction, rule.protocol, ports, rule.direction == "in" ? "from" : "to",
                       remote);
}

nlohmann::json group_json(const SecurityGroupRecord& group, ApiContext& context) {
    nlohmann::json rules = nlohmann::json::array();
    for (size_t i = 0; i < group.rules.size(); ++i) {
        const auto& rule = group.rules[i];
        rules.push_back({{"index", i},
                         {"direction", rule.direction},
                         {"protocol", rule.protocol},
                         {"port_from", rule.port_from ? nlohmann::json(rule.port_from) : nlohmann::json()},
                         {"port_to", rule.port_to ? nlohmann::json(rule.port_to) : nlohmann::json()},
                         {"remote_cidr", rule.remote_cidr.empty() ? nlohmann::json() : nlohmann::json(rule.remote_cidr)},
                         {"remote_group", rule.remote_group.empty() ? nlohmann::json() : nlohmann::json(rule.remote_group)},
                         {"summary", rule_words(rule)}});
    }
    auto users = context.inventory.vms_using_security_group(group.name);
    return {{"name", group.name},
            {"description", group.description},
            {"rules", rules},
            {"vms", users ? *users : std::vector<std::string>{}},
            {"created_at", group.created_at}};
}

/// One rule of a request, every field checked on its own; `self` is the group being defined
/// (a rule may name its own group: "members reach each other").
ApiResult<SecurityRuleRecord> read_rule(JsonReader& item, const std::string& self, ApiContext& context) {
    SecurityRuleRecord rule;
    rule.direction = TRY(item.optional_string("direction")).value_or("in");
    if (rule.direction != "in" && rule.direction != "out")
        return api_fail(400, fmt::format("{} '{}' is not one of in, out", item.path_of("direction"), rule.direction.substr(0, 40)),
                        item.path_of("direction"));
    rule.protocol = TRY(item.optional_string("protocol")).value_or("any");
    if (rule.protocol != "tcp" && rule.protocol != "udp" && rule.protocol != "icmp" && rule.protocol != "any")
        return api_fail(400,
                        fmt::format("{} '{}' is not one of tcp, udp, icmp, any", item.path_of("protocol"),
                                    rule.protocol.substr(0, 40)),
                        item.path_of("protocol"));
    auto from = TRY(item.optional_uint("port_from", 1, 65535));
    auto to = TRY(item.optional_uint("port_to", 1, 65535));
    if ((from || to) && rule.protocol != "tcp" && rule.protocol != "udp")
        return api_fail(400,
                        fmt::format("{}: ports apply only to tcp and udp rules (protocol is {})",
                                    item.path_of(from ? "port_from" : "port_to"), rule.protocol),
                        item.path_of(from ? "port_from" : "port_to"));
    if (to && !from)
        return api_fail(400, fmt::format("{} needs port_from", item.path_of("port_to")), item.path_of("port_from"));
    if (from) {
        rule.port_from = static_cast<int>(*from);
        rule.port_to = static_cast<int>(to.value_or(*from));
        if (rule.port_to < rule.port_from)
            return api_fail(400, fmt::format("{} {} is below port_from {}", item.path_of("port_to"), rule.port_to, rule.port_from),
                            item.path_of("port_to"));
    }
    rule.remote_cidr = TRY(item.optional_string("remote_cidr")).value_or("");
    rule.remote_group = TRY(item.optional_string("remote_group")).value_or("");
    if (!rule.remote_cidr.empty() && !rule.remote_group.empty())
        return api_fail(400, fmt::format("{}: give remote_cidr or remote_group, not both", item.path()),
                        item.path_of("remote_group"));
    if (!rule.remote_cidr.empty()) {
        auto cidr = net::firewall::parse_cidr(rule.remote_cidr);
        if (!cidr)
            return api_fail(400,
                            fmt::format("{} '{}' is not an IPv4 or IPv6 CIDR or address (10.0.0.0/8, fd00::/64, "
                                        "192.0.2.7)",
                                        item.path_of("remote_cidr"), rule.remote_cidr.substr(0, 60)),
                            item.path_of("remote_cidr"));
        rule.remote_cidr = cidr->network().to_string();  // canonical: "10.0.0.0/8", host bits cleared
    }
    if (!rule.remote_group.empty()) {
        TRY_VOID(check_group_name(rule.remote_group, item.path_of("remote_group")));
        if (rule.remote_group != self && !context.inventory.get_security_group(rule.remote_group))
            return api_fail(400,
                            fmt::format("{}: no security group named {} (list them with GET /api/v1/security-groups)",
                                        item.path_of("remote_group"), rule.remote_group),
                            item.path_of("remote_group"));
    }
    return rule;
}

ApiResult<std::string> read_description(JsonReader& body, const std::string& fallback) {
    auto description = TRY(body.optional_string("description")).value_or(fallback);
    if (description.size() > k_max_description)
        return api_fail(400, fmt::format("description is {} bytes; at most {}", description.size(), k_max_description),
                        "description");
    return description;
}

ApiResult<HttpResponse> create_group(const HttpRequest& request, ApiContext& context) {
    auto* networks = TRY(service(context));
    auto body = TRY(RequestBody::parse(request.body));
    SecurityGroupRecord group;
    group.name = TRY(body.required_string("name"));
    TRY_VOID(check_group_name(group.name, "name"));
    group.description = TRY(read_description(body, ""));
    if (auto rules = TRY(body.optional_objects("rules", k_max_rules)))
        for (auto& item : *rules) group.rules.push_back(TRY(read_rule(item, group.name, context)));
    TRY_VOID(body.finish());
    auto created = TRY(api(networks->create_group(group), "name"));
    context.events.publish({{"kind", "security_group.created"}, {"target", created.name}});
    auto response = json_response(201, group_json(created, context));
    response.headers.emplace_back("Location", api_path(fmt::format("/security-groups/{}", created.name)));
    return response;
}

ApiResult<HttpResponse> edit_group(const HttpRequest& request, const std::string& name, ApiContext& context) {
    auto* networks = TRY(service(context));
    auto group = TRY(api(context.inventory.get_security_group(name), "name"));
    auto body = TRY(RequestBody::parse(request.body));
    group.description = TRY(read_description(body, group.description));
    if (auto rules = TRY(body.optional_objects("rules", k_max_rules))) {
        group.rules.clear();
        for (auto& item : *rules) group.rules.push_back(TRY(read_rule(item, group.name, context)));
    }
    TRY_VOID(body.finish());
    auto stored = TRY(api(networks->update_group(group), "rules"));
    context.events.publish({{"kind", "security_group.changed"}, {"target", name}});
    return json_response(200, group_json(stored, context));
}

ApiResult<HttpResponse> add_rule(const HttpRequest& request, const std::string& name, ApiContext& context) {
    auto* networks = TRY(service(context));
    auto group = TRY(api(context.inventory.get_security_group(name), "name"));
    auto body = TRY(RequestBody::parse(request.body));
    auto rule = TRY(read_rule(body, group.name, context));
    TRY_VOID(body.finish());
    if (group.rules.size() >= k_max_rules)
        return api_fail(400, fmt::format("group {} has {} rules already; at most {}", name, group.rules.size(), k_max_rules));
    for (size_t i = 0; i < group.rules.size(); ++i)
        if (group.rules[i] == rule)
            return api_fail(409, fmt::format("group {} has this rule already (rule {}: {})", name, i, rule_words(rule)));
    group.rules.push_back(rule);
    auto stored = TRY(api(networks->update_group(group)));
    context.events.publish({{"kind", "security_group.changed"}, {"target", name}});
    return json_response(201, group_json(stored, context));
}

ApiResult<size_t> index_param(const std::string& text, const std::string& field) {
    size_t index = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), index);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty() || index > 1000)
        return api_fail(400, fmt::format("{} '{}' is not a number from 0", field, text.substr(0, 40)), field);
    return index;
}

ApiResult<HttpResponse> remove_rule(const std::string& name, const std::string& index_text, ApiContext& context) {
    auto* networks = TRY(service(context));
    auto group = TRY(api(context.inventory.get_security_group(name), "name"));
    const size_t index = TRY(index_param(index_text, "index"));
    if (index >= group.rules.size())
        return api_fail(404, fmt::format("group {} has no rule {} (it has {})", name, index, group.rules.size()), "index");
    group.rules.erase(group.rules.begin() + static_cast<std::ptrdiff_t>(index));
    auto stored = TRY(api(networks->update_group(group)));
    context.events.publish({{"kind", "security_group.changed"}, {"target", name}});
    return json_response(200, group_json(stored, context));
}

ApiResult<HttpResponse> set_nic_groups(const HttpRequest& request, const std::string& vm, const std::string& index_text,
                                       ApiContext& context) {
    auto* networks = TRY(service(context));
    TRY(api(context.inventory.get_vm(vm), "name"));
    const size_t index = TRY(index_param(index_text, "index"));
    auto body = TRY(RequestBody::parse(request.body));
    auto groups = TRY(body.optional_strings("groups", k_max_groups_per_nic));
    TRY_VOID(body.finish());
    if (!groups) return api_fail(400, "groups is required: an array of security group names ([] for none)", "groups");
    for (size_t i = 0; i < groups->size(); ++i) {
        const std::string field = fmt::format("groups[{}]", i);
        TRY_VOID(check_group_name((*groups)[i], field));
        if (!context.inventory.get_security_group((*groups)[i]))
            return api_fail(400, fmt::format("{}: no security group named {} (list them with GET /api/v1/security-groups)",
                                             field, (*groups)[i]),
                            field);
        for (size_t j = 0; j < i; ++j)
            if ((*groups)[j] == (*groups)[i])
                return api_fail(400, fmt::format("{}: group {} is given twice", field, (*groups)[i]), field);
    }
    auto stored = TRY(api(networks->set_nic_groups(vm, index, *groups), "groups"));
    context.events.publish({{"kind", "vm.updated"}, {"target", vm}});
    return json_response(200, vm_json(stored, subnet6_by_network(context.inventory)));
}

}  // namespace

void add_security_group_routes(Router& router, ApiContext& context) {
    router.add("GET", api_path("/security-groups"), [&context](const HttpRequest&, const PathParams&) -> ApiResult<HttpResponse> {
        nlohmann::json list = nlohmann::json::array();
        for (const auto& group : TRY(api(context.inventory.list_security_groups()))) list.push_back(group_json(group, context));
        return json_response(200, list);
    });
    router.add("POST", api_path("/security-groups"), [&context](const HttpRequest& request, const PathParams&) {
        return create_group(request, context);
    });
    router.add("GET", api_path("/security-groups/{name}"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto group = TRY(api(context.inventory.get_security_group(params.at("name")), "name"));
                   return json_response(200, group_json(group, context));
               });
    router.add("PATCH", api_path("/security-groups/{name}"), [&context](const HttpRequest& request, const PathParams& params) {
        return edit_group(request, params.at("name"), context);
    });
    router.add("DELETE", api_path("/security-groups/{name}"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto* networks = TRY(service(context));
                   const std::string& name = params.at("name");
                   TRY_VOID(api(networks->remove_group(name), "name"));
                   context.events.publish({{"kind", "security_group.deleted"}, {"target", name}});
                   return json_response(200, {{"deleted", name}});
               });
    router.add("POST", api_path("/security-groups/{name}/rules"),
               [&context](const HttpRequest& request, const PathParams& params) {
                   return add_rule(request, params.at("name"), context);
               });
    router.add("DELETE", api_path("/security-groups/{name}/rules/{index}"),
               [&context](const HttpRequest&, const PathParams& params) {
                   return remove_rule(params.at("name"), params.at("index"), context);
               });
    router.add("PUT", api_path("/vms/{name}/nics/{index}/groups"),
               [&context](const HttpRequest& request, const PathParams& params) {
                   return set_nic_groups(request, params.at("name"), params.at("index"), context);
               });
}

}  // namespace corral::daemon
