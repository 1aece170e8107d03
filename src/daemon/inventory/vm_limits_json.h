#pragma once

#include <nlohmann/json.hpp>

#include "daemon/inventory/inventory.h"

namespace corral::inventory {

/// A VM's limits as one JSON object with every field (0 or "" where not set): how they are
/// stored in the inventory, kept in a backup's configuration and sent to a migration's
/// destination (whose create request reads them as a user's would be).
nlohmann::json vm_limits_json(const VmLimits& limits);

/// The reverse; a missing field is not set. Throws nlohmann::json::exception for a field of the
/// wrong type (the callers say whose limits those were).
VmLimits vm_limits_from_json(const nlohmann::json& object);

}  // namespace corral::inventory
