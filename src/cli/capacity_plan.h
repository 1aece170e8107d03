#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

/// `corral capacity plan`: its options made into POST /host/capacity/plan's body, and the
/// answer shown as a table (docs/cli.md).
namespace corral::cli {

/// The body from `--shape` (NcpuS/SIZE: "2cpu/4G"; empty: the daemon's default) and each
/// `--what-if` ("add N" for N VMs of the shape, "add NxMcpu/SIZE", "remove VM"); an error
/// quotes the value and says what is allowed.
Result<nlohmann::json> capacity_plan_body(const std::string& shape, const std::vector<std::string>& what_ifs);

/// The plan for people: a row per resource, the answer's sentence, the what-ifs, the VMs and the
/// notes.
std::string render_capacity_plan(const nlohmann::json& plan);

}  // namespace corral::cli
