#include <fmt/format.h>

#include "daemon/api/api_context.h"
#include "daemon/http/request_body.h"

namespace corral::daemon {

void add_task_routes(Router& router, ApiContext& context) {
    router.add("GET", api_path("/tasks"), [&context](const HttpRequest&, const PathParams&) -> ApiResult<HttpResponse> {
        auto tasks = TRY(api(context.inventory.list_tasks(200)));
        nlohmann::json list = nlohmann::json::array();
        for (const auto& task : tasks) list.push_back(task_json(task));
        return json_response(200, list);
    });
    router.add("GET", api_path("/tasks/{id}"),
               [&context](const HttpRequest& request, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto wait_s = TRY(query_uint(request, "wait", 0, 300, "seconds")).value_or(0);
                   auto task = TRY(api(context.tasks.get(params.at("id"), std::chrono::seconds(wait_s)), "id"));
                   return json_response(200, task_json(task));
               });
    // Cancels a copy, import or export: 202 to follow the task (it ends "cancelled" once its
    // work stopped and removed what it made); 409 naming why for any other task or one that ended.
    router.add("POST", api_path("/tasks/{id}/cancel"),
               [&context](const HttpRequest& request, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto body = TRY(RequestBody::parse(request.body));  // no fields: {} or nothing
                   TRY_VOID(body.finish());
                   auto task = TRY(api(context.tasks.cancel(params.at("id")), "id"));
                   return accepted_task(task);
               });
}

}  // namespace corral::daemon
