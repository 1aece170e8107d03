#pragma once

#include <nlohmann/json.hpp>

#include "daemon/inventory/inventory.h"
#include "daemon/vm_metrics.h"

namespace corral::daemon {

/// The API's JSON for a VM (docs/api.md "VMs").
nlohmann::json vm_json(const inventory::VmRecord& vm);
/// The API's JSON for a VM's live numbers (GET /vms/{name}/metrics).
nlohmann::json metrics_json(const VmMetrics& metrics);

}  // namespace corral::daemon
