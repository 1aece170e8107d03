// A VM's memory balloon (docs/api.md "Memory balloon"): GET reads the kept target and, while the
// VM runs, the balloon's size and the guest's memory statistics; PUT sets or clears the target.

#include <algorithm>

#include <fmt/format.h>

#include "daemon/api/api_context.h"
#include "daemon/http/request_body.h"
#include "daemon/vm_json.h"

namespace corral::daemon {

void add_balloon_routes(Router& router, ApiContext& context) {
    router.add("GET", api_path("/vms/{name}/balloon"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto view = TRY(api(context.vms.balloon(params.at("name")), "name"));
                   return json_response(200, balloon_json(view.vm, view.live));
               });
    router.add(
        "PUT", api_path("/vms/{name}/balloon"),
        [&context](const HttpRequest& request, const PathParams& params) -> ApiResult<HttpResponse> {
            auto vm = TRY(api(context.inventory.get_vm(params.at("name")), "name"));
            auto body = TRY(RequestBody::parse(request.body));
            // The memory the guest keeps: at least 1 MiB, at most all of it (the balloon deflated).
            const uint64_t memory = static_cast<uint64_t>(std::max<int64_t>(1, vm.memory_mib));
            auto target = TRY(body.optional_uint("target_mib", 1, memory, "MiB, the memory the guest keeps"));
            const bool clear = TRY(body.optional_bool("clear")).value_or(false);
            if (clear && target)
                return api_fail(400, "give either target_mib or clear: true (which removes the kept target)", "clear");
            if (!target && !clear)
                return api_fail(
                    400,
                    fmt::format("target_mib is required: the memory {} keeps, from 1 to {} MiB (or clear: true)",
                                vm.name, memory),
                    "target_mib");
            TRY_VOID(body.finish());
            auto view = TRY(api(context.vms.set_balloon(vm.name, clear ? 0 : *target), "name"));
            return json_response(200, balloon_json(view.vm, view.live));
        });
}

}  // namespace corral::daemon
