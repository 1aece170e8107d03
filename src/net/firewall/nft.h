#pragma once

// Runs the nft binary: the one place the firewall starts a process.

#include <string>
#include <vector>

#include "base/result.h"

namespace corral::net::firewall {

/// What nft printed and how it ended.
struct NftRun {
    int exit_code = -1;
    std::string out;
    std::string err;
};

/// Runs `nft ARGS...` (nft found on PATH, or $CORRAL_NFT) with `input` on stdin, and waits.
/// Fails only when nft cannot be started; a non-zero exit is in NftRun.
Result<NftRun> run_nft(const std::vector<std::string>& args, const std::string& input = {});

}  // namespace corral::net::firewall
