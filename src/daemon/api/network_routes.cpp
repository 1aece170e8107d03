#include <fmt/format.h>

#include "daemon/api/api_context.h"
#include "daemon/http/request_body.h"
#include "daemon/network/network_spec.h"
#include "net/ipv4.h"
#include "net/ipv6.h"

namespace corral::daemon {

using inventory::NetworkRecord;

namespace {

ApiResult<NetworkService*> service(ApiContext& context) {
    if (!context.networks) return api_fail(503, "managed networks are not available in this corrald");
    return context.networks;
}

nlohmann::json optional_text(const std::string& text) {
    return text.empty() ? nlohmann::json() : nlohmann::json(text);
}

nlohmann::json network_json(const NetworkRecord& network, ApiContext& context) {
    nlohmann::json reservations = nlohmann::json::array();
    for (const auto& reservation : network.reservations)
        reservations.push_back({{"mac", reservation.mac},
                                {"ipv4", reservation.ipv4},
                                {"hostname", optional_text(reservation.hostname)}});
    auto users = context.inventory.vms_using_network(network.name);
    const auto subnet6 = net::parse_ipv6_subnet(network.subnet6);
    nlohmann::json out = {
        {"name", network.name},
        {"kind", network.kind},
        {"bridge", network.bridge},
        {"parent", optional_text(network.parent)},
        {"vlan_id", network.vlan_id ? nlohmann::json(network.vlan_id) : nlohmann::json()},
        {"subnet4", optional_text(network.subnet4)},
        {"gateway4", optional_text(network.gateway4)},
        {"dhcp_start", optional_text(network.dhcp_start)},
        {"dhcp_end", optional_text(network.dhcp_end)},
        {"subnet6", optional_text(network.subnet6)},
        // Always the subnet's ::1: guests learn it from router advertisements.
        {"gateway6", subnet6 ? nlohmann::json(net::format_ipv6(subnet6->gateway())) : nlohmann::json()},
        {"mtu", network.mtu},
        {"dns_forwarders", network.dns_forwarders},
        {"reservations", reservations},
        {"vms", users ? *users : std::vector<std::string>{}},
        {"created_at", network.created_at}};
    if (context.networks) out["status"] = context.networks->status(network);
    return out;
}

/// Over TCP a network may only name host interfaces the administrator allowed (--allow-bridge),
/// as a VM's bridge NIC may.
ApiResult<void> check_host_interfaces(const HttpRequest& request, const NetworkRecord& network, ApiContext& context) {
    std::vector<inventory::NicRef> named;
    if (network.kind == "bridged") named.push_back({network.bridge, "", "", "", "", {}});
    if (network.kind == "vlan") named.push_back({network.parent, "", "", "", "", {}});
    auto checked = context.host_access.check_nics(request.origin, named);
    if (!checked) {
        ApiError error = checked.error();
        error.field = network.kind == "vlan" ? "parent" : "bridge";
        return std::unexpected(error);
    }
    return {};
}

/// The subnets the host uses (check_network skips the network's own bridge).
std::vector<net::HostSubnet> host_subnets() {
    return net::host_ipv4_subnets();
}

ApiResult<HttpResponse> create_network(const HttpRequest& request, ApiContext& context) {
    auto* networks = TRY(service(context));
    auto body = TRY(RequestBody::parse(request.body));
    const bool subnet_given = body.has("subnet4");
    NetworkRecord network = TRY(read_network_body(body, nullptr));
    TRY_VOID(body.finish());
    auto others = TRY(api(context.inventory.list_networks()));
    if (!subnet_given && (network.kind == "nat" || network.kind == "isolated")) {
        // No subnet asked for: the first free /24, as for the default network.
        std::vector<net::Ipv4Subnet> taken;
        for (const auto& used : host_subnets()) taken.push_back(used.subnet);
        for (const auto& other : others)
            if (auto subnet = net::parse_ipv4_subnet(other.subnet4)) taken.push_back(*subnet);
        auto free = pick_free_subnet(taken);
        if (!free) return api_fail(400, "no free /24 in 10.0.100.0 - 10.0.254.0: give subnet4", "subnet4");
        network.subnet4 = free->to_string();
        // The addresses from the picked subnet, as read_network_body derives them.
        const uint32_t hosts = free->last_host() - free->first_host() + 1;
        if (network.gateway4.empty()) network.gateway4 = net::format_ipv4(free->first_host());
        if (network.dhcp_start.empty()) network.dhcp_start = net::format_ipv4(free->first_host() + hosts / 2);
        if (network.dhcp_end.empty()) network.dhcp_end = net::format_ipv4(free->last_host());
    }
    TRY_VOID(check_network(network, others, host_subnets()));
    TRY_VOID(check_host_interfaces(request, network, context));
    auto created = TRY(api(networks->create(network), "name"));
    context.events.publish({{"kind", "network.created"}, {"target", created.name}});
    auto response = json_response(201, network_json(created, context));
    response.headers.emplace_back("Location", fmt::format("/api/v1/networks/{}", created.name));
    return response;
}

ApiResult<HttpResponse> edit_network(const HttpRequest& request, const std::string& name, ApiContext& context) {
    auto* networks = TRY(service(context));
    const NetworkRecord existing = TRY(api(context.inventory.get_network(name), "name"));
    auto body = TRY(RequestBody::parse(request.body));
    NetworkRecord changed = TRY(read_network_body(body, &existing));
    TRY_VOID(body.finish());
    auto others = TRY(api(context.inventory.list_networks()));
    TRY_VOID(check_network(changed, others, host_subnets()));
    TRY_VOID(check_host_interfaces(request, changed, context));
    auto stored = TRY(api(networks->edit(changed), "subnet4"));
    context.events.publish({{"kind", "network.changed"}, {"target", name}});
    return json_response(200, network_json(stored, context));
}

/// GET /networks/{name}/trace?from=VM|IP&to=VM|IP&protocol=tcp&port=22: the verdict of the
/// installed ruleset for a new connection, and the rule that decides, in words.
ApiResult<HttpResponse> trace_network(const HttpRequest& request, const std::string& name, ApiContext& context) {
    auto* networks = TRY(service(context));
    for (const auto& [key, value] : request.query)
        if (key != "from" && key != "to" && key != "protocol" && key != "port")
            return api_fail(400, fmt::format("unknown query parameter '{}': trace takes from, to, protocol, port",
                                             key.substr(0, 40)),
                            key.substr(0, 40));
    const std::string from = request.query_or("from");
    const std::string to = request.query_or("to");
    if (from.empty()) return api_fail(400, "from is required: a VM on the network or an address", "from");
    if (to.empty()) return api_fail(400, "to is required: a VM on the network or an address", "to");
    const std::string word = request.query_or("protocol", "tcp");
    net::firewall::Protocol protocol;
    if (word == "tcp") protocol = net::firewall::Protocol::Tcp;
    else if (word == "udp") protocol = net::firewall::Protocol::Udp;
    else if (word == "icmp") protocol = net::firewall::Protocol::Icmp;
    else return api_fail(400, fmt::format("protocol '{}' is not one of tcp, udp, icmp", word.substr(0, 40)), "protocol");
    auto port = TRY(query_uint(request, "port", 1, 65535));
    if (protocol != net::firewall::Protocol::Icmp && !port)
        return api_fail(400, fmt::format("port is required for {} (1-65535)", word), "port");
    if (protocol == net::firewall::Protocol::Icmp && port)
        return api_fail(400, "port: icmp has no ports", "port");
    auto traced = networks->trace(name, from, to, protocol, static_cast<int>(port.value_or(0)));
    if (!traced) {
        // The error names its field first ("from: VM web1 has no NIC on network default").
        const std::string& message = traced.error().message();
        std::string field = "name";
        for (const char* known : {"from", "to", "protocol", "port"})
            if (message.rfind(std::string(known) + ":", 0) == 0) field = known;
        ApiError error = api_error_from(traced.error(), field);
        if (field != "name" && error.status == 500) error.status = 400;
        return std::unexpected(error);
    }
    const auto& answer = *traced;
    const std::string what = protocol == net::firewall::Protocol::Icmp ? "icmp echo" : fmt::format("{} {}", word, *port);
    const std::string explanation =
        fmt::format("{} from {} to {} is {} by {}", what, answer.from, answer.to,
                    answer.verdict.allowed ? "allowed" : "dropped", answer.verdict.rule);
    return json_response(200, {{"allowed", answer.verdict.allowed},
                               {"verdict", answer.verdict.allowed ? "allowed" : "dropped"},
                               {"rule", answer.verdict.rule},
                               {"chain", answer.verdict.chain},
                               {"path", answer.verdict.path},
                               {"explanation", explanation}});
}

}  // namespace

void add_network_routes(Router& router, ApiContext& context) {
    router.add("GET", "/api/v1/networks", [&context](const HttpRequest&, const PathParams&) -> ApiResult<HttpResponse> {
        nlohmann::json list = nlohmann::json::array();
        for (const auto& network : TRY(api(context.inventory.list_networks()))) list.push_back(network_json(network, context));
        return json_response(200, list);
    });
    router.add("POST", "/api/v1/networks", [&context](const HttpRequest& request, const PathParams&) {
        return create_network(request, context);
    });
    router.add("GET", "/api/v1/networks/{name}",
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto network = TRY(api(context.inventory.get_network(params.at("name")), "name"));
                   auto json = network_json(network, context);
                   if (context.networks) json["host_policy"] = context.networks->host_policy();
                   return json_response(200, json);
               });
    router.add("PATCH", "/api/v1/networks/{name}", [&context](const HttpRequest& request, const PathParams& params) {
        return edit_network(request, params.at("name"), context);
    });
    router.add("DELETE", "/api/v1/networks/{name}",
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto* networks = TRY(service(context));
                   const std::string& name = params.at("name");
                   TRY_VOID(api(networks->remove(name), "name"));
                   context.events.publish({{"kind", "network.deleted"}, {"target", name}});
                   return json_response(200, {{"deleted", name}});
               });
    router.add("GET", "/api/v1/networks/{name}/trace",
               [&context](const HttpRequest& request, const PathParams& params) {
                   return trace_network(request, params.at("name"), context);
               });
    router.add("GET", "/api/v1/networks/{name}/leases",
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto* networks = TRY(service(context));
                   nlohmann::json list = nlohmann::json::array();
                   for (const auto& lease : TRY(api(networks->leases(params.at("name")), "name")))
                       list.push_back({{"mac", lease.mac},
                                       {"ipv4", lease.ipv4},
                                       {"hostname", optional_text(lease.hostname)},
                                       {"expires", lease.expires}});
                   return json_response(200, list);
               });
}

}  // namespace corral::daemon
