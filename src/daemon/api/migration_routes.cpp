// Live migration between corralds (docs/api.md "Migrations"): the source's POST
// /vms/{name}/migrate, and the destination's /migrations that the source's corrald calls.

#include <sys/socket.h>

#include <fmt/format.h>

#include "base/log.h"
#include "base/private_file.h"
#include "base/unix_socket.h"
#include "cli/endpoint.h"
#include "daemon/api/api_context.h"
#include "daemon/disk_rules.h"
#include "daemon/http/request_body.h"
#include "daemon/migration_disk_relay.h"
#include "daemon/migration_service.h"
#include "daemon/names.h"

namespace corral::daemon {
namespace {

constexpr uint64_t k_max_downtime_ms = 60000;
constexpr uint64_t k_max_bandwidth_mib = 100000;
constexpr size_t k_max_token = 4096;
constexpr size_t k_max_ca_cert = 64 * 1024;
constexpr size_t k_max_origin = 255;
constexpr size_t k_max_pools = 16;
constexpr size_t k_max_described_disks = 64;
/// A disk's virtual size as the source describes it (what qcow2 allows: 64 TiB here).
constexpr uint64_t k_max_disk_bytes = uint64_t{64} << 40;

ApiResult<MigrationService*> service(ApiContext& context) {
    if (!context.migrations)
        return api_fail(503, "this corrald does not migrate VMs");
    return context.migrations;
}

ApiResult<HttpResponse> start_migration(const HttpRequest& request, const std::string& name, ApiContext& context) {
    auto* migrations = TRY(service(context));
    auto body = TRY(RequestBody::parse(request.body));
    MigrationTarget target;
    target.url = TRY(body.required_string("to"));
    if (auto parsed = cli::parse_remote_url(target.url); !parsed)
        return api_fail(400, fmt::format("to: {}", parsed.error().message()), "to");
    target.token = TRY(body.required_string("token"));
    if (target.token.empty() || target.token.size() > k_max_token)
        return api_fail(400, fmt::format("token must be the destination's API token (1-{} bytes)", k_max_token),
                        "token");
    if (auto fingerprint = TRY(body.optional_string("fingerprint"))) {
        auto normalized = cli::normalize_fingerprint(*fingerprint);
        if (!normalized)
            return api_fail(400, fmt::format("fingerprint: {}", normalized.error().message()), "fingerprint");
        target.fingerprint = *normalized;
    }
    target.ca_cert_pem = TRY(body.optional_string("ca_cert_pem")).value_or("");
    if (target.ca_cert_pem.size() > k_max_ca_cert ||
        (!target.ca_cert_pem.empty() && target.ca_cert_pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos))
        return api_fail(400,
                        fmt::format("ca_cert_pem must be a PEM certificate (-----BEGIN CERTIFICATE-----), at most {} "
                                    "KiB",
                                    k_max_ca_cert / 1024),
                        "ca_cert_pem");
    target.downtime_ms =
        static_cast<uint32_t>(TRY(body.optional_uint("downtime_ms", 1, k_max_downtime_ms, "ms")).value_or(300));
    target.bandwidth_mib =
        static_cast<uint32_t>(TRY(body.optional_uint("bandwidth_mib", 1, k_max_bandwidth_mib, "MiB/s")).value_or(0));
    TRY_VOID(body.finish());
    TRY(api(context.inventory.get_vm(name), "name"));
    auto task = TRY(api(migrations->start(name, std::move(target)), "name"));
    return accepted_task(task);
}

/// The destination's pre-flight and preparation: everything that could refuse the VM is
/// checked before its instance starts, so a refusal moves nothing.
ApiResult<HttpResponse> prepare_migration(const HttpRequest& request, ApiContext& context) {
    auto* migrations = TRY(service(context));
    auto body = TRY(RequestBody::parse(request.body));
    auto migration = TRY(body.optional_object("migration"));
    if (!migration)
        return api_fail(400, "migration is missing: {\"origin\": ..., \"pools\": [...]}", "migration");
    const std::string origin = TRY(migration->optional_string("origin")).value_or("");
    if (origin.size() > k_max_origin)
        return api_fail(400, fmt::format("migration.origin is at most {} bytes", k_max_origin), "migration.origin");
    const std::string generation_id = TRY(migration->optional_string("generation_id")).value_or("");
    if (!generation_id.empty() && !is_guid(generation_id))
        return api_fail(400,
                        "migration.generation_id must be the VM generation ID the guest has, a GUID "
                        "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
                        "migration.generation_id");
    const auto balloon_target_mib = TRY(migration->optional_uint("balloon_target_mib", 0, INT64_MAX, "MiB"));
    nlohmann::json identities = nlohmann::json::object();
    if (auto pools = TRY(migration->optional_objects("pools", k_max_pools))) {
        for (auto& pool : *pools) {
            auto pool_name = TRY(pool.required_string("name"));
            auto identity = TRY(pool.required_string("identity"));
            identities[pool_name] = identity;
        }
    }
    std::vector<MigrationService::DiskInfo> described;
    if (auto disks = TRY(migration->optional_objects("disks", k_max_described_disks))) {
        for (auto& disk : *disks) {
            MigrationService::DiskInfo info;
            info.pool = TRY(disk.required_string("pool"));
            info.volume = TRY(disk.required_string("volume"));
            TRY_VOID(validate_name(info.pool, "pool name", disk.path_of("pool")));
            TRY_VOID(validate_name(info.volume, "volume name", disk.path_of("volume")));
            auto size = TRY(disk.optional_uint("size_bytes", 1, k_max_disk_bytes, "bytes"));
            if (!size)
                return api_fail(400, fmt::format("{} is missing: the disk's virtual size", disk.path_of("size_bytes")),
                                disk.path_of("size_bytes"));
            info.size_bytes = *size;
            described.push_back(info);
        }
    }
    // The disks on pools that are other folders here are copied in: their empty volumes exist
    // before the definition names them, and go again if anything below refuses the VM.
    auto copies = TRY(api(migrations->create_copies(described, identities), "migration.disks"));
    auto refused = [&](ApiError error) -> ApiResult<HttpResponse> {
        migrations->delete_copies(copies);
        return std::unexpected(std::move(error));
    };
    auto defined = read_vm_definition(request, body, context);
    if (!defined)
        return refused(defined.error());
    if (auto finished = body.finish(); !finished)
        return refused(finished.error());
    inventory::VmRecord vm = *defined;
    vm.generation_id = generation_id;
    if (balloon_target_mib) {
        if (*balloon_target_mib >= static_cast<uint64_t>(vm.memory_mib))
            return refused(ApiError{
                400, "migration.balloon_target_mib",
                fmt::format("migration.balloon_target_mib must be below memory_mib ({}); 0 = none", vm.memory_mib)});
        vm.balloon_target_mib = static_cast<int64_t>(*balloon_target_mib);
    }
    if (context.inventory.get_vm(vm.name))
        return refused(
            ApiError{409, "name", fmt::format("a VM named {} already exists on {}", vm.name, context.host.hostname)});
    if (auto nics = context.host_access.check_nics(request.origin, host_nics(vm.nics)); !nics)
        return refused(nics.error());
    if (auto conflict = refuse_disk_conflict(context.inventory, context.storage, vm); !conflict)
        return refused(conflict.error());
    auto copied = api(migrations->check_shared_pools(vm, identities, origin, copies), "disks");
    if (!copied)
        return refused(copied.error());
    std::filesystem::path socket;
    auto prepared =
        api(define_vm(context, vm, {}, [&](const inventory::VmRecord& defined) -> Result<inventory::VmRecord> {
            socket = TRY(context.vms.prepare_incoming(defined, origin.empty() ? "another host" : origin, *copied));
            return defined;
        }));
    if (!prepared)
        return refused(prepared.error());
    const std::string id = migrations->add_incoming(
        prepared->name, socket, origin,
        copies.empty() ? std::filesystem::path() : VmManager::migrate_disks_socket(socket), copies);
    return json_response(201,
                         {{"id", id}, {"vm", prepared->name}, {"state", "migrating-in"}, {"copied_disks", *copied}});
}

}  // namespace

void add_migration_routes(Router& router, ApiContext& context) {
    router.add("POST", api_path("/vms/{name}/migrate"),
               [&context](const HttpRequest& request, const PathParams& params) -> ApiResult<HttpResponse> {
                   return start_migration(request, params.at("name"), context);
               });
    router.add("POST", api_path("/migrations"),
               [&context](const HttpRequest& request, const PathParams&) -> ApiResult<HttpResponse> {
                   return prepare_migration(request, context);
               });
    router.add_websocket(api_path("/migrations/{id}/stream"),
                         [&context](std::shared_ptr<WebSocketConnection> connection, const HttpRequest&,
                                    const PathParams& params) -> ApiResult<WebSocketHandlers> {
                             auto* migrations = TRY(service(context));
                             auto socket = TRY(api(migrations->take_stream(params.at("id")), "id"));
                             auto connected = connect_unix_socket(socket);
                             if (!connected) {
                                 // No stream went in: the wait for one goes on (and ends, bounded).
                                 migrations->release_stream(params.at("id"));
                                 return std::unexpected(api_error_from(connected.error()));
                             }
                             auto stream = std::move(*connected);
                             auto fd = std::make_shared<UniqueFd>(std::move(stream));
                             auto tally = std::make_shared<StreamTally>();
                             std::weak_ptr<WebSocketConnection> weak = connection;
                             WebSocketHandlers handlers;
                             handlers.on_message = [fd, tally, weak, migrations, id = params.at("id")](
                                                       std::string_view data, bool) {
                                 migrations->note_stream_data(id);
                                 if (fd->valid() && send_all(fd->get(), data)) {
                                     tally->add(data);
                                     return;
                                 }
                                 // The instance went away: the source's relay sees the close and its VM runs on.
                                 fd->reset();
                                 if (auto peer = weak.lock())
                                     peer->close();
                             };
                             // The end of the stream: the instance reads the rest and runs the guest (or, for
                             // a cut stream, fails its load and ends, which discards the VM here).
                             handlers.on_close = [fd, tally, migrations, id = params.at("id")] {
                                 log_info("migration {}: stream relayed in: {} ({})", id, tally->describe(),
                                          fd->valid() ? "to its end" : "the instance went away");
                                 if (fd->valid()) {
                                     migrations->note_stream_end(id);
                                     ::shutdown(fd->get(), SHUT_WR);
                                 }
                             };
                             return handlers;
                         });
    // One per disk the destination copies in: the source QEMU's NBD connection for its block
    // mirror, relayed both ways to the incoming instance's NBD server (which only root reaches).
    router.add_websocket(api_path("/migrations/{id}/disks"),
                         [&context](std::shared_ptr<WebSocketConnection> connection, const HttpRequest&,
                                    const PathParams& params) -> ApiResult<WebSocketHandlers> {
                             auto* migrations = TRY(service(context));
                             auto socket = TRY(api(migrations->take_disk_stream(params.at("id")), "id"));
                             auto connected = connect_unix_socket(socket);
                             if (!connected)
                                 return std::unexpected(api_error_from(connected.error()));
                             auto handlers = relay_disk_stream(std::move(*connected), connection,
                                                               fmt::format("migration {}", params.at("id")));
                             // A disk's copy is traffic too: while it runs the memory stream is idle.
                             handlers.on_message = [relay = std::move(handlers.on_message), migrations,
                                                    id = params.at("id")](std::string_view data, bool binary) {
                                 migrations->note_stream_data(id);
                                 relay(data, binary);
                             };
                             return handlers;
                         });
    router.add("POST", api_path("/migrations/{id}/finish"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto* migrations = TRY(service(context));
                   auto vm = TRY(api(migrations->finish(params.at("id")), "id"));
                   return json_response(200, {{"vm", vm}, {"state", "running"}});
               });
    router.add("DELETE", api_path("/migrations/{id}"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto* migrations = TRY(service(context));
                   auto vm = TRY(api(migrations->abort(params.at("id")), "id"));
                   return json_response(200, {{"discarded", vm}});
               });
}

}  // namespace corral::daemon
