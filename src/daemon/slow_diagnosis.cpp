#include "daemon/slow_diagnosis.h"

#include <algorithm>
#include <optional>

#include <fmt/format.h>

namespace corral::daemon {

namespace {

using namespace slow_thresholds;

/// The mean of a series column's numbers (nulls are gaps); nullopt when it has none.
std::optional<double> mean_of(const nlohmann::json& series, const char* column) {
    auto it = series.find(column);
    if (it == series.end() || !it->is_array())
        return std::nullopt;
    double sum = 0;
    size_t count = 0;
    for (const auto& value : *it) {
        if (!value.is_number())
            continue;
        sum += value.get<double>();
        ++count;
    }
    if (count == 0)
        return std::nullopt;
    return sum / static_cast<double>(count);
}

std::string percent(double fraction) {
    if (fraction > 0 && fraction < 0.005)
        return "under 1%";
    return fmt::format("{:.0f}%", fraction * 100);
}

std::string level_of(double value, double warning, double problem) {
    return value >= problem ? "problem" : value >= warning ? "warning" : "ok";
}

nlohmann::json cause(const char* name, std::optional<double> value, const char* unit, std::string level,
                     std::string verdict, std::string fix) {
    return {{"cause", name},
            {"value", value ? nlohmann::json(*value) : nlohmann::json(nullptr)},
            {"unit", unit},
            {"level", std::move(level)},
            {"verdict", std::move(verdict)},
            {"fix", std::move(fix)}};
}

nlohmann::json cpu_wait(const nlohmann::json& series, const SlowContext& context) {
    auto delay = mean_of(series, "vcpu_run_delay");
    if (!delay)
        return cause("cpu_wait", delay, "fraction", "unknown", "no samples of its vCPUs in the last minutes", "");
    auto level = level_of(*delay, k_run_delay_warning, k_run_delay_problem);
    if (level == "ok")
        return cause(
            "cpu_wait", delay, "fraction", level,
            fmt::format("its vCPUs got a host CPU when they wanted one (waited {} of the time)", percent(*delay)), "");
    const double per_cpu = static_cast<double>(context.running_vcpus) / std::max(1u, context.host_cpus);
    const std::string weight =
        fmt::format("raise this VM's CPU weight (corral vm edit {} --cpu-weight 200)", context.vm);
    if (per_cpu > 1)
        return cause("cpu_wait", delay, "fraction", level,
                     fmt::format("its vCPUs waited {} of the time for a host CPU: the host is overcommitted ({:.3g} "
                                 "vCPUs per CPU)",
                                 percent(*delay), per_cpu),
                     "move a VM to another host, or " + weight);
    return cause(
        "cpu_wait", delay, "fraction", level,
        fmt::format("its vCPUs waited {} of the time for a host CPU: other work on the host keeps its CPUs busy",
                    percent(*delay)),
        "find what keeps the host busy (the dashboard's host CPU chart, top), or " + weight);
}

nlohmann::json cpu_cap(const nlohmann::json& series, const SlowContext& context) {
    auto throttled = mean_of(series, "cpu_throttled");
    if (context.cpu_max_percent <= 0)
        return cause("cpu_cap", throttled, "fraction", "ok", "it has no CPU cap", "");
    const std::string cap =
        fmt::format("cpu_max {}%, {:.3g} of a CPU", context.cpu_max_percent, context.cpu_max_percent / 100.0);
    if (!throttled)
        return cause("cpu_cap", throttled, "fraction", "unknown",
                     fmt::format("no samples of its CPU cap ({}) in the last minutes", cap), "");
    auto level = level_of(*throttled, k_throttled_warning, k_throttled_problem);
    if (level == "ok")
        return cause("cpu_cap", throttled, "fraction", level,
                     fmt::format("its CPU cap ({}) held it back {} of the time", cap, percent(*throttled)), "");
    return cause(
        "cpu_cap", throttled, "fraction", level,
        fmt::format("held back by its CPU cap ({}) {} of the time", cap, percent(*throttled)),
        fmt::format("raise cpu_max (corral vm edit {} --cpu-max {}%)", context.vm, context.cpu_max_percent * 2));
}

nlohmann::json disk(const nlohmann::json& series, const char* name, const char* column, const char* what) {
    auto latency = mean_of(series, column);
    if (!latency)
        return cause(name, latency, "ms", "unknown", fmt::format("no disk {} in the last minutes", what), "");
    auto level = level_of(*latency, k_latency_warning_ms, k_latency_problem_ms);
    const std::string took = fmt::format("disk {} take {:.3g} ms", what, *latency);
    if (level == "ok")
        return cause(name, latency, "ms", level, took, "");
    return cause(name, latency, "ms", level, took + ": the pool's disk is slow or busy",
                 "move its volumes to a pool on a faster disk, or find what else uses that disk (the other VMs' "
                 "disk charts)");
}

}  // namespace

nlohmann::json diagnose_slowness(const nlohmann::json& series, const SlowContext& context) {
    return {{"window_seconds", k_window_seconds},
            {"causes",
             {cpu_wait(series, context), cpu_cap(series, context),
              disk(series, "disk_read", "disk_read_latency_ms", "reads"),
              disk(series, "disk_write", "disk_write_latency_ms", "writes")}}};
}

}  // namespace corral::daemon
