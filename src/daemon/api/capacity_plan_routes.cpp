// POST /host/capacity/plan (docs/api.md "Capacity plan"): the planner of capacity_plan.h over
// this corrald's metrics history. POST because the question has a structure (a shape and a list
// of what-ifs); it changes nothing.
#include <fmt/format.h>

#include "daemon/api/api_context.h"
#include "daemon/capacity_plan.h"
#include "daemon/http/request_body.h"
#include "daemon/metrics_history.h"

namespace corral::daemon {

namespace {

constexpr uint64_t k_max_what_ifs = 32;
constexpr uint64_t k_max_added_vms = 100000;
constexpr uint64_t k_max_shape_memory_mib = uint64_t{1} << 30;  // 1 PiB: any host's, and no overflow
constexpr uint64_t k_max_shape_vcpus = 4096;
constexpr double k_mib = 1024.0 * 1024.0;

/// A VM size from `reader`'s vcpus and memory_mib (either may be left out: `fallback`'s).
ApiResult<PlanShape> read_shape(JsonReader& reader, const PlanShape& fallback) {
    PlanShape shape = fallback;
    if (auto vcpus = TRY(reader.optional_uint("vcpus", 1, k_max_shape_vcpus, "vCPUs")))
        shape.vcpus = static_cast<int64_t>(*vcpus);
    if (auto memory = TRY(reader.optional_uint("memory_mib", 1, k_max_shape_memory_mib, "MiB")))
        shape.memory_mib = static_cast<int64_t>(*memory);
    return shape;
}

/// A series of the metrics history (vm_series/host_series) as the planner reads it.
UsageSeries usage_of(const nlohmann::json& series) {
    UsageSeries usage;
    const auto& time = series.at("time");
    const auto& cpu = series.at("cpu");
    const auto& memory = series.at("memory_bytes");
    for (size_t i = 0; i < time.size() && i < cpu.size() && i < memory.size(); ++i) {
        usage.time.push_back(time[i].get<double>());
        usage.cpus.push_back(cpu[i].is_number() ? std::optional<double>(cpu[i].get<double>()) : std::nullopt);
        // A gap's memory is the sample's own reading; kept only where the CPU rate is real.
        usage.memory_mib.push_back(cpu[i].is_number() ? std::optional<double>(memory[i].get<double>() / k_mib)
                                                      : std::nullopt);
    }
    return usage;
}

/// The history to plan from: the last hour at the sampling interval while corrald has not
/// sampled for a full hour, else the day at the coarse interval (the longest record it keeps).
struct HistoryWindow {
    double since = 0;
    uint64_t step = 0;
};
HistoryWindow window_of(const MetricsHistory& history) {
    const auto& tiers = history.tiers();
    const double now = unix_now();
    const double hour = static_cast<double>(tiers.interval.count()) * static_cast<double>(tiers.fine_capacity());
    if (!history.sampled_an_hour()) return {now - hour + static_cast<double>(tiers.interval.count()), 0};
    return {now - 86400, static_cast<uint64_t>(tiers.coarse_interval().count())};
}

}  // namespace

void add_capacity_plan_routes(Router& router, ApiContext& context) {
    router.add("POST", api_path("/host/capacity/plan"),
               [&context](const HttpRequest& request, const PathParams&) -> ApiResult<HttpResponse> {
                   if (!context.metrics_history) return api_fail(503, "this corrald keeps no metrics history");
                   const MetricsHistory& history = *context.metrics_history;
                   PlanInput input;
                   std::tie(input.policy, input.host) = context.vms.capacity();
                   auto body = TRY(RequestBody::parse(request.body));
                   if (auto shape = TRY(body.optional_object("shape"))) input.shape = TRY(read_shape(*shape, input.shape));
                   if (auto changes = TRY(body.optional_objects("what_if", k_max_what_ifs))) {
                       for (auto& change : *changes) {
                           WhatIf what_if;
                           const bool adds = change.has("add"), removes = change.has("remove");
                           if (adds == removes)
                               return api_fail(400,
                                               fmt::format("{} wants either add (a count of VMs, with vcpus and "
                                                           "memory_mib: the shape's when left out) or remove (a VM's name)",
                                                           change.path()),
                                               change.path());
                           if (removes) {
                               what_if.remove = TRY(change.required_string("remove"));
                           } else {
                               what_if.count = static_cast<unsigned>(
                                   TRY(change.optional_uint("add", 1, k_max_added_vms, "VMs")).value_or(1));
                               what_if.shape = TRY(read_shape(change, input.shape));
                           }
                           input.what_ifs.push_back(std::move(what_if));
                       }
                   }
                   TRY_VOID(body.finish());

                   const auto window = window_of(history);
                   input.host_usage = usage_of(history.host_series(window.since, window.step));
                   for (const auto& vm : TRY(api(context.inventory.list_vms())))
                       input.vms.push_back({vm.name, allocation_of(vm), holds_resources(vm.state),
                                            usage_of(history.vm_series(vm.name, window.since, window.step))});
                   auto plan = TRY(api(plan_capacity(input), "what_if"));
                   plan["policy"] = {{"vcpus_per_cpu", input.policy.vcpus_per_cpu},
                                     {"memory_percent", input.policy.memory_percent}};
                   plan["host"] = {{"cpus", input.host.cpus}, {"memory_mib", input.host.memory_mib}};
                   return json_response(200, plan);
               });
}

}  // namespace corral::daemon
