#include "net/tap_rate_limit.h"

#include <net/if.h>

#include <algorithm>

#include <fmt/format.h>

#include "net/firewall/nft.h"
#include "net/iproute2.h"

namespace corral::net {
namespace {

constexpr const char* k_table = "corral_rate";

Result<void> nft_script(const std::string& script) {
    auto ran = TRY(firewall::run_nft({"-f", "-"}, script));
    if (ran.exit_code != 0) {
        while (!ran.err.empty() && ran.err.back() == '\n')
            ran.err.pop_back();
        return fail(fmt::format("nft refused the rate limit: {}", ran.err));
    }
    return {};
}

}  // namespace

Result<void> set_tap_rate_limit(const std::string& tap, uint64_t bytes_per_second) {
    if (tap.empty() || tap.size() >= IFNAMSIZ || tap.front() == '-' ||
        tap.find_first_of(" \t\n\";{}\\/") != std::string::npos)
        return fail(fmt::format("'{}' is not a tap name", tap), EINVAL);
    const bool exists = ::if_nametoindex(tap.c_str()) != 0;
    if (bytes_per_second == 0) {
        // Our chain is the mark of our limit: without it the tap's qdisc is someone else's (a
        // user's own tap) and stays; a host that never limited a tap gets no table.
        auto listed = TRY(firewall::run_nft({"list", "chain", "netdev", k_table, tap}));
        if (listed.exit_code != 0)
            return {};
        if (exists)
            (void)run_iproute2("tc", {"qdisc", "del", "dev", tap, "root"});  // fails only if gone already
        return nft_script(fmt::format("delete chain netdev {} {}\n", k_table, tap));
    }
    if (!exists)
        return fail(fmt::format("there is no tap {}", tap), ENOENT);
    // tc's "bps" is bytes a second. The burst must hold a whole TSO/GSO frame (64 KiB) or
    // nothing that large would ever pass; an eighth of a second's worth above that.
    const uint64_t burst = std::max<uint64_t>(bytes_per_second / 8, 128 * 1024);
    TRY_VOID(run_iproute2(
        "tc", {"qdisc", "replace", "dev", tap, "root", "tbf", "rate", fmt::format("{}bps", bytes_per_second), "burst",
               std::to_string(burst), "latency", "100ms"}));
    // A chain left from an earlier tap of this name is made anew (its hook may be on a device
    // that is gone), in the same transaction.
    const bool had_chain = TRY(firewall::run_nft({"list", "chain", "netdev", k_table, tap})).exit_code == 0;
    return nft_script(
        fmt::format("add table netdev {0}\n{4}"
                    "add chain netdev {0} {1} {{ type filter hook ingress device \"{1}\" priority 0; }}\n"
                    "add rule netdev {0} {1} limit rate over {2} bytes/second burst {3} bytes drop\n",
                    k_table, tap, bytes_per_second, burst,
                    had_chain ? fmt::format("delete chain netdev {} {}\n", k_table, tap) : ""));
}

}  // namespace corral::net
