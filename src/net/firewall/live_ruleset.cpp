#include "net/firewall/live_ruleset.h"

#include <fmt/format.h>

#include "net/firewall/nft.h"

namespace corral::net::firewall {

Result<LiveTable> parse_live_table(const std::string& json_text) {
    auto document = nlohmann::json::parse(json_text, nullptr, false);
    if (document.is_discarded() || !document.is_object() || !document.contains("nftables") ||
        !document["nftables"].is_array())
        return fail(ErrorKind::Failed, "nft -j printed something that is not an nftables JSON document");
    LiveTable table;
    for (const auto& item : document["nftables"]) {
        if (!item.is_object()) continue;
        if (auto it = item.find("chain"); it != item.end()) {
            LiveChain& chain = table.chains[it->value("name", "")];
            chain.hook = it->value("hook", "");
            chain.policy = it->value("policy", "");
        } else if (auto rule = item.find("rule"); rule != item.end()) {
            table.chains[rule->value("chain", "")].rules.push_back(*rule);
        } else {
            for (const char* kind : {"set", "map"})
                if (auto set = item.find(kind); set != item.end())
                    table.sets[set->value("name", "")] = set->contains("elem") ? (*set)["elem"] : nlohmann::json::array();
        }
    }
    return table;
}

Result<LiveTable> read_live_table(const std::string& family, const std::string& name) {
    NftRun run = TRY(run_nft({"-j", "list", "table", family, name}));
    if (run.exit_code != 0)
        return fail(ErrorKind::NotFound, fmt::format("table {} {} is not installed (nft: {})", family, name,
                                                     run.err.substr(0, run.err.find('\n'))));
    return parse_live_table(run.out);
}

}  // namespace corral::net::firewall
