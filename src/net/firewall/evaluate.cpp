#include "net/firewall/evaluate.h"

#include <sys/socket.h>

#include <fmt/format.h>

namespace corral::net::firewall {
namespace {

using json = nlohmann::json;

// A field's value for this packet; nullopt when the field does not exist for it (a tcp port of
// a udp packet, an IPv4 address of an IPv6 packet): nft's implicit dependency then fails the match.
struct Value {
    std::optional<std::string> text;
    std::optional<long> number;
    std::optional<Cidr> address;
};

// IANA protocol numbers of the names Packet::l4proto holds.
std::optional<long> protocol_number(const std::string& name) {
    if (name == "tcp") return 6;
    if (name == "udp") return 17;
    if (name == "icmp") return 1;
    if (name == "ipv6-icmp") return 58;
    return std::nullopt;
}

Result<std::optional<Value>> field(const json& left, const Packet& packet) {
    bool v4 = packet.saddr.family == AF_INET;
    if (auto meta = left.find("meta"); meta != left.end()) {
        std::string key = meta->value("key", "");
        if (key == "iifname") return Value{packet.iifname, {}, {}};
        if (key == "oifname") return Value{packet.oifname, {}, {}};
        // Both forms: nft prints the number instead of the name where /etc/protocols is missing.
        if (key == "l4proto") return Value{packet.l4proto, protocol_number(packet.l4proto), {}};
        if (key == "nfproto") return Value{std::string(v4 ? "ipv4" : "ipv6"), {}, {}};
        return fail(ErrorKind::Failed, "trace does not know meta " + key);
    }
    if (auto ct = left.find("ct"); ct != left.end()) {
        if (ct->value("key", "") == "state") return Value{packet.ct_state, {}, {}};
        return fail(ErrorKind::Failed, "trace does not know ct " + ct->value("key", ""));
    }
    if (auto payload = left.find("payload"); payload != left.end()) {
        std::string protocol = payload->value("protocol", "");
        std::string name = payload->value("field", "");
        if (protocol == "ip" || protocol == "ip6") {
            if (v4 != (protocol == "ip")) return std::optional<Value>{};
            if (name == "saddr") return Value{{}, {}, packet.saddr};
            if (name == "daddr") return Value{{}, {}, packet.daddr};
        } else if (protocol == "tcp" || protocol == "udp" || protocol == "th") {
            bool ported = packet.l4proto == "tcp" || packet.l4proto == "udp";
            if (!ported || (protocol != "th" && protocol != packet.l4proto)) return std::optional<Value>{};
            if (name == "sport") return Value{{}, packet.sport, {}};
            if (name == "dport") return Value{{}, packet.dport, {}};
        } else if (protocol == "icmp" || protocol == "icmpv6") {
            if (packet.l4proto != (protocol == "icmp" ? "icmp" : "ipv6-icmp")) return std::optional<Value>{};
            if (name == "type") return Value{packet.icmp_type, {}, {}};
        }
        return fail(ErrorKind::Failed, fmt::format("trace does not know payload {} {}", protocol, name));
    }
    return fail(ErrorKind::Failed, "trace does not know the expression " + left.dump());
}

// Does one element (a string, number, prefix, range or address) hold the value?
bool element_matches(const json& element, const Value& value) {
    if (element.is_object()) {
        if (auto prefix = element.find("prefix"); prefix != element.end() && value.address) {
            auto network = parse_cidr(prefix->value("addr", "") + "/" + std::to_string(prefix->value("len", 0)));
            return network && network->contains(*value.address);
        }
        if (auto range = element.find("range"); range != element.end() && range->is_array() && range->size() == 2) {
            if (value.number && (*range)[0].is_number())
                return *value.number >= (*range)[0].get<long>() && *value.number <= (*range)[1].get<long>();
            return false;
        }
        if (auto elem = element.find("elem"); elem != element.end()) return element_matches(elem->value("val", json()), value);
        return false;
    }
    if (element.is_number()) return value.number && *value.number == element.get<long>();
    if (element.is_string()) {
        std::string text = element.get<std::string>();
        if (value.address) {
            auto address = parse_cidr(text);
            return address && address->contains(*value.address);
        }
        if (value.text) return *value.text == text;
        if (value.number) return text == std::to_string(*value.number);
    }
    return false;
}

// The elements a match's right side stands for: a named set, an anonymous set, a list, or one value.
std::vector<json> elements_of(const json& right, const LiveTable& table) {
    if (right.is_string() && right.get<std::string>().starts_with("@")) {
        auto it = table.sets.find(right.get<std::string>().substr(1));
        return it == table.sets.end() ? std::vector<json>{} : std::vector<json>(it->second.begin(), it->second.end());
    }
    if (right.is_object() && right.contains("set")) return right["set"].get<std::vector<json>>();
    if (right.is_array()) return right.get<std::vector<json>>();
    return {right};
}

// What a walk collected: the chains entered, and the last rule that let the packet go on
// (a group rule's `return`), which is what decided when a base chain's policy accepts it.
struct Walk {
    std::vector<std::string> path;
    std::string allowed_by;
    std::string allowed_in;
};

struct Outcome {
    enum class Kind { Continue, Accept, Drop, Return } kind = Kind::Continue;
    std::string rule;
    std::string chain;
};

Result<Outcome> run_chain(const LiveTable& table, const std::string& name, const Packet& packet,
                          Walk& walk, int depth);

// A verdict object ({"accept": null}, {"jump": {"target": X}}, ...) applied in `chain`.
Result<std::optional<Outcome>> verdict(const json& expr, const LiveTable& table, const Packet& packet,
                                       const std::string& chain, const std::string& comment,
                                       Walk& walk, int depth) {
    if (expr.contains("accept")) return Outcome{Outcome::Kind::Accept, comment, chain};
    if (expr.contains("drop")) return Outcome{Outcome::Kind::Drop, comment, chain};
    if (expr.contains("return")) return Outcome{Outcome::Kind::Return, comment, chain};
    for (const char* kind : {"jump", "goto"}) {
        if (auto it = expr.find(kind); it != expr.end()) {
            Outcome inner = TRY(run_chain(table, it->value("target", ""), packet, walk, depth + 1));
            if (inner.kind == Outcome::Kind::Accept || inner.kind == Outcome::Kind::Drop) return inner;
            // goto does not come back: the calling chain ends there too (its caller continues).
            if (std::string(kind) == "goto") return Outcome{Outcome::Kind::Return, comment, chain};
            return std::optional<Outcome>{};
        }
    }
    return fail(ErrorKind::Failed, "trace does not know the verdict " + expr.dump());
}

Result<Outcome> run_chain(const LiveTable& table, const std::string& name, const Packet& packet,
                          Walk& walk, int depth) {
    if (depth > 16) return fail(ErrorKind::Failed, "trace: chains nest deeper than 16 (a loop?)");
    auto chain = table.chains.find(name);
    if (chain == table.chains.end()) return fail(ErrorKind::Failed, "trace: the ruleset has no chain " + name);
    walk.path.push_back(name);
    for (const json& rule : chain->second.rules) {
        std::string comment = rule.value("comment", fmt::format("{} rule handle {}", name, rule.value("handle", 0)));
        bool matched = true;
        std::optional<Outcome> decided;
        for (const json& expr : rule.value("expr", json::array())) {
            if (auto match = expr.find("match"); match != expr.end()) {
                auto value = TRY(field((*match)["left"], packet));
                if (!value) { matched = false; break; }
                bool found = false;
                for (const json& element : elements_of((*match)["right"], table)) found |= element_matches(element, *value);
                std::string op = match->value("op", "==");
                if ((op == "!=") == found) { matched = false; break; }
            } else if (auto vmap = expr.find("vmap"); vmap != expr.end()) {
                auto value = TRY(field((*vmap)["key"], packet));
                if (!value) { matched = false; break; }
                std::optional<json> hit;  // a copy: elements_of() returns a temporary
                for (const json& element : elements_of((*vmap)["data"], table))
                    if (element.is_array() && element.size() == 2 && element_matches(element[0], *value)) hit = element[1];
                if (!hit) { matched = false; break; }
                decided = TRY(verdict(*hit, table, packet, name, comment, walk, depth));
                break;
            } else if (expr.contains("counter") || expr.contains("log")) {
                continue;
            } else {
                decided = TRY(verdict(expr, table, packet, name, comment, walk, depth));
                break;
            }
        }
        if (!matched) continue;
        if (decided) {
            if (decided->kind == Outcome::Kind::Return) {
                walk.allowed_by = decided->rule;
                walk.allowed_in = name;
                return Outcome{Outcome::Kind::Continue, {}, name};
            }
            return *decided;
        }
    }
    return Outcome{Outcome::Kind::Continue, {}, name};
}

}  // namespace

Result<Decision> evaluate(const LiveTable& table, const std::string& chain, const Packet& packet) {
    Decision decision;
    Walk walk;
    Outcome outcome = TRY(run_chain(table, chain, packet, walk, 0));
    decision.path = walk.path;
    if (outcome.kind == Outcome::Kind::Continue) {
        decision.accepted = table.chains.at(chain).policy != "drop";
        decision.rule = chain + " policy " + table.chains.at(chain).policy;
        decision.chain = chain;
        if (decision.accepted && !walk.allowed_by.empty()) {
            decision.rule = walk.allowed_by;
            decision.chain = walk.allowed_in;
        }
        return decision;
    }
    decision.accepted = outcome.kind == Outcome::Kind::Accept;
    decision.rule = outcome.rule;
    decision.chain = outcome.chain;
    return decision;
}

}  // namespace corral::net::firewall
