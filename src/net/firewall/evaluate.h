#pragma once

// A packet walked through a LiveTable's chains the way the kernel would: the expressions render()
// writes (meta, payload, ct state, set and verdict map lookups, jump/goto/return/accept/drop).
// An expression it does not know is an error, never a guess.

#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "net/firewall/address.h"
#include "net/firewall/firewall.h"
#include "net/firewall/live_ruleset.h"

namespace corral::net::firewall {

/// The first packet of a connection, as the inet table's hooks see it.
struct Packet {
    std::string iifname;  ///< "" = an interface corrald does not manage
    std::string oifname;
    Cidr saddr;
    Cidr daddr;
    std::string l4proto;  ///< "tcp", "udp", "icmp", "ipv6-icmp"
    int sport = 40000;
    int dport = 0;
    std::string icmp_type = "echo-request";
    std::string ct_state = "new";
};

/// The decision and where it was made.
struct Decision {
    bool accepted = false;
    std::string rule;   ///< the deciding rule's comment, or "<chain> policy"
    std::string chain;
    std::vector<std::string> path;
};

/// Runs `packet` through base chain `chain` of `table`.
Result<Decision> evaluate(const LiveTable& table, const std::string& chain, const Packet& packet);

/// trace() against a table already read (trace() reads the installed one; tests pass a saved one).
Result<TraceVerdict> trace_in(const LiveTable& inet_table, const Model& model, const TraceQuery& query);

}  // namespace corral::net::firewall
