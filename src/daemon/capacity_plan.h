#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "daemon/host_capacity.h"

/// The capacity planner (docs/api.md "Capacity plan"): how many more VMs of a shape this host
/// takes, which resource runs out first and, at the growth the history shows, when. It plans from
/// what the VMs measurably use (the 95th percentile of each series), not from their configured
/// sizes, and holds the answer to the overcommit policy too, since a start past the policy is
/// refused whatever the VMs use. A pure function of recorded histories, so that its answers can
/// be checked against hand-computed ones.
namespace corral::daemon {

/// One resource's use over time: parallel arrays, as the metrics history serves them. A
/// missing value (the VM was not running) is nullopt and does not count.
struct UsageSeries {
    std::vector<double> time;                ///< Unix seconds
    std::vector<std::optional<double>> cpus;  ///< CPUs busy (1.0 = one CPU all the time)
    std::vector<std::optional<double>> memory_mib;
};

/// A VM of the plan: what it holds by the policy's reckoning, and what it used.
struct PlanVm {
    std::string name;
    Allocation allocation;  ///< its vCPUs and memory (with a memory cap's overhead)
    bool holds = false;     ///< it runs (holds its allocation now)
    UsageSeries usage;
};

/// A VM size: whole vCPUs and MiB.
struct PlanShape {
    int64_t vcpus = 1;
    int64_t memory_mib = 1024;
};

/// A change to plan for: `count` more VMs of `shape`, or the VM `remove` gone.
struct WhatIf {
    unsigned count = 0;
    PlanShape shape;
    std::string remove;  ///< a VM's name; empty for an addition
};

struct PlanInput {
    CapacityPolicy policy;
    HostSize host;
    UsageSeries host_usage;  ///< the whole host's use, VMs and all
    std::vector<PlanVm> vms;
    PlanShape shape;  ///< the size of the VMs to fit
    std::vector<WhatIf> what_ifs;
};

/// The 95th percentile (nearest rank) of the present values; nullopt when there are none.
std::optional<double> percentile95(const std::vector<std::optional<double>>& values);
/// The least-squares slope of the present values against time, per day; nullopt with fewer
/// than two points or no time between them.
std::optional<double> growth_per_day(const std::vector<double>& time, const std::vector<std::optional<double>>& values);

/// The plan, as POST /host/capacity/plan answers it; NotFound naming the VM when a what-if
/// removes one the host does not have.
Result<nlohmann::json> plan_capacity(const PlanInput& input);

}  // namespace corral::daemon
