#include <fmt/format.h>

#include "daemon/api/api_context.h"
#include "daemon/http/request_body.h"
#include "base/version.h"
#include "daemon/openapi.h"

namespace corral::daemon {

HttpResponse accepted_task(const inventory::TaskRecord& task) {
    auto response = json_response(202, {{"task", task.id}, {"status_url", api_path(fmt::format("/tasks/{}", task.id))}});
    response.headers.emplace_back("Location", api_path(fmt::format("/tasks/{}", task.id)));
    return response;
}

void add_host_routes(Router& router, ApiContext& context) {
    router.add("GET", api_path("/host"), [&context](const HttpRequest&, const PathParams&) -> ApiResult<HttpResponse> {
        nlohmann::json engines = nlohmann::json::object();
        for (const auto& [name, engine] : context.vms.engines()) {
            auto availability = engine->availability();
            engines[name] = {{"available", availability.available}, {"reason", availability.reason}};
        }
        return json_response(200, {{"hostname", context.host.hostname},
                                   {"version", k_version},
                                   {"cpus", context.host.cpus},
                                   {"memory_mib", context.host.memory_mib},
                                   {"state_dir", context.host.state_dir.string()},
                                   {"default_engine", context.vms.default_engine()},
                                   {"engines", engines},
                                   {"calibration", context.host.calibration},
                                   {"cgroups", context.vms.cgroups().describe()},
                                   {"network_policy", context.networks ? context.networks->host_policy()
                                                                       : nlohmann::json()},
                                   {"api", context.host.api.is_null() ? nlohmann::json::object() : context.host.api}});
    });
    router.add("GET", api_path("/host/capacity"), [&context](const HttpRequest&, const PathParams&) -> ApiResult<HttpResponse> {
        const auto [policy, host] = context.vms.capacity();
        auto vms = TRY(api(context.inventory.list_vms()));
        return json_response(200, capacity_json(policy, host, vms, measure_host_usage()));
    });
    router.add("PATCH", api_path("/host/capacity"),
               [&context](const HttpRequest& request, const PathParams&) -> ApiResult<HttpResponse> {
                   auto [policy, host] = context.vms.capacity();
                   auto body = TRY(RequestBody::parse(request.body));
                   if (auto ratio = TRY(body.optional_uint("vcpus_per_cpu", 1, CapacityPolicy::k_max_vcpus_per_cpu,
                                                           "vCPUs per host CPU")))
                       policy.vcpus_per_cpu = static_cast<unsigned>(*ratio);
                   if (auto percent = TRY(body.optional_uint("memory_percent", CapacityPolicy::k_min_memory_percent,
                                                             CapacityPolicy::k_max_memory_percent,
                                                             "percent of the host's memory")))
                       policy.memory_percent = static_cast<unsigned>(*percent);
                   TRY_VOID(body.finish());
                   // Running VMs keep running above a lowered policy; only new starts are held to it.
                   TRY_VOID(api(save_capacity_policy(context.host.state_dir / "capacity.json", policy)));
                   context.vms.set_capacity(policy, host);
                   auto vms = TRY(api(context.inventory.list_vms()));
                   return json_response(200, capacity_json(policy, host, vms, measure_host_usage()));
               });
    router.add("GET", api_path("/openapi.json"), [](const HttpRequest&, const PathParams&) -> ApiResult<HttpResponse> {
        HttpResponse response;
        response.body = openapi_document();
        return response;
    });
}

}  // namespace corral::daemon
