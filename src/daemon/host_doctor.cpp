#include "daemon/host_doctor.h"

#include <sys/timex.h>

#include <algorithm>
#include <fstream>

#include <fmt/format.h>

namespace corral::daemon {
namespace fs = std::filesystem;

namespace {

constexpr uint64_t k_gib = 1ull << 30;

std::string first_line(const fs::path& file) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);
    return line;
}

}  // namespace

const char* to_string(Severity severity) {
    switch (severity) {
        case Severity::Error: return "error";
        case Severity::Warning: return "warning";
        default: return "info";
    }
}

std::vector<Finding> check_kvm(const nlohmann::json& calibration) {
    const std::string kvm = calibration.is_object() ? calibration.value("kvm", "") : "";
    const std::string reason = calibration.is_object() ? calibration.value("reason", "") : "";
    if (kvm == "absent")
        return {{"kvm", Severity::Warning,
                 fmt::format("no usable KVM ({}): VMs run on the emulated engine (QEMU TCG), many times slower", reason),
                 "enable VT-x/AMD-V in the firmware and load kvm_intel or kvm_amd; on a cloud VM, choose an instance "
                 "type with nested virtualization"}};
    if (kvm == "emulated")
        return {{"kvm", Severity::Warning,
                 fmt::format("/dev/kvm runs guest kernel code far below hardware speed ({}): the emulated engine is the "
                             "default",
                             reason),
                 "run Corral on a host (or an instance type) whose KVM has hardware virtualization"}};
    return {};
}

std::vector<Finding> check_nested(const fs::path& sys_module) {
    for (const char* module : {"kvm_intel", "kvm_amd"}) {
        const fs::path parameter = sys_module / module / "parameters" / "nested";
        if (!fs::exists(parameter)) continue;
        const std::string value = first_line(parameter);
        if (value == "Y" || value == "1") return {};
        return {{"nested", Severity::Info,
                 fmt::format("{} has nested virtualization off: VMs cannot run KVM themselves", module),
                 fmt::format("echo 'options {} nested=1' > /etc/modprobe.d/corral-nested.conf, then reload {} with no VM "
                             "running",
                             module, module)}};
    }
    return {};
}

std::vector<Finding> check_cgroups(const CgroupLayout& layout) {
    if (layout.version == CgroupVersion::None)
        return {{"cgroups", Severity::Warning,
                 fmt::format("no usable cgroups ({}): VM limits cannot be enforced and are refused", layout.note),
                 "run corrald as root on a host with the cpu and memory controllers (cgroup v2: enabled in "
                 "/sys/fs/cgroup/cgroup.subtree_control)"}};
    if (!layout.note.empty())
        return {{"cgroups", Severity::Info, fmt::format("cgroup {}: {}", to_string(layout.version), layout.note),
                 layout.version == CgroupVersion::V2
                     ? "enable the missing controllers: echo +io +cpuset > /sys/fs/cgroup/cgroup.subtree_control"
                     : "mount the missing v1 hierarchies, or boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1)"}};
    return {};
}

std::vector<Finding> check_pools(const std::vector<PoolSpace>& pools) {
    std::vector<Finding> findings;
    for (const auto& pool : pools) {
        if (pool.capacity_bytes == 0) continue;
        const double percent = 100.0 * static_cast<double>(pool.available_bytes) / static_cast<double>(pool.capacity_bytes);
        const bool error = percent < 2 || pool.available_bytes < k_gib / 4;
        const bool warning = percent < 10 || pool.available_bytes < k_gib;
        if (!error && !warning) continue;
        findings.push_back({"pool", error ? Severity::Error : Severity::Warning,
                            fmt::format("pool {} has {} MiB free ({:.1f}% of {} MiB): growing volumes will fail, and "
                                        "their VMs with them",
                                        pool.name, pool.available_bytes >> 20, percent, pool.capacity_bytes >> 20),
                            fmt::format("free space on pool {}'s file system, or delete volumes nothing uses (corral "
                                        "volume list {})",
                                        pool.name, pool.name)});
    }
    return findings;
}

std::vector<Finding> check_network(const nlohmann::json& network_policy) {
    std::vector<Finding> findings;
    if (!network_policy.is_object() || !network_policy.contains("problems")) return findings;
    for (const auto& problem : network_policy["problems"])
        findings.push_back({"network", Severity::Error, problem.value("problem", ""), problem.value("fix", "")});
    return findings;
}

std::vector<Finding> check_orphan_taps(const std::vector<std::string>& host_taps, const std::set<std::string>& in_use) {
    std::vector<Finding> findings;
    for (const auto& tap : host_taps) {
        // corrald's taps: "crl" + 8 hex digits + "n" + index (NicPlumbing::tap_name_for).
        if (tap.rfind("crl", 0) != 0 || tap.size() < 13 || tap[11] != 'n' || in_use.contains(tap)) continue;
        findings.push_back({"orphan-tap", Severity::Warning,
                            fmt::format("tap {} is named like a VM NIC's but no running VM uses it", tap),
                            fmt::format("ip link delete {}", tap)});
    }
    return findings;
}

