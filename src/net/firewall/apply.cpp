// apply() and remove_all(): the model loaded into the kernel as one nft transaction.

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

Result<void> apply(const Model& model) {
    TRY_VOID(validate(model));
    return load(render(model), "applying the firewall");
}

Result<void> remove_all() { return load(render_reset(), "removing the firewall"); }

}  // namespace corral::net::firewall
