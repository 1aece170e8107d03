#pragma once

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/host_capacity.h"
#include "daemon/inventory/inventory.h"
#include "daemon/vm_cgroup.h"

/// `corral doctor` (GET /host/doctor): the misconfigurations that bite people running VMs, each
/// found from what the host and the inventory show, with the fix. Each check is a function of
/// plain inputs, so that a test can hand it a misconfigured one.
namespace corral::daemon {

enum class Severity { Info, Warning, Error };
const char* to_string(Severity severity);

struct Finding {
    std::string check;  ///< "kvm", "nested", "cgroups", "pool", "network", "orphan-tap", ...
    Severity severity = Severity::Warning;
    std::string problem;
    std::string fix;
};

/// The calibration's verdict (GET /host "calibration": kvm absent|emulated|hardware, reason).
std::vector<Finding> check_kvm(const nlohmann::json& calibration);
/// kvm_intel/kvm_amd's `nested` parameter under `sys_module` (/sys/module); nothing without KVM.
std::vector<Finding> check_nested(const std::filesystem::path& sys_module = "/sys/module");
std::vector<Finding> check_cgroups(const CgroupLayout& layout);

/// A pool and the bytes its file system has.
struct PoolSpace {
    std::string name;
    uint64_t capacity_bytes = 0;
    uint64_t available_bytes = 0;
};
/// Below 10% (or 1 GiB) free is a warning, below 2% (or 256 MiB) an error: qcow2 volumes and
/// linked clones grow as guests write, and a full file system pauses or kills their VMs.
std::vector<Finding> check_pools(const std::vector<PoolSpace>& pools);
/// The network policy problems (GET /host "network_policy": forwarding off, foreign firewall
/// chains that drop forwarded traffic), each with its fix.
std::vector<Finding> check_network(const nlohmann::json& network_policy);
/// Taps named like corrald's (NicPlumbing::tap_name_for, "crl...") that no running VM uses.
std::vector<Finding> check_orphan_taps(const std::vector<std::string>& host_taps, const std::set<std::string>& in_use);
/// Folders in the run root of VMs that are not defined, or that are down yet still hold a pid file.
std::vector<Finding> check_orphan_run_dirs(const std::filesystem::path& run_root,
                                           const std::vector<inventory::VmRecord>& vms);
/// Volumes no VM attaches, no image stands on and no linked clone needs.
struct VolumeUse {
    std::string pool, volume;
    bool used = false;  ///< attached, an image's root, or under linked clones
};
std::vector<Finding> check_orphan_volumes(const std::vector<VolumeUse>& volumes);
/// VMs that stay down after a crash or a host reboot (restart policy "no").
std::vector<Finding> check_restart_policies(const std::vector<inventory::VmRecord>& vms);
/// Running VMs that hold more than the overcommit policy allows (the policy was lowered).
std::vector<Finding> check_overcommit(const CapacityPolicy& policy, const HostSize& host,
                                      const std::vector<inventory::VmRecord>& vms);
/// The kernel's clock discipline (adjtimex): unsynchronized clocks break TLS, tokens and logs.
std::vector<Finding> check_clock();

/// The taps on this host (/sys/class/net entries with a tun_flags file).
std::vector<std::string> host_taps();

/// GET /host/doctor's answer: {"findings": [...], "counts": {"error": n, "warning": n, "info": n}}.
nlohmann::json doctor_json(const std::vector<Finding>& findings);

}  // namespace corral::daemon
