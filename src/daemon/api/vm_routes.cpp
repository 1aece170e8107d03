#include <algorithm>
#include <tuple>

#include <fmt/format.h>

#include "base/utf8.h"
#include "daemon/api/api_context.h"
#include "daemon/disk_rules.h"
#include "daemon/http/request_body.h"
#include "daemon/names.h"
#include "daemon/network/nic_ipv6.h"
#include "daemon/vcpu_threads.h"
#include "daemon/vm_json.h"
#include "net/persistent_tap.h"

namespace corral::daemon {
namespace {

constexpr uint64_t k_min_memory_mib = 64;
constexpr size_t k_max_cmdline = 1024;
// Rate limits: up to a TiB (or 2^40 operations) a second; a byte rate below a page a second
// could not move a single request in reasonable time.
constexpr uint64_t k_max_io_rate = 1ull << 40;
constexpr uint64_t k_min_byte_rate = 4096;

// The display sizes corral-vmm's virtio-gpu offers (contracts of issue 16): VGA up to 4K UHD.
constexpr uint64_t k_min_display_width = 640;
constexpr uint64_t k_max_display_width = 3840;
constexpr uint64_t k_min_display_height = 480;
constexpr uint64_t k_max_display_height = 2160;

constexpr size_t k_max_disks = 16;
constexpr size_t k_max_nics = 8;
constexpr size_t k_max_groups_per_nic = 16;

ApiResult<std::vector<inventory::DiskRef>> parse_disks(std::vector<JsonReader>& items, ApiContext& context) {
    std::vector<inventory::DiskRef> disks;
    for (auto& item : items) {
        inventory::DiskRef disk;
        disk.pool = TRY(item.optional_string("pool")).value_or(StorageService::k_default_pool);
        disk.volume = TRY(item.required_string("volume"));
        disk.readonly = TRY(item.optional_bool("readonly")).value_or(false);
        TRY_VOID(validate_name(disk.pool, "pool name", item.path_of("pool")));
        TRY_VOID(validate_name(disk.volume, "volume name", item.path_of("volume")));
        auto pool = context.storage.pool(disk.pool);
        if (!pool)
            return api_fail(400, fmt::format("{}: no storage pool named {}", item.path(), disk.pool),
                            item.path_of("pool"));
        if (!(*pool)->volume_info(disk.volume))
            return api_fail(400, fmt::format("{}: no volume {} in pool {}", item.path(), disk.volume, disk.pool),
                            item.path_of("volume"));
        disks.push_back(disk);
    }
    return disks;
}

/// "52:54:00:12:34:56": six lowercase hex octets, the first one's multicast bit clear.
bool is_unicast_mac(const std::string& mac) {
    auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); };
    if (mac.size() != 17) return false;
    for (size_t i = 0; i < mac.size(); ++i) {
        if (i % 3 == 2 ? mac[i] != ':' : !hex(mac[i])) return false;
    }
    // The multicast bit is the low bit of the first octet, so of its second hex digit.
    const int digit = mac[1] <= '9' ? mac[1] - '0' : mac[1] - 'a' + 10;
    return (digit & 1) == 0;
}

