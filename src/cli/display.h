#pragma once

#include "cli/commands.h"
#include "cli/endpoint.h"

namespace corral::cli {

/// `corral vm screenshot VM FILE`: GET /vms/{name}/screenshot into FILE (written under a hidden
/// temporary name and renamed, so a failure leaves no partial file; an existing FILE is kept
/// unless --force). Returns the exit code.
int run_screenshot(const Endpoint& endpoint, const Invocation& invocation);

/// `corral vm vnc VM`: listens on a loopback TCP port and relays each viewer that connects through
/// its own WebSocket to corrald (/vms/{name}/vnc), until Ctrl-C. Returns the exit code (only on
/// errors before listening; Ctrl-C ends the process).
int run_vnc(const Endpoint& endpoint, const Invocation& invocation);

}  // namespace corral::cli