std::vector<Finding> check_orphan_run_dirs(const fs::path& run_root, const std::vector<inventory::VmRecord>& vms) {
    std::vector<Finding> findings;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(run_root, error)) {
        if (!entry.is_directory()) continue;
        const std::string name = entry.path().filename().string();
        const auto vm = std::find_if(vms.begin(), vms.end(), [&](const auto& v) { return v.name == name; });
        if (vm == vms.end()) {
            findings.push_back({"orphan-run-dir", Severity::Warning,
                                fmt::format("run folder {} belongs to no VM", entry.path().string()),
                                fmt::format("rm -r {}", entry.path().string())});
            continue;
        }
        // A down VM's folder is kept for its logs; a live pid file in it means a process corrald lost.
        if (holds_resources(vm->state) || !fs::exists(entry.path() / "vm.pid")) continue;
        const std::string pid = first_line(entry.path() / "vm.pid");
        if (!pid.empty() && pid.find_first_not_of("0123456789") == std::string::npos && fs::exists("/proc/" + pid))
            findings.push_back({"orphan-process", Severity::Error,
                                fmt::format("VM {} is {} but process {} from its run folder still runs", name,
                                            vm->state, pid),
                                fmt::format("check /proc/{}/cmdline; if it is {}'s monitor, kill {}", pid, name, pid)});
    }
    return findings;
}

std::vector<Finding> check_orphan_volumes(const std::vector<VolumeUse>& volumes) {
    std::vector<Finding> findings;
    for (const auto& volume : volumes)
        if (!volume.used)
            findings.push_back({"orphan-volume", Severity::Info,
                                fmt::format("volume {}/{} is attached to no VM, holds no image and has no linked clones",
                                            volume.pool, volume.volume),
                                fmt::format("attach it (corral vm edit), or delete it: corral volume delete {}/{}",
                                            volume.pool, volume.volume)});
    return findings;
}

std::vector<Finding> check_restart_policies(const std::vector<inventory::VmRecord>& vms) {
    std::vector<Finding> findings;
    for (const auto& vm : vms)
        if (vm.restart_policy == "no")
            findings.push_back({"restart-policy", Severity::Info,
                                fmt::format("VM {} has no restart policy: after a crash or a host reboot it stays down",
                                            vm.name),
                                fmt::format("corral vm edit {} --restart on-failure (while it is stopped)", vm.name)});
    return findings;
}

std::vector<Finding> check_overcommit(const CapacityPolicy& policy, const HostSize& host,
                                      const std::vector<inventory::VmRecord>& vms) {
    const auto limit = allowed(policy, host);
    const auto held = allocated(vms);
    std::vector<Finding> findings;
    if (held.vcpus > limit.vcpus)
        findings.push_back({"overcommit", Severity::Warning,
                            fmt::format("running VMs hold {} vCPUs, more than the {} the policy allows", held.vcpus,
                                        limit.vcpus),
                            "stop VMs, or raise the policy: corral host set-capacity --vcpus-per-cpu N"});
    if (held.memory_mib > limit.memory_mib)
        findings.push_back({"overcommit", Severity::Warning,
                            fmt::format("running VMs hold {} MiB of memory, more than the {} MiB the policy allows",
                                        held.memory_mib, limit.memory_mib),
                            "stop VMs, or raise the policy: corral host set-capacity --memory-percent P"});
    return findings;
}

std::vector<Finding> check_clock() {
    struct timex state {};
    const int status = ::adjtimex(&state);
    if (status == -1 || (status != TIME_ERROR && !(state.status & STA_UNSYNC))) return {};
    return {{"clock", Severity::Warning,
             "the system clock is not synchronized (adjtimex: STA_UNSYNC): TLS certificates, token dates and logs "
             "across hosts go wrong",
             "enable time synchronization: systemctl enable --now systemd-timesyncd (or chrony)"}};
}

std::vector<std::string> host_taps() {
    std::vector<std::string> taps;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator("/sys/class/net", error))
        if (fs::exists(entry.path() / "tun_flags")) taps.push_back(entry.path().filename().string());
    std::sort(taps.begin(), taps.end());
    return taps;
}

nlohmann::json doctor_json(const std::vector<Finding>& findings) {
    nlohmann::json list = nlohmann::json::array();
    nlohmann::json counts = {{"error", 0}, {"warning", 0}, {"info", 0}};
    for (const auto& finding : findings) {
        list.push_back({{"check", finding.check},
                        {"severity", to_string(finding.severity)},
                        {"problem", finding.problem},
                        {"fix", finding.fix}});
        counts[to_string(finding.severity)] = counts[to_string(finding.severity)].get<int>() + 1;
    }
    return {{"findings", list}, {"counts", counts}};
}

}  // namespace corral::daemon
