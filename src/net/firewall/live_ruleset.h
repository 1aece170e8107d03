#pragma once

// The ruleset as the kernel has it now, read back with `nft -j list table`: what trace()
// evaluates, so its answers cannot drift from what render() meant to install.

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace corral::net::firewall {

/// One chain: its hook and policy when it is a base chain, and its rules in order (each the
/// JSON object nft prints: "expr", "comment", "handle").
struct LiveChain {
    std::string hook;    ///< empty for a regular chain
    std::string policy;  ///< "accept" or "drop" for a base chain
    std::vector<nlohmann::json> rules;
};

/// A table as installed: chains, and named sets/maps with their elements ("elem" as nft prints it).
struct LiveTable {
    std::map<std::string, LiveChain> chains;
    std::map<std::string, nlohmann::json> sets;
};

/// Parses `nft -j list table` output. Fails on JSON that is not nft's shape.
Result<LiveTable> parse_live_table(const std::string& json_text);

/// Runs `nft -j list table FAMILY NAME` and parses it. NotFound when the table is not installed.
Result<LiveTable> read_live_table(const std::string& family, const std::string& name);

}  // namespace corral::net::firewall