ApiResult<std::vector<inventory::NicRef>> parse_nics(std::vector<JsonReader>& items, ApiContext& context) {
    std::vector<inventory::NicRef> nics;
    for (auto& item : items) {
        inventory::NicRef nic;
        nic.network = TRY(item.optional_string("network")).value_or("");
        nic.bridge = TRY(item.optional_string("bridge")).value_or("");
        nic.tap = TRY(item.optional_string("tap")).value_or("");
        nic.mac = TRY(item.optional_string("mac")).value_or("");
        nic.ipv4 = TRY(item.optional_string("ipv4")).value_or("");
        nic.groups = TRY(item.optional_strings("groups", k_max_groups_per_nic)).value_or(std::vector<std::string>{});
        if (!nic.groups.empty() && nic.network.empty())
            return api_fail(400,
                            fmt::format("{}: security groups apply only to a NIC on a managed network (network)",
                                        item.path_of("groups")),
                            item.path_of("groups"));
        for (size_t g = 0; g < nic.groups.size(); ++g) {
            const std::string field = fmt::format("{}[{}]", item.path_of("groups"), g);
            if (nic.groups[g].empty() || !context.inventory.get_security_group(nic.groups[g]))
                return api_fail(400,
                                fmt::format("{}: no security group named '{}' (list them with GET "
                                            "/api/v1/security-groups)",
                                            field, nic.groups[g].substr(0, 60)),
                                field);
            for (size_t h = 0; h < g; ++h)
                if (nic.groups[h] == nic.groups[g])
                    return api_fail(400, fmt::format("{}: group {} is given twice", field, nic.groups[g]), field);
        }
        if (!nic.ipv4.empty() && nic.network.empty())
            return api_fail(400, fmt::format("{} is only for a NIC on a managed network (network)", item.path_of("ipv4")),
                            item.path_of("ipv4"));
        if (nic.network.empty() + nic.bridge.empty() + nic.tap.empty() != 2)
            return api_fail(400,
                            fmt::format("{} needs exactly one of network (a managed network), bridge (a host bridge) "
                                        "or tap (an existing tap)",
                                        item.path()),
                            item.path());
        if (!nic.network.empty() && !context.inventory.get_network(nic.network))
            return api_fail(400,
                            fmt::format("{}: no network named {} (list them with GET /api/v1/networks)",
                                        item.path_of("network"), nic.network),
                            item.path_of("network"));
        if (!nic.bridge.empty() && !net::is_bridge(nic.bridge))
            return api_fail(400, fmt::format("{}: there is no bridge named {} on this host", item.path_of("bridge"),
                                             nic.bridge),
                            item.path_of("bridge"));
        if (!nic.mac.empty()) {
            if (!is_unicast_mac(nic.mac))
                return api_fail(400, fmt::format("{} '{}' must be a unicast MAC like 52:54:00:12:34:56 (lowercase)",
                                                 item.path_of("mac"), nic.mac),
                                item.path_of("mac"));
        }
        nics.push_back(nic);
    }
    return nics;
}

}  // namespace

/// The NICs that name host devices (bridge or tap) rather than a managed network, whose bridge
/// is corrald's own: only those go through the TCP allow-lists.
std::vector<inventory::NicRef> host_nics(const std::vector<inventory::NicRef>& nics) {
    std::vector<inventory::NicRef> out;
    for (const auto& nic : nics)
        if (nic.network.empty()) out.push_back(nic);
    return out;
}

/// Gives NICs on managed networks their bridge, MAC and address around `store` (NetworkService).
Result<inventory::VmRecord> define_vm(ApiContext& context, const inventory::VmRecord& vm,
                                      const std::vector<inventory::NicRef>& previous,
                                      const std::function<Result<inventory::VmRecord>(const inventory::VmRecord&)>& store) {
    if (!context.networks) return store(vm);
    return context.networks->define_vm(vm, previous, store);
}

