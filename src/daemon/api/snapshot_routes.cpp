// /vms/{name}/snapshots (docs/api.md "Snapshots"): the HTTP side of VmManager's snapshots.

#include <fmt/format.h>

#include "daemon/api/api_context.h"
#include "daemon/http/request_body.h"
#include "daemon/names.h"
#include "daemon/network/nic_ipv6.h"
#include "daemon/vm_json.h"

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

/// POST /vms/{vm}/snapshots/{snapshot}/clone {"name": NEW}: a new VM started from the snapshot
/// (VmManager::clone_from_snapshot). Its NICs are the source's on the same bridges and networks
/// with new MACs, taps and addresses; a NIC on a named host tap cannot be shared and is refused.
ApiResult<HttpResponse> clone_snapshot(const HttpRequest& request, const std::string& vm, const std::string& snapshot,
                                       ApiContext& context) {
    auto body = TRY(RequestBody::parse(request.body));
    auto name = TRY(body.required_string("name"));
    TRY_VOID(validate_name(name, "VM name", "name"));
    TRY_VOID(refuse_reserved_vm_name(name, "name"));
    TRY_VOID(body.finish());
    auto source = TRY(api(context.inventory.get_vm(vm), "vm"));
    TRY(api(context.inventory.get_snapshot(vm, snapshot), "snapshot"));
    if (context.inventory.get_vm(name))
        return api_fail(409, fmt::format("a VM named {} already exists", name), "name");
    inventory::VmRecord clone;
    clone.name = name;
    for (size_t i = 0; i < source.nics.size(); ++i) {
        auto nic = source.nics[i];
        if (nic.network.empty() && nic.bridge.empty())
            return api_fail(409,
                            fmt::format("nics[{}] of {} is the host tap {}: a clone cannot share it; give {} a bridge "
                                        "or network NIC (corral vm edit) to clone it",
                                        i, vm, nic.tap, vm),
                            "nics");
        // The same bridge or network; everything that identifies the NIC is the clone's own.
        nic.mac.clear();
        nic.tap.clear();
        nic.ipv4.clear();
        if (!nic.network.empty())
            nic.bridge.clear();
        clone.nics.push_back(nic);
    }
    std::vector<inventory::NicRef> host_side;
    for (const auto& nic : clone.nics)
        if (nic.network.empty())
            host_side.push_back(nic);
    TRY_VOID(context.host_access.check_nics(request.origin, host_side));
    std::optional<inventory::TaskRecord> task;
    auto store = [&](const inventory::VmRecord& defined) -> Result<inventory::VmRecord> {
        auto [started, record] = TRY(context.vms.clone_from_snapshot(vm, snapshot, defined));
        task = started;
        return record;
    };
    auto created = context.networks ? context.networks->define_vm(clone, {}, store) : store(clone);
    const std::string field = !created && created.error().errno_value() == EEXIST ? "name" : "snapshot";
    auto record = TRY(api(std::move(created), field));
    auto json = vm_json(record, subnet6_by_network(context.inventory));
    json["task"] = task->id;
    json["status_url"] = api_path(fmt::format("/tasks/{}", task->id));
    auto response = json_response(202, json);
    response.headers.emplace_back("Location", api_path(fmt::format("/vms/{}", name)));
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
    router.add("POST", api_path("/vms/{name}/snapshots/{snapshot}/clone"),
               [&context](const HttpRequest& request, const PathParams& params) {
                   return clone_snapshot(request, params.at("name"), params.at("snapshot"), context);
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
