#include "daemon/api/api_context.h"
#include "daemon/host_doctor.h"
#include "daemon/nic_plumbing.h"

namespace corral::daemon {

namespace {

/// Every check of host_doctor.h over this host and this corrald's inventory.
ApiResult<std::vector<Finding>> examine(ApiContext& context) {
    std::vector<Finding> findings;
    auto add = [&](std::vector<Finding> more) { findings.insert(findings.end(), more.begin(), more.end()); };
    const auto vms = TRY(api(context.inventory.list_vms()));
    add(check_kvm(context.host.calibration));
    add(check_nested());
    add(check_cgroups(context.vms.cgroups()));

    std::vector<PoolSpace> spaces;
    std::vector<VolumeUse> volumes;
    const auto images = TRY(api(context.inventory.list_images()));
    for (const auto& record : TRY(api(context.inventory.list_pools()))) {
        auto pool = context.storage.pool(record.name);
        if (!pool) continue;
        if (auto usage = (*pool)->usage()) spaces.push_back({record.name, usage->capacity_bytes, usage->available_bytes});
        auto listed = (*pool)->list_volumes();
        if (!listed) continue;
        for (const auto& volume : *listed) {
            auto users = context.inventory.vms_using_volume(record.name, volume.name);
            const bool image_root = std::any_of(images.begin(), images.end(), [&](const auto& image) {
                return image.pool == record.name && image.root_volume == volume.name;
            });
            volumes.push_back({record.name, volume.name, !users || !users->empty() || image_root || !volume.clones.empty()});
        }
    }
    add(check_pools(spaces));
    if (context.networks) add(check_network(context.networks->host_policy()));

    std::set<std::string> taps_in_use;
    const NicPlumbing nics;
    for (const auto& vm : vms)
        if (holds_resources(vm.state))
            for (size_t i = 0; i < vm.nics.size(); ++i) taps_in_use.insert(nics.host_tap(vm, i));
    add(check_orphan_taps(host_taps(), taps_in_use));
    add(check_orphan_run_dirs(context.host.state_dir / "run", vms));
    add(check_orphan_volumes(volumes));
    add(check_restart_policies(vms));
    const auto [policy, host] = context.vms.capacity();
    add(check_overcommit(policy, host, vms));
    add(check_clock());
    return findings;
}

}  // namespace

void add_doctor_routes(Router& router, ApiContext& context) {
    router.add("GET", api_path("/host/doctor"), [&context](const HttpRequest&, const PathParams&) -> ApiResult<HttpResponse> {
        return json_response(200, doctor_json(TRY(examine(context))));
    });
}

}  // namespace corral::daemon
