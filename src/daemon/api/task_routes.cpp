#include <fmt/format.h>

#include "daemon/api/api_context.h"

namespace corral::daemon {

void add_task_routes(Router& router, ApiContext& context) {
    router.add("GET", "/api/v1/tasks", [&context](const HttpRequest&, const PathParams&) -> ApiResult<HttpResponse> {
        auto tasks = TRY(api(context.inventory.list_tasks(200)));
        nlohmann::json list = nlohmann::json::array();
        for (const auto& task : tasks) list.push_back(task_json(task));
        return json_response(200, list);
    });
    router.add("GET", "/api/v1/tasks/{id}",
               [&context](const HttpRequest& request, const PathParams& params) -> ApiResult<HttpResponse> {
                   long wait_s = 0;
                   if (auto wait = request.query_or("wait"); !wait.empty()) {
                       char* end = nullptr;
                       wait_s = std::strtol(wait.c_str(), &end, 10);
                       if (*end != '\0' || wait_s < 0 || wait_s > 300)
                           return api_fail(400, fmt::format("wait must be whole seconds from 0 to 300, not '{}'", wait),
                                           "wait");
                   }
                   auto task = TRY(api(context.tasks.get(params.at("id"), std::chrono::seconds(wait_s)), "id"));
                   return json_response(200, task_json(task));
               });
}

}  // namespace corral::daemon
