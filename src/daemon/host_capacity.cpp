#include "daemon/host_capacity.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "base/private_file.h"

namespace corral::daemon {
namespace fs = std::filesystem;

namespace {

/// The busy and total jiffies of the "cpu" line of /proc/stat.
std::pair<uint64_t, uint64_t> cpu_jiffies() {
    std::ifstream in("/proc/stat");
    std::string label;
    in >> label;
    uint64_t total = 0, idle = 0, value = 0;
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    for (int field = 0; field < 8 && in >> value; ++field) {
        total += value;
        if (field == 3 || field == 4) idle += value;
    }
    return {total - idle, total};
}

uint64_t meminfo_kib(const std::string& text, const std::string& key) {
    std::istringstream lines(text);
    std::string name;
    uint64_t value = 0;
    std::string unit;
    while (lines >> name >> value >> unit)
        if (name == key + ":") return value;
    return 0;
}

}  // namespace

Result<CapacityPolicy> load_capacity_policy(const fs::path& file) {
    std::error_code error;
    if (!fs::exists(file, error)) return CapacityPolicy{};
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    const auto object = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
    CapacityPolicy policy;
    auto invalid = [&] {
        return fail(fmt::format("{} is not a capacity policy ({{\"vcpus_per_cpu\": 1-{}, \"memory_percent\": {}-{}}}): "
                                "fix it or remove it for the defaults",
                                file.string(), CapacityPolicy::k_max_vcpus_per_cpu, CapacityPolicy::k_min_memory_percent,
                                CapacityPolicy::k_max_memory_percent));
    };
    if (object.is_discarded() || !object.is_object()) return invalid();
    for (const auto& [key, value] : object.items()) {
        if (!value.is_number_unsigned()) return invalid();
        const auto number = value.get<uint64_t>();
        if (key == "vcpus_per_cpu" && number >= 1 && number <= CapacityPolicy::k_max_vcpus_per_cpu)
            policy.vcpus_per_cpu = static_cast<unsigned>(number);
        else if (key == "memory_percent" && number >= CapacityPolicy::k_min_memory_percent &&
                 number <= CapacityPolicy::k_max_memory_percent)
            policy.memory_percent = static_cast<unsigned>(number);
        else
            return invalid();
    }
    return policy;
}

Result<void> save_capacity_policy(const fs::path& file, const CapacityPolicy& policy) {
    const nlohmann::json object = {{"vcpus_per_cpu", policy.vcpus_per_cpu}, {"memory_percent", policy.memory_percent}};
    return write_file_atomically(file.string(), object.dump(2) + "\n", 0644);
}

bool holds_resources(const std::string& state) {
    return state == "starting" || state == "running" || state == "paused" || state == "stopping";
}

Allocation allocation_of(const inventory::VmRecord& vm) {
    return {vm.vcpus, vm.memory_mib + vm.limits.memory_overhead_mib};
}

Allocation allocated(const std::vector<inventory::VmRecord>& vms, const std::string& except) {
    Allocation sum;
    for (const auto& vm : vms) {
        if (vm.name == except || !holds_resources(vm.state)) continue;
        const auto one = allocation_of(vm);
        sum.vcpus += one.vcpus;
        sum.memory_mib += one.memory_mib;
    }
    return sum;
}

Allocation allowed(const CapacityPolicy& policy, const HostSize& host) {
    return {static_cast<int64_t>(host.cpus) * policy.vcpus_per_cpu,
            static_cast<int64_t>(host.memory_mib * policy.memory_percent / 100)};
}

std::optional<std::string> admission_refusal(const CapacityPolicy& policy, const HostSize& host,
                                             const Allocation& others, const inventory::VmRecord& vm) {
    // No host facts (a VmManager nobody gave a host, as in unit tests): nothing to hold a start to.
    if (host.memory_mib == 0) return std::nullopt;
    const auto limit = allowed(policy, host);
    const auto needs = allocation_of(vm);
    if (others.vcpus + needs.vcpus > limit.vcpus)
        return fmt::format(
            "starting {} would exceed this host's vCPU capacity: it needs {} vCPUs, {} are allocated to running VMs, "
            "and {} are allowed ({} host CPUs x vcpus_per_cpu {}); {} are free (corral host capacity)",
            vm.name, needs.vcpus, others.vcpus, limit.vcpus, host.cpus, policy.vcpus_per_cpu,
            std::max<int64_t>(0, limit.vcpus - others.vcpus));
    if (others.memory_mib + needs.memory_mib > limit.memory_mib)
        return fmt::format(
            "starting {} would exceed this host's memory capacity: it needs {} MiB, {} MiB are allocated to running "
            "VMs, and {} MiB are allowed (memory_percent {}% of {} MiB); {} MiB are free (corral host capacity)",
            vm.name, needs.memory_mib, others.memory_mib, limit.memory_mib, policy.memory_percent, host.memory_mib,
            std::max<int64_t>(0, limit.memory_mib - others.memory_mib));
    return std::nullopt;
}

HostUsage measure_host_usage() {
    HostUsage usage;
    // A short sample: long enough for the jiffy counters to move (100 Hz), short for an API call.
    const auto [busy0, total0] = cpu_jiffies();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const auto [busy1, total1] = cpu_jiffies();
    const long cpus = std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN));
    if (total1 > total0)
        usage.cpus_busy = static_cast<double>(busy1 - busy0) / static_cast<double>(total1 - total0) *
                          static_cast<double>(cpus);
    std::ifstream in("/proc/meminfo");
    std::stringstream text;
    text << in.rdbuf();
    const uint64_t total = meminfo_kib(text.str(), "MemTotal"), available = meminfo_kib(text.str(), "MemAvailable");
    usage.memory_used_mib = total > available ? (total - available) / 1024 : 0;
    return usage;
}

nlohmann::json capacity_json(const CapacityPolicy& policy, const HostSize& host,
                             const std::vector<inventory::VmRecord>& vms, const HostUsage& usage) {
    const auto limit = allowed(policy, host);
    const auto held = allocated(vms);
    nlohmann::json holders = nlohmann::json::array();
    for (const auto& vm : vms)
        if (holds_resources(vm.state)) {
            const auto one = allocation_of(vm);
            holders.push_back({{"name", vm.name}, {"state", vm.state}, {"vcpus", one.vcpus}, {"memory_mib", one.memory_mib}});
        }
    // One decimal: a sample of 200 ms says no more.
    const double busy = static_cast<double>(static_cast<int64_t>(usage.cpus_busy * 10 + 0.5)) / 10;
    return {{"policy", {{"vcpus_per_cpu", policy.vcpus_per_cpu}, {"memory_percent", policy.memory_percent}}},
            {"vcpus",
             {{"host", host.cpus},
              {"allowed", limit.vcpus},
              {"allocated", held.vcpus},
              {"used", busy},
              {"free", std::max<int64_t>(0, limit.vcpus - held.vcpus)}}},
            {"memory_mib",
             {{"host", host.memory_mib},
              {"allowed", limit.memory_mib},
              {"allocated", held.memory_mib},
              {"used", usage.memory_used_mib},
              {"free", std::max<int64_t>(0, limit.memory_mib - held.memory_mib)}}},
            {"vms", holders}};
}

}  // namespace corral::daemon
