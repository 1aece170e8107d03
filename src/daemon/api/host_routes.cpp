#include <fmt/format.h>

#include "daemon/api/api_context.h"
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
    router.add("GET", api_path("/openapi.json"), [](const HttpRequest&, const PathParams&) -> ApiResult<HttpResponse> {
        HttpResponse response;
        response.body = openapi_document();
        return response;
    });
}

}  // namespace corral::daemon
