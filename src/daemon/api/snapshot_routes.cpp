// /vms/{name}/snapshots (docs/api.md "Snapshots"): the HTTP side of VmManager's snapshots.

#include <fmt/format.h>

#include "daemon/api/api_context.h"
#include "daemon/http/request_body.h"
#include "daemon/names.h"

namespace corral::daemon {
namespace {

constexpr size_t k_max_description = 1024;

nlohmann::json snapshot_json(const inventory::SnapshotRecord& snapshot) {
    return {{"vm", snapshot.vm},
            {"name", snapshot.name},
            {"description", snapshot.description},
            {"kind", snapshot.kind},
            {"engine", snapshot.engine},
            {"status", snapshot.status},
            {"size_bytes", snapshot.size_bytes},
            {"vcpus", snapshot.vcpus},
            {"memory_mib", snapshot.memory_mib},
            {"created_at", snapshot.created_at},
            {"parent", snapshot.parent.empty() ? nlohmann::json(nullptr) : nlohmann::json(snapshot.parent)},
            {"current", snapshot.current}};
}

ApiResult<HttpResponse> create_snapshot(const HttpRequest& request, const std::string& vm, ApiContext& context) {
    auto body = TRY(RequestBody::parse(request.body));
    auto name = TRY(body.required_string("name"));
    TRY_VOID(validate_name(name, "snapshot name", "name"));
    auto description = TRY(body.optional_string("description")).value_or("");
    if (description.size() > k_max_description)
        return api_fail(400, fmt::format("description is {} bytes; at most {}", description.size(), k_max_description),
                        "description");
    auto disk_only = TRY(body.optional_bool("disk_only")).value_or(false);
    TRY_VOID(body.finish());
    TRY(api(context.inventory.get_vm(vm)));
    auto [task, snapshot] = TRY(api(context.vms.snapshot(vm, name, description, disk_only), "name"));
    auto json = snapshot_json(snapshot);
    json["task"] = task.id;
    json["status_url"] = api_path(fmt::format("/tasks/{}", task.id));
    auto response = json_response(202, json);
    response.headers.emplace_back("Location", api_path(fmt::format("/vms/{}/snapshots/{}", vm, name)));
    return response;
}

}  // namespace

void add_snapshot_routes(Router& router, ApiContext& context) {
    router.add("GET", api_path("/vms/{name}/snapshots"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   TRY(api(context.inventory.get_vm(params.at("name")), "name"));
                   auto snapshots = TRY(api(context.inventory.list_snapshots(params.at("name"))));
                   nlohmann::json list = nlohmann::json::array();
                   for (const auto& snapshot : snapshots) list.push_back(snapshot_json(snapshot));
                   return json_response(200, list);
               });
    router.add("POST", api_path("/vms/{name}/snapshots"),
               [&context](const HttpRequest& request, const PathParams& params) {
                   return create_snapshot(request, params.at("name"), context);
               });
    router.add("GET", api_path("/vms/{name}/snapshots/{snapshot}"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   TRY(api(context.inventory.get_vm(params.at("name")), "name"));
                   auto snapshot =
                       TRY(api(context.inventory.get_snapshot(params.at("name"), params.at("snapshot")), "snapshot"));
                   return json_response(200, snapshot_json(snapshot));
               });
    router.add("DELETE", api_path("/vms/{name}/snapshots/{snapshot}"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   TRY(api(context.inventory.get_vm(params.at("name")), "name"));
                   TRY(api(context.vms.delete_snapshot(params.at("name"), params.at("snapshot")), "snapshot"));
                   return json_response(200, {{"deleted", params.at("snapshot")}, {"vm", params.at("name")}});
               });
    router.add("POST", api_path("/vms/{name}/snapshots/{snapshot}/restore"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   TRY(api(context.inventory.get_vm(params.at("name")), "name"));
                   auto task =
                       TRY(api(context.vms.restore_snapshot(params.at("name"), params.at("snapshot")), "snapshot"));
                   return accepted_task(task);
               });
}

}  // namespace corral::daemon