namespace {

ApiResult<std::string> parse_restart_policy(RequestBody& body, const std::string& fallback) {
    auto policy = TRY(body.optional_string("restart_policy")).value_or(fallback);
    if (policy != "no" && policy != "on-failure" && policy != "always")
        return api_fail(400, fmt::format("restart_policy '{}' is not one of no, on-failure, always", policy),
                        "restart_policy");
    return policy;
}

ApiResult<std::string> parse_cmdline(RequestBody& body, const std::string& fallback) {
    auto cmdline = TRY(body.optional_string("cmdline")).value_or(fallback);
    if (cmdline.size() > k_max_cmdline)
        return api_fail(400, fmt::format("cmdline is {} bytes; at most {}", cmdline.size(), k_max_cmdline), "cmdline");
    return cmdline;
}

/// The `limits` object of a create or edit (docs/api.md "Limits"): each field given replaces the
/// one in `limits`, 0 (or "" for host_cpus) clears it.
ApiResult<inventory::VmLimits> parse_limits(RequestBody& body, inventory::VmLimits limits, int vcpus,
                                            ApiContext& context) {
    auto object = TRY(body.optional_object("limits"));
    if (!object) {
        // vCPUs changed under pins that no longer fit them.
        if (!limits.vcpu_pins.empty() && std::count(limits.vcpu_pins.begin(), limits.vcpu_pins.end(), ',') + 1 != vcpus)
            return api_fail(400,
                            fmt::format("limits.vcpu_pins '{}' has one host CPU per vCPU; with vcpus {} give {} of "
                                        "them (or \"\" for none)",
                                        limits.vcpu_pins, vcpus, vcpus),
                            "limits.vcpu_pins");
        return limits;
    }
    auto& in = *object;
    if (auto weight = TRY(in.optional_uint("cpu_weight", 0, 10000, "(a relative share, 100 is the default; 0 resets it)")))
        limits.cpu_weight = static_cast<int>(*weight);
    const uint64_t max_percent = 100ull * context.host.cpus;
    if (auto percent = TRY(in.optional_uint(
            "cpu_max_percent", 0, max_percent,
            fmt::format("percent of one host CPU (this host has {}; 0 removes the cap)", context.host.cpus))))
        limits.cpu_max_percent = static_cast<int>(*percent);
    if (auto overhead = TRY(in.optional_uint("memory_overhead_mib", 0, context.host.memory_mib,
                                             "MiB above memory_mib (0 removes the memory limit)"))) {
        // Below 16 MiB not even the monitor's own code and stacks fit.
        if (*overhead != 0 && *overhead < 16)
            return api_fail(400,
                            fmt::format("{} must be 0 (no memory limit) or from 16 to {} MiB (got {})",
                                        in.path_of("memory_overhead_mib"), context.host.memory_mib, *overhead),
                            in.path_of("memory_overhead_mib"));
        limits.memory_overhead_mib = static_cast<int64_t>(*overhead);
    }
    if (auto weight = TRY(in.optional_uint("io_weight", 0, 10000, "(a relative share, 100 is the default; 0 resets it)")))
        limits.io_weight = static_cast<int>(*weight);
    if (auto cpus = TRY(in.optional_string("host_cpus"))) {
        const std::string field = in.path_of("host_cpus");
        const auto online = host_online_cpus();
        if (cpus->empty()) {
            limits.host_cpus.clear();
        } else {
            auto parsed = parse_cpu_list(*cpus);
            if (!parsed)
                return api_fail(400, fmt::format("{}: {}", field, parsed.error().message()), field);
            for (unsigned cpu : *parsed)
                if (!online.contains(cpu))
                    return api_fail(400,
                                    fmt::format("{}: CPU {} is not one of this host's CPUs ({})", field, cpu,
                                                format_cpu_list(online)),
                                    field);
            limits.host_cpus = format_cpu_list(*parsed);
        }
    }
    if (auto pins = TRY(in.optional_string("vcpu_pins"))) limits.vcpu_pins = *pins;
    if (!limits.vcpu_pins.empty()) {
        const std::string field = in.path_of("vcpu_pins");
        auto parsed = parse_vcpu_pins(limits.vcpu_pins);
        if (!parsed) return api_fail(400, fmt::format("{}: {}", field, parsed.error().message()), field);
        if (parsed->size() != static_cast<size_t>(vcpus))
            return api_fail(400,
                            fmt::format("{} '{}' names {} host CPUs for {} vCPUs: give one per vCPU, in order (or \"\" "
                                        "for none)",
                                        field, limits.vcpu_pins, parsed->size(), vcpus),
                            field);
        const auto online = host_online_cpus();
        const auto allowed = limits.host_cpus.empty() ? online : parse_cpu_list(limits.host_cpus).value_or(online);
        for (unsigned cpu : *parsed)
            if (!allowed.contains(cpu))
                return api_fail(400,
                                fmt::format("{}: CPU {} is not one of {} ({})", field, cpu,
                                            limits.host_cpus.empty() ? "this host's CPUs" : "the VM's host_cpus",
                                            format_cpu_list(allowed)),
                                field);
    }
    const auto& cgroups = context.vms.cgroups();
    for (auto [field, out] :
         {std::pair{"disk_bytes_per_s", &limits.disk_bytes_per_s}, std::pair{"disk_iops", &limits.disk_iops},
          std::pair{"nic_bytes_per_s", &limits.nic_bytes_per_s}})
        if (auto rate = TRY(
                in.optional_uint(field, 0, k_max_io_rate, "(per disk or per NIC direction; 0 removes the limit)"))) {
            if (*rate != 0 && *rate < k_min_byte_rate && std::string_view(field) != "disk_iops")
                return api_fail(400,
                                fmt::format("{} must be 0 (no limit) or from {} to {} bytes a second (got {})",
                                            in.path_of(field), k_min_byte_rate, k_max_io_rate, *rate),
                                in.path_of(field));
            *out = *rate;
        }
    if (limits.needs_cgroup() && cgroups.version == CgroupVersion::None)
        return api_fail(400, fmt::format("limits: this host has no usable cgroups to enforce them ({})", cgroups.note),
                        "limits");
    return limits;
}

/// The `display` field of a create or edit: {"width": W, "height": H} gives the VM a screen, a
/// keyboard and a pointer; null removes them. Absent keeps `display` as it is (none on a create).
ApiResult<std::pair<int, int>> parse_display(const HttpRequest& request, RequestBody& body,
                                             std::pair<int, int> display) {
    auto object = TRY(body.optional_object("display"));
    if (!object) {
        // JsonReader reads null as absent; here null means "no display", so look at the raw body
        // (already parsed strictly above, so this parse cannot fail).
        const auto raw = nlohmann::json::parse(request.body, nullptr, false);
        if (raw.is_object() && raw.contains("display") && raw["display"].is_null()) return std::pair{0, 0};
        return display;
    }
    auto width = TRY(object->optional_uint("width", k_min_display_width, k_max_display_width, "pixels"));
    auto height = TRY(object->optional_uint("height", k_min_display_height, k_max_display_height, "pixels"));
    if (!width || !height) {
        const std::string missing = object->path_of(!width ? "width" : "height");
        return api_fail(400,
                        fmt::format("{} is missing: display is {{\"width\": {}..{}, \"height\": {}..{}}} or null "
                                    "(no display)",
                                    missing, k_min_display_width, k_max_display_width, k_min_display_height,
                                    k_max_display_height),
                        missing);
    }
    return std::pair{static_cast<int>(*width), static_cast<int>(*height)};
}

}  // namespace

