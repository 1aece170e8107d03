#include <sys/stat.h>

#include <fmt/format.h>

#include "base/size.h"
#include "daemon/api/api_context.h"
#include "daemon/http/request_body.h"
#include "daemon/names.h"

namespace corral::daemon {

using storage::ImageFormat;
using storage::pool::CloneMode;
using storage::pool::VolumeInfo;

nlohmann::json volume_json(const std::string& pool, const VolumeInfo& info, ApiContext& context) {
    nlohmann::json backing = nullptr;
    if (info.backing) {
        backing = info.backing->volume ? nlohmann::json{{"pool", pool}, {"volume", *info.backing->volume}}
                                       : nlohmann::json{{"path", info.backing->path}};
    }
    auto users = context.inventory.vms_using_volume(pool, info.name);
    return {{"pool", pool},
            {"name", info.name},
            {"format", info.format == ImageFormat::Raw ? "raw" : "qcow2"},
            {"size_bytes", info.size_bytes},
            {"allocation_bytes", info.allocation_bytes},
            {"path", info.path},
            {"backing", backing},
            {"used_by", users ? *users : std::vector<std::string>{}},
            {"clones", info.clones}};
}

namespace {

ApiResult<nlohmann::json> pool_json(const inventory::PoolRecord& record, ApiContext& context) {
    auto* pool = TRY(api(context.storage.pool(record.name)));
    auto usage = TRY(api(pool->usage()));
    auto volumes = TRY(api(pool->list_volumes()));
    return nlohmann::json{{"name", record.name},
                          {"driver", record.driver},
                          {"path", record.path},
                          {"capacity_bytes", usage.capacity_bytes},
                          {"allocation_bytes", usage.allocation_bytes},
                          {"available_bytes", usage.available_bytes},
                          {"volumes", volumes.size()},
                          {"created_at", record.created_at}};
}

ApiResult<uint64_t> parse_size_field(RequestBody& body, bool required) {
    auto bytes = TRY(body.optional_uint("size_bytes", 1, UINT64_MAX / 2, "bytes"));
    auto text = TRY(body.optional_string("size"));
    if (bytes && text) return api_fail(400, "give size_bytes or size, not both", "size");
    if (text) {
        auto parsed = corral::parse_size(*text);
        if (!parsed || *parsed == 0)
            return api_fail(400, fmt::format("size '{}' is not a size like 512M, 10G or 1073741824", *text), "size");
        return *parsed;
    }
    if (bytes) return *bytes;
    if (required) return api_fail(400, "size_bytes (or size, like \"10G\") is required", "size_bytes");
    return 0;
}

/// A long copy (full clone, import, export) as a task whose progress is the copy's; publishes
/// volume.created for what it made. `task cancel` stops it: the pool's copy then fails with
/// ECANCELED and removes the file it was writing.
ApiResult<HttpResponse> copy_task(ApiContext& context, const std::string& kind, const std::string& target,
                                  std::function<Result<std::string>(const storage::Progress&)> copy) {
    auto task = TRY(api(context.tasks.start(
        kind, target,
        [&context, kind, target, copy](TaskProgress& progress) -> Result<std::string> {
            auto message = TRY(copy([&](uint64_t done, uint64_t total) {
                if (progress.cancelled()) return storage::Proceed::Cancel;
                progress.report(total ? double(done) / double(total) : 1.0,
                                fmt::format("copied {} of {} MiB", done >> 20, total >> 20));
                return storage::Proceed::Continue;
            }));
            if (kind != "volume.export") context.events.publish({{"kind", "volume.created"}, {"target", target}});
            return message;
        },
        Cancellable::Yes)));
    return accepted_task(task);
}

/// A linked clone stands on its source, so a source some VM attaches writable would change under
/// it (docs/api.md "Disks": a volume with linked clones is never attached writable).
ApiResult<void> refuse_writable_base(ApiContext& context, const std::string& pool, const std::string& volume) {
    for (const auto& user : TRY(api(context.inventory.vms_using_volume(pool, volume)))) {
        auto vm = context.inventory.get_vm(user);
        if (!vm) continue;
        for (const auto& disk : vm->disks) {
            if (disk.pool == pool && disk.volume == volume && !disk.readonly)
                return api_fail(409,
                                fmt::format("volume {} is attached writable to VM {}: a linked clone would stand on a "
                                            "volume that changes; make a full clone (\"linked\": false), or attach "
                                            "it readonly there first",
                                            volume, user),
                                "from.volume");
        }
    }
    return {};
}

ApiResult<HttpResponse> create_volume(const HttpRequest& request, ApiContext& context) {
    auto body = TRY(RequestBody::parse(request.body));
    std::string pool_name = TRY(body.optional_string("pool")).value_or(StorageService::k_default_pool);
    std::string name = TRY(body.required_string("name"));
    TRY_VOID(validate_name(name, "volume name", "name"));
    auto* pool = TRY(api(context.storage.pool(pool_name), "pool"));
    if (auto file = TRY(body.optional_string("import"))) {
        TRY_VOID(body.finish());
        if (file->empty() || (*file)[0] != '/')
            return api_fail(400, fmt::format("import '{}' must be the absolute path of an image file on the host", *file),
                            "import");
        // Over TCP: opened now, beneath an allowed folder; the task reads that very file.
        auto source = TRY(context.host_access.open_file(request.origin, "import", *file, HostFileKind::Image));
        if (!std::filesystem::is_regular_file(source.path))
            return api_fail(400, fmt::format("import '{}' must be the absolute path of an image file on the host", *file),
                            "import");
        if (pool->volume_info(name)) return api_fail(409, fmt::format("a volume named {} already exists", name), "name");
        return copy_task(context, "volume.import", pool_name + "/" + name,
                         [pool, name, file = *file, source](const storage::Progress& progress) -> Result<std::string> {
                             auto info = TRY(pool->import_volume(name, source.path, progress));
                             return fmt::format("imported {} as {} ({} MiB, qcow2)", file, name, info.size_bytes >> 20);
                         });
    }
    auto from = TRY(body.optional_object("from"));
    auto linked = TRY(body.optional_bool("linked"));
    auto format_text = TRY(body.optional_string("format"));
    if (!from) {
        uint64_t size = TRY(parse_size_field(body, true));
        std::string format = format_text.value_or("qcow2");
        if (format != "qcow2" && format != "raw")
            return api_fail(400, fmt::format("format '{}' is not one of qcow2, raw", format), "format");
        TRY_VOID(body.finish());
        auto info = TRY(api(pool->create_volume(name, size, format == "raw" ? ImageFormat::Raw : ImageFormat::Qcow2),
                            "name"));
        context.events.publish({{"kind", "volume.created"}, {"target", pool_name + "/" + name}});
        return json_response(201, volume_json(pool_name, info, context));
    }
    std::string source_pool = TRY(from->optional_string("pool")).value_or(pool_name);
    // A linked clone is a qcow2 over its source's file, so it lives in the source's pool; a full
    // copy (what `qm move-disk` does) may go to any pool.
    if (source_pool != pool_name && linked.value_or(true))
        return api_fail(400,
                        "a linked clone must be in its source's pool (from.pool must equal pool); a full copy "
                        "(\"linked\": false) may go to another pool",
                        "from.pool");
    std::string source = TRY(from->required_string("volume"));
    TRY_VOID(validate_name(source, "volume name", "from.volume"));
    if (format_text) return api_fail(400, "format cannot be chosen for a clone", "format");
    TRY_VOID(body.finish());
    auto* source_store = TRY(api(context.storage.pool(source_pool), "from.pool"));
    TRY(api(source_store->volume_info(source), "from.volume"));
    if (source_store != pool) {
        const std::string file = TRY(api(source_store->volume_file(source), "from.volume"));
        return copy_task(context, "volume.clone", pool_name + "/" + name,
                         [pool, file, source_pool, source, name](const storage::Progress& progress) -> Result<std::string> {
                             auto info = TRY(pool->import_volume(name, file, progress));
                             return fmt::format("{} is a full copy of {}/{} ({} MiB)", name, source_pool, source,
                                                info.size_bytes >> 20);
                         });
    }
    if (linked.value_or(true)) {
        TRY_VOID(refuse_writable_base(context, pool_name, source));
        auto info = TRY(api(pool->clone_volume(source, name, CloneMode::Linked, {}), "name"));
        context.events.publish({{"kind", "volume.created"}, {"target", pool_name + "/" + name}});
        return json_response(201, volume_json(pool_name, info, context));
    }
    // A full copy can take minutes: a task with progress.
    return copy_task(context, "volume.clone", pool_name + "/" + name,
                     [pool, source, name](const storage::Progress& progress) -> Result<std::string> {
                         auto info = TRY(pool->clone_volume(source, name, CloneMode::Full, progress));
                         return fmt::format("{} is a full copy of {} ({} MiB)", name, source, info.size_bytes >> 20);
                     });
}

/// A pool adopts every NAME.qcow2 / NAME.raw in its folder as a volume, and a qcow2's header names
/// its backing file: an export of crafted bytes into a pool's folder would become a volume standing
/// on any host file. So no export goes into a pool's folder.
ApiResult<void> refuse_pool_folder(ApiContext& context, const std::filesystem::path& folder, const std::string& file) {
    struct stat target {};
    if (::stat(folder.c_str(), &target) != 0) return {};  // the export itself reports a missing folder
    for (const auto& record : TRY(api(context.inventory.list_pools()))) {
        struct stat pool {};
        if (::stat(record.path.c_str(), &pool) == 0 && pool.st_dev == target.st_dev && pool.st_ino == target.st_ino)
            return api_fail(409,
                            fmt::format("path '{}' is in the folder of pool {}, whose files are its volumes: export "
                                        "elsewhere, or clone the volume into that pool",
                                        file, record.name),
                            "path");
    }
    return {};
}

ApiResult<HttpResponse> export_volume(const HttpRequest& request, const PathParams& params, ApiContext& context) {
    auto body = TRY(RequestBody::parse(request.body));
    auto file = TRY(body.required_string("path"));
    auto format = TRY(body.optional_string("format")).value_or("qcow2");
    TRY_VOID(body.finish());
    if (format != "qcow2" && format != "raw")
        return api_fail(400, fmt::format("format '{}' is not one of qcow2, raw", format), "format");
    if (file.empty() || file[0] != '/')
        return api_fail(400, fmt::format("path '{}' must be an absolute file path in an existing folder", file), "path");
    // Over TCP the folder is opened now, beneath an allowed folder, and the file is made in it.
    auto target = TRY(context.host_access.new_file(request.origin, "path", file));
    std::error_code error;
    if (!std::filesystem::is_directory(std::filesystem::path(target.path).parent_path(), error))
        return api_fail(400, fmt::format("path '{}' must be an absolute file path in an existing folder", file), "path");
    if (std::filesystem::symlink_status(target.path, error).type() != std::filesystem::file_type::not_found)
        return api_fail(409, fmt::format("{} already exists", file), "path");
    TRY_VOID(refuse_pool_folder(context, std::filesystem::path(target.path).parent_path(), file));
    auto* pool = TRY(api(context.storage.pool(params.at("pool")), "pool"));
    std::string name = params.at("name");
    TRY(api(pool->volume_info(name), "name"));
    ImageFormat image_format = format == "raw" ? ImageFormat::Raw : ImageFormat::Qcow2;
    return copy_task(context, "volume.export", params.at("pool") + "/" + name,
                     [pool, name, file, target, image_format, format](const storage::Progress& progress)
                         -> Result<std::string> {
                         TRY_VOID(pool->export_volume(name, target.path, image_format, progress));
                         return fmt::format("exported {} to {} ({})", name, file, format);
                     });
}

}  // namespace

void add_storage_routes(Router& router, ApiContext& context) {
    router.add("GET", api_path("/pools"), [&context](const HttpRequest&, const PathParams&) -> ApiResult<HttpResponse> {
        auto pools = TRY(api(context.inventory.list_pools()));
        nlohmann::json list = nlohmann::json::array();
        for (const auto& record : pools) list.push_back(TRY(pool_json(record, context)));
        return json_response(200, list);
    });
    router.add("GET", api_path("/pools/{pool}"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto record = TRY(api(context.inventory.get_pool(params.at("pool")), "pool"));
                   return json_response(200, TRY(pool_json(record, context)));
               });
    router.add("POST", api_path("/pools"), [&context](const HttpRequest& request, const PathParams&) -> ApiResult<HttpResponse> {
        auto body = TRY(RequestBody::parse(request.body));
        auto name = TRY(body.required_string("name"));
        TRY_VOID(validate_name(name, "pool name", "name"));
        auto driver = TRY(body.optional_string("driver")).value_or("dir");
        if (driver != "dir") return api_fail(400, fmt::format("driver '{}' is not one of: dir", driver), "driver");
        auto path = TRY(body.required_string("path"));
        TRY_VOID(body.finish());
        if (path.empty() || path[0] != '/')
            return api_fail(400, fmt::format("path '{}' must be an absolute folder path", path), "path");
        if (context.inventory.get_pool(name)) return api_fail(409, fmt::format("a pool named {} already exists", name), "name");
        auto folder = TRY(context.host_access.folder(request.origin, "path", path));
        auto record = TRY(api(context.storage.create_pool(name, driver, folder), "name"));
        context.events.publish({{"kind", "pool.created"}, {"target", name}});
        return json_response(201, TRY(pool_json(record, context)));
    }, host_paths({"path"}));
    router.add("DELETE", api_path("/pools/{pool}"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   TRY(api(context.storage.delete_pool(params.at("pool")), "pool"));
                   context.events.publish({{"kind", "pool.deleted"}, {"target", params.at("pool")}});
                   return json_response(200, {{"deleted", params.at("pool")}});
               });

    router.add("GET", api_path("/volumes"), [&context](const HttpRequest& request, const PathParams&) -> ApiResult<HttpResponse> {
        std::vector<std::string> pools;
        if (auto only = request.query_or("pool"); !only.empty()) {
            TRY_VOID(validate_name(only, "pool name", "pool"));
            pools.push_back(only);
        } else {
            for (const auto& record : TRY(api(context.inventory.list_pools()))) pools.push_back(record.name);
        }
        nlohmann::json list = nlohmann::json::array();
        for (const auto& name : pools) {
            auto* pool = TRY(api(context.storage.pool(name), "pool"));
            for (const auto& info : TRY(api(pool->list_volumes()))) list.push_back(volume_json(name, info, context));
        }
        return json_response(200, list);
    });
    router.add("GET", api_path("/volumes/{pool}/{name}"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto* pool = TRY(api(context.storage.pool(params.at("pool")), "pool"));
                   auto info = TRY(api(pool->volume_info(params.at("name")), "name"));
                   return json_response(200, volume_json(params.at("pool"), info, context));
               });
    router.add("POST", api_path("/volumes"), [&context](const HttpRequest& request, const PathParams&) {
        return create_volume(request, context);
    }, host_paths({"import"}));
    router.add("POST", api_path("/volumes/{pool}/{name}/resize"),
               [&context](const HttpRequest& request, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto body = TRY(RequestBody::parse(request.body));
                   uint64_t size = TRY(parse_size_field(body, true));
                   TRY_VOID(body.finish());
                   auto* pool = TRY(api(context.storage.pool(params.at("pool")), "pool"));
                   auto users = TRY(api(context.inventory.vms_using_volume(params.at("pool"), params.at("name"))));
                   for (const auto& user : users) {
                       auto vm = context.inventory.get_vm(user);
                       if (vm && vm->state != "stopped" && vm->state != "crashed" && vm->state != "failed")
                           return api_fail(409, fmt::format("volume {} is attached to running VM {}", params.at("name"), user),
                                           "name");
                   }
                   auto info = TRY(api(pool->resize_volume(params.at("name"), size), "size_bytes"));
                   return json_response(200, volume_json(params.at("pool"), info, context));
               });
    router.add("POST", api_path("/volumes/{pool}/{name}/export"),
               [&context](const HttpRequest& request, const PathParams& params) {
                   return export_volume(request, params, context);
               }, host_paths({"path"}));
    router.add("DELETE", api_path("/volumes/{pool}/{name}"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto* pool = TRY(api(context.storage.pool(params.at("pool")), "pool"));
                   TRY(api(pool->volume_info(params.at("name")), "name"));
                   auto users = TRY(api(context.inventory.vms_using_volume(params.at("pool"), params.at("name"))));
                   if (!users.empty())
                       return api_fail(409, fmt::format("volume {} is used by VM {}", params.at("name"), users.front()),
                                       "name");
                   for (const auto& image : TRY(api(context.inventory.list_images()))) {
                       if (image.pool == params.at("pool") && image.root_volume == params.at("name"))
                           return api_fail(409,
                                           fmt::format("volume {} is the root of image {}", params.at("name"), image.name),
                                           "name");
                   }
                   TRY(api(pool->delete_volume(params.at("name")), "name"));
                   context.events.publish(
                       {{"kind", "volume.deleted"}, {"target", params.at("pool") + "/" + params.at("name")}});
                   return json_response(200, {{"deleted", params.at("name")}});
               });
}

}  // namespace corral::daemon
