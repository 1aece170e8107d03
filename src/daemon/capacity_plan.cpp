#include "daemon/capacity_plan.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace corral::daemon {

namespace {

/// A trend over less than this is the noise of a boot or a burst, not growth: no date is given.
constexpr double k_min_projection_seconds = 3600;
/// A new VM is expected to use at least this share of its size, so that idle VMs do not make
/// the plan promise thousands of guests (the policy bounds those anyway).
constexpr double k_min_use_share = 0.01;

struct Resource {
    std::string name;             // "cpu", "memory"
    std::string unit;             // what use is counted in
    std::string allocation_unit;  // what the policy counts
    double capacity = 0;          // what the host can give: its CPUs, its memory up to the policy's share
    double used_p95 = 0;          // the host's use (VMs and all), what-ifs applied
    double allocated = 0;         // what running VMs hold, what-ifs applied
    double allowed = 0;           // what the policy lets them hold
    double shape = 0;             // the planned VM's size
    double use_share = 1;         // measured use per allocated unit across the VMs with a history
    std::optional<double> growth;  // of the host's use, per day
};

int64_t whole_fits(double free, double each) {
    if (free <= 0 || each <= 0) return 0;
    return static_cast<int64_t>(std::floor(free / each + 1e-9));
}

std::string shape_text(const PlanShape& shape) {
    return fmt::format("{} vCPU{} / {} MiB", shape.vcpus, shape.vcpus == 1 ? "" : "s", shape.memory_mib);
}

nlohmann::json optional_number(const std::optional<double>& value, int decimals) {
    if (!value) return nullptr;
    const double scale = std::pow(10.0, decimals);
    return std::round(*value * scale) / scale;
}

}  // namespace

std::optional<double> percentile95(const std::vector<std::optional<double>>& values) {
    std::vector<double> present;
    for (const auto& value : values)
        if (value) present.push_back(*value);
    if (present.empty()) return std::nullopt;
    std::sort(present.begin(), present.end());
    // Nearest rank: the smallest value with at least 95% of the values at or below it.
    const auto rank = static_cast<size_t>(std::ceil(0.95 * static_cast<double>(present.size())));
    return present[std::max<size_t>(rank, 1) - 1];
}

std::optional<double> growth_per_day(const std::vector<double>& time, const std::vector<std::optional<double>>& values) {
    double n = 0, sum_t = 0, sum_v = 0;
    for (size_t i = 0; i < time.size() && i < values.size(); ++i) {
        if (!values[i]) continue;
        n += 1;
        sum_t += time[i];
        sum_v += *values[i];
    }
    if (n < 2) return std::nullopt;
    const double mean_t = sum_t / n, mean_v = sum_v / n;
    double covariance = 0, variance = 0;
    for (size_t i = 0; i < time.size() && i < values.size(); ++i) {
        if (!values[i]) continue;
        covariance += (time[i] - mean_t) * (*values[i] - mean_v);
        variance += (time[i] - mean_t) * (time[i] - mean_t);
    }
    if (variance <= 0) return std::nullopt;
    return covariance / variance * 86400.0;
}

