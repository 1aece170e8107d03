#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "daemon/inventory/inventory.h"

/// How much of the host VMs may take (docs/api.md "Capacity"): an overcommit policy per host,
/// what running VMs hold, and the check a start passes (admission), as vSphere's admission
/// control does. Numbers are whole vCPUs and MiB.
namespace corral::daemon {

/// The host's overcommit policy, kept in <state>/capacity.json (GET/PATCH /host/capacity).
struct CapacityPolicy {
    /// vCPUs that running VMs may hold per host CPU. 4 by default: CPU-bound guests slow down
    /// together rather than fail, and most guests idle most of the time.
    unsigned vcpus_per_cpu = 4;
    /// VM memory (guest RAM plus memory caps' overhead) running VMs may hold, in percent of the
    /// host's memory. 90 by default: without ballooning, guest memory is not given back, so no
    /// overcommit, and a tenth stays for the host and the monitors.
    unsigned memory_percent = 90;
    bool operator==(const CapacityPolicy&) const = default;

    static constexpr unsigned k_max_vcpus_per_cpu = 64;
    static constexpr unsigned k_min_memory_percent = 10;
    static constexpr unsigned k_max_memory_percent = 1000;
};

/// The policy in `file`; the defaults when there is none. An unreadable or invalid file is an
/// error naming it (corrald does not guess a policy).
Result<CapacityPolicy> load_capacity_policy(const std::filesystem::path& file);
/// Writes the policy atomically.
Result<void> save_capacity_policy(const std::filesystem::path& file, const CapacityPolicy& policy);

/// What VMs hold, in whole vCPUs and MiB.
struct Allocation {
    int64_t vcpus = 0;
    int64_t memory_mib = 0;
};
/// True for the states in which a VM holds its resources (starting, running, paused, stopping).
bool holds_resources(const std::string& state);
/// What `vm` holds while it runs: its vCPUs, its memory plus its memory cap's overhead.
Allocation allocation_of(const inventory::VmRecord& vm);
/// The sum over the VMs that hold resources, leaving out `except`.
Allocation allocated(const std::vector<inventory::VmRecord>& vms, const std::string& except = {});

/// The host facts the policy applies to.
struct HostSize {
    unsigned cpus = 1;
    uint64_t memory_mib = 0;
};
/// What the policy allows on `host`.
Allocation allowed(const CapacityPolicy& policy, const HostSize& host);

/// nullopt when starting `vm` keeps every resource within the policy; else the sentence that
/// refuses it, naming the resource and the numbers.
std::optional<std::string> admission_refusal(const CapacityPolicy& policy, const HostSize& host,
                                             const Allocation& others, const inventory::VmRecord& vm);

/// What the host uses now, VMs or not: busy CPUs over a short sample of /proc/stat, and memory
/// in use (MemTotal - MemAvailable).
struct HostUsage {
    double cpus_busy = 0;
    uint64_t memory_used_mib = 0;
};
HostUsage measure_host_usage();

/// GET /host/capacity's answer.
nlohmann::json capacity_json(const CapacityPolicy& policy, const HostSize& host,
                             const std::vector<inventory::VmRecord>& vms, const HostUsage& usage);

}  // namespace corral::daemon
