#include "daemon/vm_cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "base/unique_fd.h"

namespace corral::daemon {
namespace fs = std::filesystem;

namespace {

constexpr const char* k_v1_controllers[] = {"cpu", "cpuacct", "memory", "blkio", "cpuset"};
constexpr uint64_t k_cfs_period_usec = 100000;  // the kernel's default period (100 ms)

std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> parts;
    while (true) {
        const auto at = text.find(separator);
        parts.push_back(text.substr(0, at));
        if (at == std::string_view::npos) return parts;
        text.remove_prefix(at + 1);
    }
}

std::string read_text(const fs::path& file) {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

/// `key value` lines (cpu.stat, memory.events, memory.stat): the value of `key`, 0 when absent.
uint64_t stat_value(const std::string& text, std::string_view key) {
    std::istringstream lines(text);
    std::string name;
    uint64_t value = 0;
    while (lines >> name >> value)
        if (name == key) return value;
    return 0;
}

uint64_t number(const std::string& text) {
    uint64_t value = 0;
    const auto start = text.find_first_not_of(" \t\n");
    if (start != std::string::npos) (void)std::from_chars(text.data() + start, text.data() + text.size(), value);
    return value;
}

/// One write to a control file. Where several files are listed, the first that exists is
/// written (io.weight, else BFQ's io.bfq.weight).
struct ControlWrite {
    std::vector<fs::path> files;
    std::string value;
    /// The limits field that asked for it, when it is set: its failure is an error naming the
    /// field. Empty: a reset to the default, skipped where the file does not exist.
    std::string field;
    bool warn_only = false;  // an I/O weight is advice: a scheduler without weights ignores it
};

Result<void> write_control(const fs::path& file, const std::string& value) {
    // Control files exist already (the kernel makes them); O_TRUNC matters only for the unit
    // tests' fake trees, where they are plain files.
    UniqueFd fd(::open(file.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
    if (!fd.valid()) return fail_errno(fmt::format("cannot open {}", file.string()));
    if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
        return fail_errno(fmt::format("cannot write {} to {}", value, file.string()));
    return {};
}

/// Makes `dir` (and missing parents); on v1 a new cpuset group starts with no CPUs
/// and no memory nodes, in which no task may run, so it gets its parent's.
Result<void> make_group(const fs::path& dir, bool v1_cpuset) {
    if (fs::is_directory(dir)) return {};
    if (!fs::is_directory(dir.parent_path())) TRY_VOID(make_group(dir.parent_path(), v1_cpuset));
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
        return fail_errno(fmt::format("cannot make the cgroup {}", dir.string()));
    if (v1_cpuset)
        for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
            const std::string mine = read_text(dir / file);
            if (mine.find_first_not_of(" \n") != std::string::npos) continue;
            const std::string inherited = read_text(dir.parent_path() / file);
            if (inherited.find_first_not_of(" \n") == std::string::npos) continue;
            TRY_VOID(write_control(dir / file, inherited));
        }
    return {};
}

std::vector<ControlWrite> plan_v2(const CgroupLayout& layout, const std::string& vm, const inventory::VmLimits& limits,
                                  int64_t memory_mib) {
    const fs::path dir = layout.vm_dir(vm, "cpu");
    const uint64_t quota = static_cast<uint64_t>(limits.cpu_max_percent) * k_cfs_period_usec / 100;
    std::vector<ControlWrite> writes;
    auto field = [](bool set, const char* name) { return set ? std::string("limits.") + name : std::string(); };
    writes.push_back({{dir / "cpu.weight"},
                      std::to_string(limits.cpu_weight != 0 ? limits.cpu_weight : 100),
                      field(limits.cpu_weight != 0, "cpu_weight")});
    // The burst goes to 0 first: the kernel refuses a burst above a quota being lowered.
    writes.push_back({{dir / "cpu.max.burst"}, "0", ""});
    writes.push_back({{dir / "cpu.max"},
                      quota != 0 ? fmt::format("{} {}", quota, k_cfs_period_usec) : fmt::format("max {}", k_cfs_period_usec),
                      field(quota != 0, "cpu_max_percent")});
    // A burst of a fifth of the quota: CPU time the monitor's I/O threads left unused in quiet
    // periods may be spent in a busy one, so they do not throttle the vCPUs below the cap.
    if (quota != 0) writes.push_back({{dir / "cpu.max.burst"}, std::to_string(quota / 5), ""});
    const bool memory = limits.memory_overhead_mib != 0;
    writes.push_back({{dir / "memory.max"},
                      memory ? std::to_string((memory_mib + limits.memory_overhead_mib) << 20) : "max",
                      field(memory, "memory_overhead_mib")});
    writes.push_back({{dir / "io.weight", dir / "io.bfq.weight"},
                      limits.io_weight != 0 ? fmt::format("default {}", limits.io_weight) : "default 100",
                      field(limits.io_weight != 0, "io_weight"), true});
        // An empty cpuset.cpus means the parent's CPUs on v2 (the newline makes the write reach the kernel).
    writes.push_back({{dir / "cpuset.cpus"}, limits.host_cpus.empty() ? "\n" : limits.host_cpus,
                      field(!limits.host_cpus.empty(), "host_cpus")});
    return writes;
}

std::vector<ControlWrite> plan_v1(const CgroupLayout& layout, const std::string& vm, const inventory::VmLimits& limits,
                                  int64_t memory_mib) {
    std::vector<ControlWrite> writes;
    auto field = [](bool set, const char* name) { return set ? std::string("limits.") + name : std::string(); };
    if (const fs::path cpu = layout.vm_dir(vm, "cpu"); !cpu.empty()) {
        // cpu.shares: 1024 is v1's default as 100 is v2's weight; the kernel allows 2-262144.
        const int64_t shares = limits.cpu_weight != 0 ? std::clamp<int64_t>(limits.cpu_weight * 1024LL / 100, 2, 262144)
                                                      : 1024;
        writes.push_back({{cpu / "cpu.shares"}, std::to_string(shares), field(limits.cpu_weight != 0, "cpu_weight")});
        const uint64_t quota = static_cast<uint64_t>(limits.cpu_max_percent) * k_cfs_period_usec / 100;
        writes.push_back({{cpu / "cpu.cfs_burst_us"}, "0", ""});
        writes.push_back({{cpu / "cpu.cfs_period_us"}, std::to_string(k_cfs_period_usec),
                          field(quota != 0, "cpu_max_percent")});
        writes.push_back({{cpu / "cpu.cfs_quota_us"}, quota != 0 ? std::to_string(quota) : "-1",
                          field(quota != 0, "cpu_max_percent")});
        if (quota != 0) writes.push_back({{cpu / "cpu.cfs_burst_us"}, std::to_string(quota / 5), ""});
    }
    if (const fs::path memory = layout.vm_dir(vm, "memory"); !memory.empty()) {
        const bool set = limits.memory_overhead_mib != 0;
        writes.push_back({{memory / "memory.limit_in_bytes"},
                          set ? std::to_string((memory_mib + limits.memory_overhead_mib) << 20) : "-1",
                          field(set, "memory_overhead_mib")});
    }
    if (const fs::path blkio = layout.vm_dir(vm, "blkio"); !blkio.empty()) {
        // v1 weights are 10-1000 with a default of 500, v2's 1-10000 with a default of 100: scale
        // so that the defaults meet.
        const int weight = limits.io_weight != 0 ? std::clamp(limits.io_weight * 5, 10, 1000) : 500;
        writes.push_back({{blkio / "blkio.weight", blkio / "blkio.bfq.weight"}, std::to_string(weight),
                          field(limits.io_weight != 0, "io_weight"), true});
    }
    if (const fs::path cpuset = layout.vm_dir(vm, "cpuset"); !cpuset.empty()) {
        // v1 has no "inherit": no pinning means the parent's CPUs.
        const std::string cpus = limits.host_cpus.empty() ? read_text(cpuset.parent_path() / "cpuset.cpus") : limits.host_cpus;
        if (cpus.find_first_not_of(" \n") != std::string::npos)
            writes.push_back({{cpuset / "cpuset.cpus"}, cpus, field(!limits.host_cpus.empty(), "host_cpus")});
    }
    return writes;
}

/// A cgroup line of /proc/self/mountinfo: root (4th field), mount point (5th), and after " - "
/// the file system type and its super options.
struct Mount {
    std::string root, point, type, options;
};

std::vector<Mount> cgroup_mounts(std::string_view mountinfo) {
    std::vector<Mount> mounts;
    for (auto line : split(mountinfo, '\n')) {
        const auto dash = line.find(" - ");
        if (dash == std::string_view::npos) continue;
        auto left = split(line.substr(0, dash), ' ');
        auto right = split(line.substr(dash + 3), ' ');
        if (left.size() < 5 || right.size() < 3) continue;
        if (right[0] != "cgroup" && right[0] != "cgroup2") continue;
        mounts.push_back({std::string(left[3]), std::string(left[4]), std::string(right[0]), std::string(right[2])});
    }
    return mounts;
}

/// /proc/self/cgroup: hierarchy id : controllers : path. The path of the line naming `controller`.
std::optional<std::string> own_group(std::string_view self_cgroup, std::string_view controller) {
    for (auto line : split(self_cgroup, '\n')) {
        auto fields = split(line, ':');
        if (fields.size() < 3) continue;
        for (auto name : split(fields[1], ','))
            if (name == controller) return std::string(line.substr(fields[0].size() + fields[1].size() + 2));
    }
    return std::nullopt;
}

}  // namespace

const char* to_string(CgroupVersion version) {
    switch (version) {
        case CgroupVersion::V1: return "v1";
        case CgroupVersion::V2: return "v2";
        default: return "none";
    }
}

CgroupLayout CgroupLayout::from_texts(std::string_view mountinfo, std::string_view self_cgroup,
                                      std::string_view v2_controllers, const std::string& parent_name) {
    CgroupLayout layout;
    const auto mounts = cgroup_mounts(mountinfo);
    std::vector<std::string> missing;
    for (const char* controller : k_v1_controllers) {
        const Mount* found = nullptr;
        for (const auto& mount : mounts)
            if (mount.type == "cgroup")
                for (auto option : split(mount.options, ','))
                    if (option == controller) found = &mount;
        if (!found) {
            missing.push_back(controller);
            continue;
        }
        // Our group's path is relative to the hierarchy's root; the mount may show a sub-tree.
        std::string own = own_group(self_cgroup, controller).value_or("/");
        if (found->root != "/" && own.rfind(found->root, 0) == 0) own.erase(0, found->root.size());
        layout.parents[controller] = fs::path(found->point) / fs::path(own).relative_path() / parent_name;
    }
    if (layout.parents.contains("cpu") || layout.parents.contains("memory")) {
        layout.version = CgroupVersion::V1;
        if (!missing.empty())
            layout.note = fmt::format("v1 hierarchies without: {}", fmt::join(missing, ", "));
        return layout;
    }
    layout.parents.clear();
    missing.clear();
    for (const auto& mount : mounts) {
        if (mount.type != "cgroup2") continue;
        std::set<std::string_view> controllers;
        for (auto word : split(v2_controllers, ' ')) {
            while (!word.empty() && (word.back() == '\n' || word.back() == ' ')) word.remove_suffix(1);
            if (!word.empty()) controllers.insert(word);
        }
        if (!controllers.contains("cpu") || !controllers.contains("memory")) {
            layout.note = fmt::format("the cgroup2 mount {} offers no cpu and memory controllers", mount.point);
            continue;
        }
        layout.version = CgroupVersion::V2;
        layout.v2_root = mount.point;
        layout.parents[""] = fs::path(mount.point) / parent_name;
        for (const char* wanted : {"io", "cpuset"})
            if (!controllers.contains(wanted)) missing.push_back(wanted);
        layout.note = missing.empty() ? "" : fmt::format("the cgroup2 mount has no: {}", fmt::join(missing, ", "));
        return layout;
    }
    if (layout.note.empty()) layout.note = "no cgroup file system with the cpu and memory controllers is mounted";
    return layout;
}

CgroupLayout CgroupLayout::detect(const std::string& parent_name) {
    const std::string mountinfo = read_text("/proc/self/mountinfo");
    std::string controllers;
    for (const auto& mount : cgroup_mounts(mountinfo))
        if (mount.type == "cgroup2") controllers += read_text(fs::path(mount.point) / "cgroup.controllers") + " ";
    return from_texts(mountinfo, read_text("/proc/self/cgroup"), controllers, parent_name);
}

CgroupLayout CgroupLayout::fake(CgroupVersion version, const fs::path& root, const std::string& parent_name) {
    CgroupLayout layout;
    layout.version = version;
    if (version == CgroupVersion::V2) {
        layout.v2_root = root;
        layout.parents[""] = root / parent_name;
    } else if (version == CgroupVersion::V1) {
        for (const char* controller : k_v1_controllers) layout.parents[controller] = root / controller / parent_name;
    }
    return layout;
}

nlohmann::json CgroupLayout::describe() const {
    nlohmann::json parents_json = nlohmann::json::object();
    for (const auto& [controller, dir] : parents) parents_json[controller.empty() ? "unified" : controller] = dir.string();
    return {{"version", to_string(version)}, {"parents", parents_json}, {"note", note}};
}

fs::path CgroupLayout::vm_dir(const std::string& vm, const std::string& controller) const {
    if (version == CgroupVersion::V2) return parents.at("") / vm;
    auto it = parents.find(controller);
    return it == parents.end() ? fs::path() : it->second / vm;
}

std::vector<fs::path> CgroupLayout::vm_dirs(const std::string& vm) const {
    std::vector<fs::path> dirs;
    for (const auto& [controller, parent] : parents)
        if (std::find(dirs.begin(), dirs.end(), parent / vm) == dirs.end()) dirs.push_back(parent / vm);
    return dirs;
}

Result<std::set<unsigned>> parse_cpu_list(std::string_view text) {
    auto bad = [&] {
        return fail(fmt::format("'{}' is not a list of CPU numbers and ranges like 0-3,6", text), EINVAL);
    };
    std::set<unsigned> cpus;
    if (text.empty()) return bad();
    for (auto part : split(text, ',')) {
        auto bounds = split(part, '-');
        if (bounds.size() > 2) return bad();
        unsigned first = 0, last = 0;
        auto parse = [](std::string_view digits, unsigned& out) {
            if (digits.empty() || digits.size() > 4) return false;
            auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
            return error == std::errc() && end == digits.data() + digits.size();
        };
        if (!parse(bounds[0], first)) return bad();
        last = first;
        if (bounds.size() == 2 && !parse(bounds[1], last)) return bad();
        if (last < first) return bad();
        for (unsigned cpu = first; cpu <= last; ++cpu) cpus.insert(cpu);
    }
    return cpus;
}

std::string format_cpu_list(const std::set<unsigned>& cpus) {
    std::vector<std::string> parts;
    for (auto it = cpus.begin(); it != cpus.end();) {
        unsigned first = *it, last = *it;
        while (++it != cpus.end() && *it == last + 1) last = *it;
        parts.push_back(first == last ? std::to_string(first) : fmt::format("{}-{}", first, last));
    }
    return fmt::format("{}", fmt::join(parts, ","));
}

std::set<unsigned> host_online_cpus() {
    std::string text = read_text("/sys/devices/system/cpu/online");
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    if (auto cpus = parse_cpu_list(text)) return *cpus;
    std::set<unsigned> cpus;
    const long count = ::sysconf(_SC_NPROCESSORS_ONLN);
    for (long cpu = 0; cpu < std::max(1L, count); ++cpu) cpus.insert(static_cast<unsigned>(cpu));
    return cpus;
}

Result<std::vector<std::string>> apply_cgroup_limits(const CgroupLayout& layout, const std::string& vm,
                                                     const inventory::VmLimits& limits, int64_t memory_mib) {
    if (layout.version == CgroupVersion::None)
        return fail(fmt::format("this host has no usable cgroups ({})", layout.note), ENOTSUP);
    if (layout.version == CgroupVersion::V2) {
        // Each controller is enabled on its own: one the host lacks must not stop the others.
        const fs::path parent = layout.parents.at("");
        TRY_VOID(make_group(parent, false));
        for (const fs::path& dir : {layout.v2_root, parent})
            for (const char* controller : {"+cpu", "+memory", "+io", "+cpuset"})
                ignore_error(write_control(dir / "cgroup.subtree_control", controller),
                             "a controller the host lacks shows as a missing control file below");
        TRY_VOID(make_group(parent / vm, false));
    } else {
        for (const auto& [controller, parent] : layout.parents)
            TRY_VOID(make_group(parent / vm, controller == "cpuset"));
    }
    const auto writes = layout.version == CgroupVersion::V2 ? plan_v2(layout, vm, limits, memory_mib)
                                                             : plan_v1(layout, vm, limits, memory_mib);
    std::vector<std::string> warnings;
    for (const auto& write : writes) {
        auto file = std::find_if(write.files.begin(), write.files.end(),
                                 [](const fs::path& path) { return ::access(path.c_str(), F_OK) == 0; });
        if (file == write.files.end()) {
            if (write.field.empty()) continue;
            const std::string why = fmt::format("{}: this host's cgroups have no {} (is the controller enabled?)",
                                                write.field, write.files.front().filename().string());
            if (!write.warn_only) return fail(why, ENOTSUP);
            warnings.push_back(why);
            continue;
        }
        if (auto written = write_control(*file, write.value); !written) {
            if (write.field.empty() || write.warn_only) {
                if (!write.field.empty()) warnings.push_back(fmt::format("{}: {}", write.field, written.error().describe()));
                continue;
            }
            return fail(written.error().with_context(write.field));
        }
    }
    return warnings;
}

Result<void> attach_to_cgroup(const CgroupLayout& layout, const std::string& vm, pid_t pid) {
    // v1 memory: charges made before the move (QEMU's start-up) go with the process.
    if (const fs::path memory = layout.vm_dir(vm, "memory"); layout.version == CgroupVersion::V1 && !memory.empty())
        ignore_error(write_control(memory / "memory.move_charge_at_immigrate", "3"),
                     "newer kernels dropped it; only the start-up allocations stay where they were");
    for (const auto& dir : layout.vm_dirs(vm))
        TRY_VOID(write_control(dir / "cgroup.procs", std::to_string(pid)));
    return {};
}

void remove_cgroup(const CgroupLayout& layout, const std::string& vm) {
    // rmdir, never a recursive delete: a cgroup folder's control files cannot be unlinked.
    for (const auto& dir : layout.vm_dirs(vm)) ::rmdir(dir.c_str());
}

Result<CgroupStats> read_cgroup_stats(const CgroupLayout& layout, const std::string& vm) {
    CgroupStats stats;
    if (layout.version == CgroupVersion::V2) {
        const fs::path dir = layout.vm_dir(vm, "cpu");
        if (!fs::is_directory(dir)) return fail(fmt::format("{} has no cgroup", vm), ENOENT);
        const std::string cpu = read_text(dir / "cpu.stat");
        stats.cpu_usage_usec = stat_value(cpu, "usage_usec");
        stats.cpu_throttled_usec = stat_value(cpu, "throttled_usec");
        stats.cpu_throttled_periods = stat_value(cpu, "nr_throttled");
        stats.memory_bytes = number(read_text(dir / "memory.current"));
        const std::string events = read_text(dir / "memory.events");
        stats.memory_limit_hits = stat_value(events, "max");
        stats.oom_kills = stat_value(events, "oom_kill");
        return stats;
    }
    if (layout.version == CgroupVersion::None) return fail("this host has no usable cgroups", ENOTSUP);
    const fs::path cpu = layout.vm_dir(vm, "cpu");
    if (cpu.empty() || !fs::is_directory(cpu)) return fail(fmt::format("{} has no cgroup", vm), ENOENT);
    const std::string cpu_stat = read_text(cpu / "cpu.stat");
    stats.cpu_throttled_usec = stat_value(cpu_stat, "throttled_time") / 1000;  // v1 counts nanoseconds
    stats.cpu_throttled_periods = stat_value(cpu_stat, "nr_throttled");
    if (const fs::path acct = layout.vm_dir(vm, "cpuacct"); !acct.empty())
        stats.cpu_usage_usec = number(read_text(acct / "cpuacct.usage")) / 1000;
    if (const fs::path memory = layout.vm_dir(vm, "memory"); !memory.empty()) {
        stats.memory_bytes = number(read_text(memory / "memory.usage_in_bytes"));
        stats.memory_limit_hits = number(read_text(memory / "memory.failcnt"));
        stats.oom_kills = stat_value(read_text(memory / "memory.oom_control"), "oom_kill");
    }
    return stats;
}

}  // namespace corral::daemon
