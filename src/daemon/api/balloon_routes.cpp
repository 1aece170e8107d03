// The memory balloon of a running VM (docs/api.md "Memory balloon"): GET reads its size and the
// guest's memory statistics, PUT sets the memory the guest is asked to keep.

#include <algorithm>

#include <fmt/format.h>

#include "daemon/api/api_context.h"
#include "daemon/http/request_body.h"
#include "daemon/vm_json.h"

namespace corral::daemon {

void add_balloon_routes(Router& router, ApiContext& context) {
    router.add("GET", api_path("/vms/{name}/balloon"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto vm = TRY(api(context.inventory.get_vm(params.at("name")), "name"));
                   auto info = TRY(api(context.vms.balloon(vm.name), "name"));
                   return json_response(200, balloon_json(info, vm.memory_mib));
               });
    router.add(
        "PUT", api_path("/vms/{name}/balloon"),
        [&context](const HttpRequest& request, const PathParams& params) -> ApiResult<HttpResponse> {
            auto vm = TRY(api(context.inventory.get_vm(params.at("name")), "name"));
            auto body = TRY(RequestBody::parse(request.body));
            // The memory the guest keeps: at least 1 MiB, at most all of it (the balloon deflated).
            const uint64_t memory = static_cast<uint64_t>(std::max<int64_t>(1, vm.memory_mib));
            auto target = TRY(body.optional_uint("target_mib", 1, memory, "MiB, the memory the guest keeps"));
            if (!target)
                return api_fail(
                    400, fmt::format("target_mib is required: the memory {} keeps, from 1 to {} MiB", vm.name, memory),
                    "target_mib");
            TRY_VOID(body.finish());
            auto info = TRY(api(context.vms.set_balloon(vm.name, *target), "name"));
            return json_response(200, balloon_json(info, vm.memory_mib));
        });
}

}  // namespace corral::daemon