Result<nlohmann::json> plan_capacity(const PlanInput& input) {
    const Allocation allowed_now = allowed(input.policy, input.host);
    Resource cpu;
    cpu.name = "cpu";
    cpu.unit = "CPUs";
    cpu.allocation_unit = "vCPUs";
    Resource memory;
    memory.name = "memory";
    memory.unit = memory.allocation_unit = "MiB";
    cpu.capacity = input.host.cpus;
    // Guest memory is not given back without a balloon: used memory past the host's RAM is not
    // overcommit but swapping, so the policy's share counts only up to all of it.
    memory.capacity = static_cast<double>(input.host.memory_mib) * std::min(input.policy.memory_percent, 100u) / 100.0;
    cpu.allowed = static_cast<double>(allowed_now.vcpus);
    memory.allowed = static_cast<double>(allowed_now.memory_mib);
    cpu.shape = static_cast<double>(input.shape.vcpus);
    memory.shape = static_cast<double>(input.shape.memory_mib);
    cpu.used_p95 = percentile95(input.host_usage.cpus).value_or(0);
    memory.used_p95 = percentile95(input.host_usage.memory_mib).value_or(0);

    // Per VM: its high percentiles, and the fleet's use per allocated unit, which sizes a new VM.
    nlohmann::json vms = nlohmann::json::array();
    double cpu_used = 0, cpu_held = 0, memory_used = 0, memory_held = 0;
    std::vector<std::pair<std::optional<double>, std::optional<double>>> p95s;
    for (const auto& vm : input.vms) {
        const auto vm_cpu = percentile95(vm.usage.cpus);
        const auto vm_memory = percentile95(vm.usage.memory_mib);
        p95s.emplace_back(vm_cpu, vm_memory);
        if (vm_cpu) {
            cpu_used += *vm_cpu;
            cpu_held += static_cast<double>(vm.allocation.vcpus);
        }
        if (vm_memory) {
            memory_used += *vm_memory;
            memory_held += static_cast<double>(vm.allocation.memory_mib);
        }
        if (vm.holds) {
            cpu.allocated += static_cast<double>(vm.allocation.vcpus);
            memory.allocated += static_cast<double>(vm.allocation.memory_mib);
        }
        vms.push_back({{"name", vm.name},
                       {"vcpus", vm.allocation.vcpus},
                       {"memory_mib", vm.allocation.memory_mib},
                       {"running", vm.holds},
                       {"cpu_p95", optional_number(vm_cpu, 3)},
                       {"memory_p95_mib", optional_number(vm_memory, 1)}});
    }
    nlohmann::json notes = nlohmann::json::array();
    if (cpu_held > 0) cpu.use_share = std::clamp(cpu_used / cpu_held, k_min_use_share, 1.0);
    if (memory_held > 0) memory.use_share = std::clamp(memory_used / memory_held, k_min_use_share, 1.0);
    if (cpu_held == 0 && memory_held == 0)
        notes.push_back("no VM has a history yet: a new VM is counted at its full size");

    nlohmann::json what_ifs = nlohmann::json::array();
    for (const auto& change : input.what_ifs) {
        if (change.remove.empty()) {
            const double count = change.count;
            cpu.allocated += count * static_cast<double>(change.shape.vcpus);
            memory.allocated += count * static_cast<double>(change.shape.memory_mib);
            cpu.used_p95 += count * static_cast<double>(change.shape.vcpus) * cpu.use_share;
            memory.used_p95 += count * static_cast<double>(change.shape.memory_mib) * memory.use_share;
            what_ifs.push_back(fmt::format("add {} x {}", change.count, shape_text(change.shape)));
            continue;
        }
        const auto it = std::find_if(input.vms.begin(), input.vms.end(),
                                     [&](const PlanVm& vm) { return vm.name == change.remove; });
        if (it == input.vms.end())
            return fail(ErrorKind::NotFound, fmt::format("what-if: no VM named {} to remove", change.remove));
        const auto& [vm_cpu, vm_memory] = p95s[static_cast<size_t>(it - input.vms.begin())];
        if (it->holds) {
            cpu.allocated -= static_cast<double>(it->allocation.vcpus);
            memory.allocated -= static_cast<double>(it->allocation.memory_mib);
        }
        cpu.used_p95 = std::max(0.0, cpu.used_p95 - vm_cpu.value_or(0));
        memory.used_p95 = std::max(0.0, memory.used_p95 - vm_memory.value_or(0));
        what_ifs.push_back(fmt::format("remove {}", change.remove));
    }

    const auto& time = input.host_usage.time;
    const double span = time.size() >= 2 ? time.back() - time.front() : 0;
    if (span >= k_min_projection_seconds) {
        cpu.growth = growth_per_day(time, input.host_usage.cpus);
        memory.growth = growth_per_day(time, input.host_usage.memory_mib);
    } else {
        notes.push_back(fmt::format(
            "{:.0f} s of history: at least an hour is needed to measure growth and project when a resource runs out",
            span));
    }

    nlohmann::json resources = nlohmann::json::array();
    int64_t fits = std::numeric_limits<int64_t>::max();
    std::string first, limited_by;
    for (const Resource* resource : {&cpu, &memory}) {
        const double expected = resource->shape * resource->use_share;
        const int64_t by_use = whole_fits(resource->capacity - resource->used_p95, expected);
        const int64_t by_policy = whole_fits(resource->allowed - resource->allocated, resource->shape);
        std::optional<double> full_in_days;
        if (resource->growth && *resource->growth > 0)
            full_in_days = std::max(0.0, resource->capacity - resource->used_p95) / *resource->growth;
        for (const auto& [count, why] : {std::pair{by_use, "measured use"}, std::pair{by_policy, "overcommit policy"}}) {
            if (count < fits) {
                fits = count;
                first = resource->name;
                limited_by = why;
            }
        }
        resources.push_back({{"resource", resource->name},
                             {"unit", resource->unit},
                             {"capacity", optional_number(resource->capacity, 1)},
                             {"used_p95", optional_number(resource->used_p95, 3)},
                             {"allocation_unit", resource->allocation_unit},
                             {"allocated", optional_number(resource->allocated, 1)},
                             {"allowed", optional_number(resource->allowed, 1)},
                             {"use_per_allocated", optional_number(resource->use_share, 3)},
                             {"expected_per_vm", optional_number(expected, 3)},
                             {"fits_by_use", by_use},
                             {"fits_by_policy", by_policy},
                             {"growth_per_day", optional_number(resource->growth, 3)},
                             {"full_in_days", optional_number(full_in_days, 1)}});
    }
    const std::string summary =
        fmt::format("{} more VM{} of {} fit{}; {} runs out first, by the {}", fits, fits == 1 ? "" : "s",
                    shape_text(input.shape), fits == 1 ? "s" : "", first, limited_by);
    return nlohmann::json{{"history", {{"seconds", std::round(span)}, {"samples", time.size()}}},
                          {"shape", {{"vcpus", input.shape.vcpus}, {"memory_mib", input.shape.memory_mib}}},
                          {"what_if", what_ifs},
                          {"resources", resources},
                          {"fits", fits},
                          {"first_to_run_out", first},
                          {"limited_by", limited_by},
                          {"summary", summary},
                          {"vms", vms},
                          {"notes", notes}};
}

}  // namespace corral::daemon