ApiResult<inventory::VmRecord> read_vm_definition(const HttpRequest& request, RequestBody& body, ApiContext& context) {
    inventory::VmRecord vm;
    vm.name = TRY(body.required_string("name"));
    TRY_VOID(validate_name(vm.name, "VM name", "name"));
    TRY_VOID(refuse_reserved_vm_name(vm.name, "name"));
    vm.vcpus = static_cast<int>(TRY(body.optional_uint("vcpus", 1, context.host.cpus, "(the host's CPUs)")).value_or(1));
    vm.memory_mib = static_cast<int64_t>(
        TRY(body.optional_uint("memory_mib", k_min_memory_mib, context.host.memory_mib, "MiB (the host's memory)"))
            .value_or(512));
    vm.image = TRY(body.optional_string("image")).value_or("");
    if (!vm.image.empty()) TRY_VOID(validate_name(vm.image, "image name", "image"));
    if (!vm.image.empty() && !context.inventory.get_image(vm.image))
        return api_fail(400, fmt::format("no image named {} (list them with GET /api/v1/images)", vm.image), "image");
    if (auto disks = TRY(body.optional_objects("disks", k_max_disks))) vm.disks = TRY(parse_disks(*disks, context));
    if (auto nics = TRY(body.optional_objects("nics", k_max_nics))) {
        vm.nics = TRY(parse_nics(*nics, context));
    } else if (context.networks && context.inventory.get_network("default")) {
        // No NICs named: the first one goes on the default network ("nics": [] for none).
        vm.nics.push_back({"", "", "", "default", "", {}});
    }
    TRY_VOID(context.host_access.check_nics(request.origin, host_nics(vm.nics)));
    vm.engine = TRY(body.optional_string("engine")).value_or(context.vms.default_engine());
    if (!context.vms.engines().contains(vm.engine))
        return api_fail(400, fmt::format("engine '{}' is not one of native, emulated", vm.engine), "engine");
    vm.restart_policy = TRY(parse_restart_policy(body, "no"));
    vm.cmdline = TRY(parse_cmdline(body, ""));
    vm.limits = TRY(parse_limits(body, {}, vm.vcpus, context));
    std::tie(vm.display_width, vm.display_height) = TRY(parse_display(request, body, {0, 0}));
    return vm;
}

