// trace(): a TraceQuery turned into the first packet of a connection and walked through the inet
// table as installed. The bridge table's anti-spoofing is not walked: trace answers for senders
// that use their own addresses (a spoofed packet is dropped before any group is consulted).

#include <sys/socket.h>

#include <fmt/format.h>

#include "net/firewall/evaluate.h"
#include "net/firewall/firewall.h"
#include "net/firewall/live_ruleset.h"

namespace corral::net::firewall {
namespace {

// One side of the question: a port (its network's bridge, its addresses), the gateway of a
// network (the host itself), or an address outside every managed network.
struct Endpoint {
    const Port* port = nullptr;
    const Network* network = nullptr;
    bool host = false;
    std::vector<Cidr> addresses;
};

Result<Endpoint> resolve(const Model& model, const std::string& text, const char* field) {
    Endpoint endpoint;
    for (const Port& port : model.ports) {
        if (port.tap != text) continue;
        endpoint.port = &port;
        for (const Network& network : model.networks)
            if (network.name == port.network) endpoint.network = &network;
        for (const std::string& address : port.addresses)
            if (auto cidr = parse_cidr(address)) endpoint.addresses.push_back(*cidr);
        if (endpoint.addresses.empty())
            return fail(ErrorKind::Invalid, fmt::format("{}: port {} has no known address to trace from", field, text));
        return endpoint;
    }
    auto address = parse_cidr(text);
    if (!address || !address->is_host())
        return fail(ErrorKind::Invalid, fmt::format("{}: '{}' is neither a port (tap) nor an address", field, text));
    endpoint.addresses.push_back(*address);
    for (const Port& port : model.ports)
        for (const std::string& own : port.addresses)
            if (parse_cidr(own) == address) return resolve(model, port.tap, field);
    for (const Network& network : model.networks)
        if (parse_cidr(network.gateway4) == address) {
            endpoint.network = &network;
            endpoint.host = true;
        }
    return endpoint;
}

// The address of `endpoint` in `family`, preferring the one given.
std::optional<Cidr> address_in(const Endpoint& endpoint, int family) {
    for (const Cidr& address : endpoint.addresses)
        if (address.family == family) return address;
    return std::nullopt;
}

}  // namespace

Result<TraceVerdict> trace(const Model& model, const TraceQuery& query) {
    LiveTable table = TRY_CONTEXT(read_live_table("inet", k_inet_table), "trace");
    return trace_in(table, model, query);
}

Result<TraceVerdict> trace_in(const LiveTable& table, const Model& model, const TraceQuery& query) {
    Endpoint from = TRY(resolve(model, query.from, "from"));
    Endpoint to = TRY(resolve(model, query.to, "to"));
    if (!from.port && !to.port)
        return fail(ErrorKind::Invalid, "trace: from or to must be a port of a managed network");
    if (query.protocol == Protocol::Any)
        return fail(ErrorKind::Invalid, "protocol: trace needs tcp, udp or icmp (a packet has one)");
    bool ported = query.protocol == Protocol::Tcp || query.protocol == Protocol::Udp;
    if (ported && (query.port < 1 || query.port > 65535))
        return fail(ErrorKind::Invalid, fmt::format("port: {} is out of range 1-65535", query.port));

    // Family: the literal address's, else IPv4 when both sides have one.
    int family = AF_INET;
    if (!address_in(from, AF_INET) || !address_in(to, AF_INET)) family = AF_INET6;
    auto saddr = address_in(from, family);
    auto daddr = address_in(to, family);
    if (!saddr || !daddr) return fail(ErrorKind::Invalid, "trace: from and to have no address family in common");

    Packet packet;
    packet.saddr = *saddr;
    packet.daddr = *daddr;
    packet.dport = query.port;
    switch (query.protocol) {
    case Protocol::Tcp: packet.l4proto = "tcp"; break;
    case Protocol::Udp: packet.l4proto = "udp"; break;
    case Protocol::Icmp:
    case Protocol::Any:  // refused above
        packet.l4proto = family == AF_INET ? "icmp" : "ipv6-icmp"; break;
    }
    // Bridged and routed traffic both reach the inet hooks with the bridge as the interface
    // (br_netfilter gives the bridge, not the tap); an outside interface is the uplink or "".
    auto interface_of = [](const Endpoint& endpoint, const Endpoint& other) -> std::string {
        if (endpoint.network && (endpoint.port || endpoint.host)) return endpoint.network->bridge;
        return other.network ? other.network->uplink : "";
    };
    std::string chain = "forward";
    if (to.host) {
        chain = "input";
        packet.iifname = interface_of(from, to);
    } else if (from.host) {
        chain = "output";
        packet.oifname = interface_of(to, from);
    } else {
        packet.iifname = interface_of(from, to);
        packet.oifname = interface_of(to, from);
    }

    if (!table.chains.contains(chain)) return fail(ErrorKind::Failed, "trace: the installed table has no " + chain + " chain");
    Decision decision = TRY(evaluate(table, chain, packet));
    TraceVerdict verdict;
    verdict.allowed = decision.accepted;
    verdict.rule = decision.rule;
    verdict.chain = decision.chain;
    verdict.path = decision.path;
    return verdict;
}

}  // namespace corral::net::firewall
