#pragma once

#include <cstdint>
#include <ctime>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "daemon/inventory/inventory.h"
#include "daemon/vm_metrics.h"

namespace corral::daemon {

/// Seconds from `started_at` (the inventory's "2026-11-26T23:00:00Z") to `now`, never negative;
/// nullopt for text that is not such a time.
std::optional<int64_t> uptime_seconds(const std::string& started_at, std::time_t now);
/// The VM's "limits" object (docs/api.md "Limits"): the stored fields and the memory cap.
nlohmann::json limits_json(const inventory::VmRecord& vm);
/// The API's JSON for a VM (docs/api.md "VMs"). `subnet6_by_network` (subnet6_by_network())
/// gives each NIC on a network with IPv6 its SLAAC address ("ipv6").
nlohmann::json vm_json(const inventory::VmRecord& vm,
                       const std::map<std::string, std::string>& subnet6_by_network = {});
/// The value, or JSON null.
inline nlohmann::json optional_json(const std::optional<uint64_t>& value) {
    return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}
/// The API's JSON for a VM's balloon (docs/api.md "Memory balloon"), in MiB (guest statistics
/// in bytes, as the metrics have them): the target kept with `vm` and, from `live` (nullopt when
/// the VM does not run), the balloon's size now and the guest's statistics.
nlohmann::json balloon_json(const inventory::VmRecord& vm, const std::optional<engine::BalloonInfo>& live);
/// The API's JSON for a VM's live numbers (GET /vms/{name}/metrics).
nlohmann::json metrics_json(const VmMetrics& metrics);

}  // namespace corral::daemon
