#pragma once

#include "daemon/api/api_context.h"

namespace corral::daemon {

/// A VM's graphical console (docs/api.md "Graphical console"): GET /vms/{name}/screenshot (a PNG)
/// and the WebSocket /vms/{name}/vnc (a relay of the VM's RFB stream, for noVNC or `corral vm vnc`).
void add_display_routes(Router& router, ApiContext& context);

}  // namespace corral::daemon
