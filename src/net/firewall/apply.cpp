// apply() and remove_all(): the model loaded into the kernel as one nft transaction.

#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "net/firewall/firewall.h"
#include "net/firewall/nft.h"
#include "net/firewall/render_parts.h"

namespace corral::net::firewall {
namespace {

Result<void> load(const std::string& script, const char* what) {
    NftRun run = TRY(run_nft({"-f", "-"}, script));
    if (run.exit_code != 0) {
        std::string message = run.err.empty() ? run.out : run.err;
        while (!message.empty() && message.back() == '\n') message.pop_back();
        // nft -f is one transaction: on any error nothing of the script was committed.
        return fail(ErrorKind::Failed, fmt::format("{}: nft refused the ruleset (the previous rules stay): {}",
                                                   what, message));
    }
    return {};
}

}  // namespace

// Bridged traffic between two VMs reaches the inet table's hooks only through br_netfilter, and
// only for bridges whose own nf_call_iptables flag is on (or with the host-wide sysctl, which we
// leave alone). A bridge that does not exist yet is the network service's to create with it.
// Only corrald's own bridges (nat, isolated): a host bridge (bridged, vlan) carries the host's
// other traffic too, which the flag would put in front of every iptables/nft forward chain.
Result<void> enable_bridge_netfilter(const Model& model) {
    for (const Network& network : model.networks) {
        if (network.kind != "nat" && network.kind != "isolated") continue;
        for (const char* flag : {"nf_call_iptables", "nf_call_ip6tables"}) {
            std::filesystem::path path = std::filesystem::path("/sys/class/net") / network.bridge / "bridge" / flag;
            if (!std::filesystem::exists(path)) continue;
            std::ofstream file(path);
            if (!(file << "1" << std::flush))
                return fail(ErrorKind::System, fmt::format("networks {}: cannot turn on {} of bridge {} ({})",
                                                           network.name, flag, network.bridge, path.string()));
        }
    }
    return {};
}

Result<void> apply(const Model& model) {
    TRY_VOID(validate(model));
    TRY_VOID(enable_bridge_netfilter(model));
    return load(render(model), "applying the firewall");
}

Result<void> remove_all() { return load(render_reset(), "removing the firewall"); }

}  // namespace corral::net::firewall
