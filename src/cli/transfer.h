#pragma once

#include <iosfwd>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/runner.h"

namespace corral::cli {

/// Runs `volume import|export` against a remote corrald: streams the local file up
/// (PUT /volumes/{pool}/{name}/content) or the volume down into a new local file (GET ...),
/// with progress on `err`, and prints the result on `out`. A download is written under a
/// hidden temporary name and renamed at the end, so a failure leaves no partial file. Returns
/// the exit code.
int run_transfer(const Invocation& invocation, ApiClient& api, ProgressStyle style, std::ostream& out,
                 std::ostream& err);

}  // namespace corral::cli