namespace {

ApiResult<HttpResponse> create_vm(const HttpRequest& request, ApiContext& context) {
    auto body = TRY(RequestBody::parse(request.body));
    inventory::VmRecord vm = TRY(read_vm_definition(request, body, context));
    TRY_VOID(body.finish());
    if (context.inventory.get_vm(vm.name))
        return api_fail(409, fmt::format("a VM named {} already exists", vm.name), "name");
    TRY_VOID(refuse_disk_conflict(context.inventory, context.storage, vm));
    auto created = TRY(api(define_vm(context, vm, {}, [&](const inventory::VmRecord& defined) {
        return context.vms.create(defined);
    })));
    auto response = json_response(201, vm_json(created, subnet6_by_network(context.inventory)));
    response.headers.emplace_back("Location", api_path(fmt::format("/vms/{}", created.name)));
    return response;
}

ApiResult<HttpResponse> edit_vm(const HttpRequest& request, const std::string& name, ApiContext& context) {
    auto vm = TRY(api(context.inventory.get_vm(name), "name"));
    const auto nics_before = vm.nics;
    auto body = TRY(RequestBody::parse(request.body));
    if (auto vcpus = TRY(body.optional_uint("vcpus", 1, context.host.cpus, "(the host's CPUs)")))
        vm.vcpus = static_cast<int>(*vcpus);
    if (auto memory = TRY(body.optional_uint("memory_mib", k_min_memory_mib, context.host.memory_mib, "MiB")))
        vm.memory_mib = static_cast<int64_t>(*memory);
    vm.restart_policy = TRY(parse_restart_policy(body, vm.restart_policy));
    vm.cmdline = TRY(parse_cmdline(body, vm.cmdline));
    if (auto nics = TRY(body.optional_objects("nics", k_max_nics))) vm.nics = TRY(parse_nics(*nics, context));
    if (vm.nics != nics_before) TRY_VOID(context.host_access.check_nics(request.origin, host_nics(vm.nics)));
    vm.limits = TRY(parse_limits(body, vm.limits, vm.vcpus, context));
    std::tie(vm.display_width, vm.display_height) =
        TRY(parse_display(request, body, {vm.display_width, vm.display_height}));
    TRY_VOID(body.finish());
    auto stored = TRY(api(define_vm(context, vm, nics_before, [&](const inventory::VmRecord& defined) -> Result<inventory::VmRecord> {
        auto edited = TRY(context.vms.edit(defined));
        // The inventory keeps a NIC's groups apart from the record (a live change must not race
        // a state change), so new NICs' groups are stored here, before the firewall is applied.
        for (size_t i = 0; i < defined.nics.size(); ++i)
            if (i < edited.nics.size() && edited.nics[i].groups != defined.nics[i].groups)
                edited = TRY(context.inventory.set_nic_groups(edited.name, i, defined.nics[i].groups));
        return edited;
    })));
    return json_response(200, vm_json(stored, subnet6_by_network(context.inventory)));
}

ApiResult<HttpResponse> change_state(const HttpRequest& request, const std::string& name, ApiContext& context) {
    auto body = TRY(RequestBody::parse(request.body));
    auto word = TRY(body.required_string("action"));
    auto action = parse_vm_action(word);
    if (!action)
        return api_fail(400,
                        fmt::format("action '{}' is not one of start, stop, kill, pause, resume, reboot, reset", word),
                        "action");
    auto timeout = TRY(body.optional_uint("timeout", 1, 3600, "seconds")).value_or(30);
    TRY_VOID(body.finish());
    if (auto vm = context.inventory.get_vm(name); vm && *action == VmAction::Start)
        TRY_VOID(refuse_disk_conflict(context.inventory, context.storage, *vm));
    auto task = TRY(api(context.vms.act(name, *action, std::chrono::seconds(timeout)), "action"));
    return accepted_task(task);
}

}  // namespace

void add_vm_routes(Router& router, ApiContext& context) {
    router.add("GET", api_path("/vms"), [&context](const HttpRequest&, const PathParams&) -> ApiResult<HttpResponse> {
        auto vms = TRY(api(context.inventory.list_vms()));
        nlohmann::json list = nlohmann::json::array();
        const auto subnet6 = subnet6_by_network(context.inventory);
        for (const auto& vm : vms)
            list.push_back(vm_json(vm, subnet6));
        return json_response(200, list);
    });
    router.add("POST", api_path("/vms"), [&context](const HttpRequest& request, const PathParams&) {
        return create_vm(request, context);
    });
    router.add("GET", api_path("/vms/{name}"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto vm = TRY(api(context.inventory.get_vm(params.at("name")), "name"));
                   auto json = vm_json(vm, subnet6_by_network(context.inventory));
                   auto console = context.vms.console(vm.name);
                   // Guest bytes: anything at all, made valid UTF-8 before they go into JSON.
                   json["last_console"] = console ? sanitize_utf8((*console)->tail(20)) : "";
                   // A running VM's balloon and the guest's memory; null when it does not run or has none
                   // (the kept target is balloon_target_mib).
                   auto balloon = context.vms.balloon(vm.name);
                   json["balloon"] =
                       balloon && balloon->live ? balloon_json(balloon->vm, balloon->live) : nlohmann::json(nullptr);
                   return json_response(200, json);
               });
    router.add("PATCH", api_path("/vms/{name}"), [&context](const HttpRequest& request, const PathParams& params) {
        return edit_vm(request, params.at("name"), context);
    });
    router.add("DELETE", api_path("/vms/{name}"),
               [&context](const HttpRequest& request, const PathParams& params) -> ApiResult<HttpResponse> {
                   bool volumes = TRY(query_bool(request, "volumes", false));
                   auto before = context.inventory.get_vm(params.at("name"));
                   auto deleted = TRY(api(context.vms.remove(params.at("name"), volumes), "name"));
                   if (before && context.networks) context.networks->vm_removed(before->nics);
                   return json_response(200, {{"deleted", params.at("name")}, {"volumes", deleted}});
               });
    router.add("PUT", api_path("/vms/{name}/state"), [&context](const HttpRequest& request, const PathParams& params) {
        return change_state(request, params.at("name"), context);
    });
}

}  // namespace corral::daemon
