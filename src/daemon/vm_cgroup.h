#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "daemon/inventory/inventory.h"

/// A VM's cgroup: corrald makes one per running VM, moves the VM process (all its threads) into
/// it and writes the VM's limits (inventory::VmLimits) to its control files. Both layouts are
/// handled: cgroup v2 (one unified tree, Debian 12's default) and the v1 hierarchies (one per
/// controller, as on the machines the project is built on). docs/api.md "Limits" says which
/// file each limit becomes.
namespace corral::daemon {

enum class CgroupVersion { None, V1, V2 };
const char* to_string(CgroupVersion version);

/// Where corrald makes VM groups on this host. On v1, in each controller's hierarchy, the folder
/// `parent_name` inside corrald's own group there (so a VM stays inside whatever limits the
/// service itself was given); on v2, `<mount>/<parent_name>` beside the service's group (v2
/// forbids processes in a group whose children use controllers, so it cannot be inside it).
struct CgroupLayout {
    CgroupVersion version = CgroupVersion::None;
    /// v2: {"": parent folder}. v1: controller ("cpu", "cpuacct", "memory", "blkio", "cpuset")
    /// -> parent folder in that controller's hierarchy (two controllers may share a hierarchy).
    std::map<std::string, std::filesystem::path> parents;
    /// v2: the cgroup mount (whose cgroup.subtree_control must enable the controllers).
    std::filesystem::path v2_root;
    /// Why there are no usable cgroups, or which controllers are missing.
    std::string note;

    /// The layout of this host, from /proc/self/mountinfo and /proc/self/cgroup.
    static CgroupLayout detect(const std::string& parent_name);
    /// The same from the texts of those files; `v2_controllers` is the cgroup2 mount's
    /// cgroup.controllers ("cpuset cpu io memory pids").
    static CgroupLayout from_texts(std::string_view mountinfo, std::string_view self_cgroup,
                                   std::string_view v2_controllers, const std::string& parent_name);
    /// A layout over an arbitrary folder (the unit tests' fake trees): v2, the folder is the
    /// mount; v1, the folder holds one sub-folder per controller.
    static CgroupLayout fake(CgroupVersion version, const std::filesystem::path& root, const std::string& parent_name);

    /// For GET /host: {"version": "v1", "parents": {...}, "note": "..."}.
    nlohmann::json describe() const;
    /// The VM's group folders: one per v1 hierarchy (deduplicated), one on v2.
    std::vector<std::filesystem::path> vm_dirs(const std::string& vm) const;
    /// The VM's folder for `controller` ("cpu", "cpuacct", "memory", "blkio", "cpuset"); empty
    /// when the host has no such controller.
    std::filesystem::path vm_dir(const std::string& vm, const std::string& controller) const;
};

/// "0-3,6" as a set of CPU numbers; the error says what the syntax is.
Result<std::set<unsigned>> parse_cpu_list(std::string_view text);
/// The CPUs this host has online (/sys/devices/system/cpu/online).
std::set<unsigned> host_online_cpus();
/// A set as the kernel's list syntax ("0-2,5").
std::string format_cpu_list(const std::set<unsigned>& cpus);

/// Makes the VM's groups (and their parent; on v2 it enables the controllers) and writes its
/// limits. A limit that is set but cannot be written is an error naming the limits field; a
/// limit that is not set is reset to the kernel's default. Returns warnings (an I/O weight on
/// a host whose disks' scheduler has no weights).
Result<std::vector<std::string>> apply_cgroup_limits(const CgroupLayout& layout, const std::string& vm,
                                                     const inventory::VmLimits& limits, int64_t memory_mib);
/// Moves process `pid` and all its threads into the VM's groups.
Result<void> attach_to_cgroup(const CgroupLayout& layout, const std::string& vm, pid_t pid);
/// Removes the VM's groups once its process ended (a group still holding a process stays).
void remove_cgroup(const CgroupLayout& layout, const std::string& vm);

/// What the kernel counted for a VM's group.
struct CgroupStats {
    uint64_t cpu_usage_usec = 0;      ///< CPU time of all its threads
    uint64_t cpu_throttled_usec = 0;  ///< time held back by its CPU cap
    uint64_t cpu_throttled_periods = 0;
    uint64_t memory_bytes = 0;        ///< memory charged to it now
    uint64_t memory_limit_hits = 0;   ///< times it hit its memory cap (v2 memory.events max, v1 failcnt)
    uint64_t oom_kills = 0;           ///< processes the kernel's OOM killer ended in it (memory.events / memory.oom_control oom_kill)
};
Result<CgroupStats> read_cgroup_stats(const CgroupLayout& layout, const std::string& vm);

}  // namespace corral::daemon
