// bench/firewall's helper: builds a model of N NICs with security groups, times apply() of
// corrald's layout (sets and verdict maps), and prints that layout or a chain-per-port layout of
// the same rules (libvirt nwfilter's shape: a rule per port in a list walked for each packet, each
// port's own chain), which exists only for this comparison.
// usage: firewall_bench apply N RUNS | firewall_bench script sets|chains N

#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "net/firewall/address.h"
#include "net/firewall/firewall.h"
#include "net/firewall/render_parts.h"

using namespace corral::net::firewall;

namespace {

// N ports "p0000".. in 10.80.1.2.. with three group mixes, plus the two ports iperf3 runs between:
// "pa" (client, 10.80.200.2, no group) and "zb" (server, 10.80.200.3, groups ssh + perf); "zb"
// sorts last, so in the chain-per-port layout its packets walk the whole list (the worst case).
Model bench_model(int count) {
    Model model;
    model.networks.push_back({"bench", "fwbr0", "nat", "10.80.0.0/16", "10.80.0.1", "", std::nullopt});
    model.groups = {{"ssh", {{Direction::In, Protocol::Tcp, 22, 22, ""}}},
                    {"web", {{Direction::In, Protocol::Tcp, 80, 443, "10.0.0.0/8"}, {Direction::In, Protocol::Icmp, 0, 0, "ssh"}}},
                    {"db",
                     {{Direction::In, Protocol::Tcp, 5432, 5432, "web"},
                      {Direction::Out, Protocol::Udp, 53, 53, "10.80.0.1"},
                      {Direction::Out, Protocol::Tcp, 0, 0, "10.0.0.0/8"}}},
                    {"perf", {{Direction::In, Protocol::Tcp, 5201, 5201, ""}, {Direction::In, Protocol::Udp, 5201, 5201, ""}}}};
    const std::vector<std::vector<std::string>> mixes = {{"ssh"}, {"ssh", "web"}, {"web", "db"}};
    for (int i = 0; i < count; ++i)
        model.ports.push_back({fmt::format("p{:04d}", i), "bench", fmt::format("52:54:00:01:{:02x}:{:02x}", i / 256, i % 256),
                               {fmt::format("10.80.{}.{}", i / 250 + 1, i % 250 + 2)}, mixes[static_cast<size_t>(i % 3)]});
    model.ports.push_back({"pa", "bench", "52:54:00:00:00:0a", {"10.80.200.2"}, {}});
    model.ports.push_back({"zb", "bench", "52:54:00:00:00:0b", {"10.80.200.3"}, {"perf", "ssh"}});
    return model;
}

std::string protocol_match(const Rule& rule) {
    std::string ports = rule.port_from == 0 ? "" : rule.port_from == rule.port_to ? std::to_string(rule.port_from)
                                                                                  : fmt::format("{}-{}", rule.port_from, rule.port_to);
    switch (rule.protocol) {
    case Protocol::Tcp: return ports.empty() ? "meta l4proto tcp" : "tcp dport " + ports;
    case Protocol::Udp: return ports.empty() ? "meta l4proto udp" : "udp dport " + ports;
    case Protocol::Icmp: return "meta l4proto icmp";
    case Protocol::Any: return "";
    }
    return "";
}

// The same policy as render(), one chain per port dispatched by a linear list.
std::string chain_per_port(const Model& unsorted) {
    Model model = sorted_model(unsorted);
    std::string out = render_reset();
    std::string dispatch, chains;
    for (const Port& port : model.ports) {
        dispatch += fmt::format("\t\tiifname \"{}\" jump spoof_{}\n", port.tap, port.tap);
        chains += fmt::format("\tchain spoof_{} {{\n\t\tether saddr != {} drop\n"
                              "\t\tether type arp arp saddr ether != {} drop\n"
                              "\t\tether type arp arp saddr ip != {{ 0.0.0.0, {} }} drop\n"
                              "\t\tudp sport 67 drop\n\t\tether type ip ip saddr != {} drop\n\t}}\n",
                              port.tap, port.mac, port.mac, port.addresses[0], port.addresses[0]);
    }
    out += fmt::format("table bridge corral {{\n\tchain prerouting {{\n\t\ttype filter hook prerouting priority filter; "
                       "policy accept;\n{}\t}}\n{}}}\n",
                       dispatch, chains);

    std::string sets;
    for (const SecurityGroup& group : model.groups) {
        std::vector<std::string> members;
        for (const Port& port : model.ports)
            if (std::find(port.groups.begin(), port.groups.end(), group.name) != port.groups.end())
                members.push_back(port.addresses[0]);
        sets += fmt::format("\tset grp4_{} {{\n\t\ttype ipv4_addr\n", group.name);
        if (!members.empty()) sets += fmt::format("\t\telements = {{ {} }}\n", fmt::join(members, ", "));
        sets += "\t}\n";
    }
    std::string egress, ingress;
    chains.clear();
    for (const Port& port : model.ports) {
        if (port.groups.empty()) continue;
        std::string in_rules, out_rules;
        for (const std::string& name : port.groups)
            for (const SecurityGroup& group : model.groups) {
                if (group.name != name) continue;
                for (const Rule& rule : group.rules) {
                    std::string remote;
                    const char* side = rule.direction == Direction::In ? "saddr" : "daddr";
                    if (!rule.remote.empty())
                        remote = parse_cidr(rule.remote) ? fmt::format("ip {} {} ", side, rule.remote)
                                                         : fmt::format("ip {} @grp4_{} ", side, rule.remote);
                    std::string line = fmt::format("\t\t{}{} {}\n", remote, protocol_match(rule),
                                                   rule.direction == Direction::In ? "accept" : "return");
                    (rule.direction == Direction::In ? in_rules : out_rules) += line;
                }
            }
        const std::string& address = port.addresses[0];
        ingress += fmt::format("\t\tip daddr {} jump in_{}\n", address, port.tap);
        chains += fmt::format("\tchain in_{} {{\n\t\tct state established,related accept\n"
                              "\t\tudp sport 67 udp dport 68 accept\n{}\t\tdrop\n\t}}\n",
                              port.tap, in_rules);
        if (!out_rules.empty()) {
            egress += fmt::format("\t\tip saddr {} jump out_{}\n", address, port.tap);
            chains += fmt::format("\tchain out_{} {{\n\t\tct state established,related return\n"
                                  "\t\tudp sport 68 udp dport 67 return\n{}\t\tdrop\n\t}}\n",
                                  port.tap, out_rules);
        }
    }
    out += fmt::format("table inet corral {{\n{}{}\tchain forward {{\n\t\ttype filter hook forward priority filter; "
                       "policy accept;\n{}{}\t}}\n}}\n",
                       sets, chains, egress, ingress);
    out += fmt::format("table ip corral_nat {{\n\tchain postrouting {{\n\t\ttype nat hook postrouting priority srcnat; "
                       "policy accept;\n\t\tip saddr 10.80.0.0/16 ip daddr != 10.80.0.0/16 masquerade\n\t}}\n}}\n");
    return out;
}

int usage() {
    std::fprintf(stderr, "usage: firewall_bench apply N RUNS | firewall_bench script sets|chains N\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) return usage();
    std::string command = argv[1];
    if (command == "script") {
        Model model = bench_model(std::atoi(argv[3]));
        std::string layout = argv[2];
        if (layout != "sets" && layout != "chains") return usage();
        std::fputs((layout == "sets" ? render(model) : chain_per_port(model)).c_str(), stdout);
        return 0;
    }
    if (command != "apply") return usage();
    Model model = bench_model(std::atoi(argv[2]));
    int runs = std::max(1, std::atoi(argv[3]));
    std::vector<double> times;
    for (int i = 0; i < runs; ++i) {
        auto start = std::chrono::steady_clock::now();
        auto applied = apply(model);  // validate + render + one nft transaction
        auto end = std::chrono::steady_clock::now();
        if (!applied) {
            std::fprintf(stderr, "%s\n", applied.error().message().c_str());
            return 1;
        }
        times.push_back(std::chrono::duration<double, std::milli>(end - start).count());
    }
    std::sort(times.begin(), times.end());
    std::printf("%.1f\n", times[times.size() / 2]);  // median ms
    return 0;
}
