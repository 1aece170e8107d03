// /backup-repositories and /backups (docs/api.md "Backups"): the HTTP side of BackupService.

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <filesystem>

#include "daemon/api/api_context.h"
#include "daemon/backup_service.h"
#include "daemon/http/request_body.h"
#include "daemon/names.h"
#include "daemon/ready_marker.h"

namespace corral::daemon {
namespace {

namespace backup = storage::backup;

std::string iso_time(int64_t seconds) {
    std::tm tm{};
    const time_t t = static_cast<time_t>(seconds);
    gmtime_r(&t, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

nlohmann::json nullable(const std::string& text) {
    return text.empty() ? nlohmann::json() : nlohmann::json(text);
}

nlohmann::json repo_json(const BackupRepoRecord& record, BackupService& service) {
    nlohmann::json out = {{"name", record.name},
                          {"path", record.path},
                          {"key", nullable(record.key_file)},
                          {"encrypted", !record.key_file.empty()},
                          {"created_at", record.created_at}};
    // A repository that cannot be opened now (its folder gone, its key moved) is still listed,
    // with why.
    if (auto repo = service.open(record)) {
        auto backups = backup::list_backups(*repo, std::nullopt);
        out["backups"] = backups ? nlohmann::json(backups->size()) : nlohmann::json();
        out["chunk_size"] = repo->chunk_size();
        out["error"] = backups ? nlohmann::json() : nlohmann::json(backups.error().message());
    } else {
        out["backups"] = nullptr;
        out["chunk_size"] = nullptr;
        out["error"] = repo.error().message();
    }
    return out;
}

nlohmann::json backup_json(const backup::BackupRecord& record, const std::string& repository) {
    return {{"id", record.id},
            {"vm", record.vm},
            {"repository", repository},
            {"created_at", iso_time(record.created)},
            {"disk_count", record.disks},
            {"logical_bytes", record.logical_bytes},
            {"chunks", record.chunks},
            {"new_chunks", record.new_chunks},
            {"new_bytes", record.new_bytes},
            // What the backup read of the disks: backups made before incrementals have mode null.
            {"read",
             {{"mode", nullable(record.read_mode)},
              {"bytes", record.read_bytes},
              {"base", nullable(record.base)},
              {"full_reason", nullable(record.full_reason)}}},
            {"verify",
             {{"state", nullable(record.verify_state)},
              {"at", record.verified_at ? nlohmann::json(iso_time(record.verified_at)) : nlohmann::json()},
              {"error", nullable(record.verify_error)}}},
            {"boot",
             {{"state", nullable(record.boot_state)},
              {"at", record.booted_at ? nlohmann::json(iso_time(record.booted_at)) : nlohmann::json()},
              {"seconds", record.boot_state == "passed" ? nlohmann::json(record.boot_seconds) : nlohmann::json()},
              {"error", nullable(record.boot_error)}}}};
}

ApiResult<BackupService*> service_of(ApiContext& context) {
    if (!context.backups)
        return api_fail(503, "backups are not available in this corrald");
    return context.backups;
}

/// An absolute host path in `field` (corrald's working folder means nothing to a client).
ApiResult<void> absolute(const std::string& field, const std::string& path) {
    if (path.empty() || path[0] != '/')
        return api_fail(400, fmt::format("{} '{}' must be an absolute path on the host", field, path), field);
    return {};
}

ApiResult<HttpResponse> add_repo(const HttpRequest& request, ApiContext& context) {
    auto* service = TRY(service_of(context));
    auto body = TRY(RequestBody::parse(request.body));
    BackupRepoRecord record;
    record.name = TRY(body.required_string("name"));
    TRY_VOID(validate_name(record.name, "repository name", "name"));
    record.path = TRY(body.required_string("path"));
    record.key_file = TRY(body.optional_string("key")).value_or("");
    const bool create = TRY(body.optional_bool("create")).value_or(false);
    TRY_VOID(body.finish());
    TRY_VOID(absolute("path", record.path));
    if (service->get_repo(record.name))
        return api_fail(409, fmt::format("a backup repository named {} already exists", record.name), "name");
    // Over TCP the router has checked both paths lie inside an allowed folder; the key must be
    // a regular file there (opened beneath it), and a new repository's folder is made there.
    if (!record.key_file.empty()) {
        TRY_VOID(absolute("key", record.key_file));
        auto key = TRY(context.host_access.open_file(request.origin, "key", record.key_file, HostFileKind::Plain));
        if (!std::filesystem::is_regular_file(key.path))
            return api_fail(404,
                            fmt::format("key '{}' is not a file (a key is a file of 32 to 4096 random bytes: "
                                        "head -c 32 /dev/urandom >FILE)",
                                        record.key_file),
                            "key");
    }
    if (!create && !std::filesystem::is_directory(record.path))
        return api_fail(
            404,
            fmt::format("path '{}' is not a folder (to make a new repository there: \"create\": true)", record.path),
            "path");
    // Over TCP no component of the folder may be a symlink: the repository keeps this path, and
    // backups write beneath it. A new one gets a new or empty folder made beneath the allowed one.
    if (create) {
        record.path = TRY(context.host_access.folder(request.origin, "path", record.path));
    } else if (request.origin != Origin::UnixSocket) {
        std::error_code ec;
        const auto real = std::filesystem::canonical(record.path, ec);
        auto given = std::filesystem::path(record.path).lexically_normal();
        if (!given.has_filename())
            given = given.parent_path();  // "/srv/repo/" is "/srv/repo"
        if (ec || real != given)
            return api_fail(
                403, fmt::format("path '{}' passes through a symlink, which is refused over TCP", record.path), "path");
    }
    auto made = service->add_repo(record, create ? RepoAdd::Create : RepoAdd::Existing);
    if (!made) {
        // What fails here is the folder or the key the client named (not a repository, a wrong
        // key, a folder that is not empty): theirs to fix, not an internal error.
        auto error = api_error_from(made.error(), "path");
        if (error.status >= 500)
            error.status = 400;
        return std::unexpected(error);
    }
    auto added = std::move(*made);
    auto response = json_response(201, repo_json(added, *service));
    response.headers.emplace_back("Location", api_path(fmt::format("/backup-repositories/{}", added.name)));
    return response;
}

std::optional<std::string> query(const HttpRequest& request, const std::string& name) {
    auto it = request.query.find(name);
    if (it == request.query.end())
        return std::nullopt;
    return it->second;
}

ApiResult<HttpResponse> list_all(const HttpRequest& request, ApiContext& context) {
    auto* service = TRY(service_of(context));
    auto vm = query(request, "vm");
    auto repo = query(request, "repository");
    std::vector<BackupRepoRecord> repos;
    if (repo)
        repos.push_back(TRY(api(service->get_repo(*repo), "repository")));
    else
        repos = TRY(api(service->list_repos()));
    std::vector<std::pair<backup::BackupRecord, std::string>> found;
    for (const auto& r : repos) {
        auto opened = service->open(r);
        if (!opened) {
            if (repo)
                return std::unexpected(api_error_from(opened.error(), "repository"));
            continue;  // GET /backup-repositories says why it cannot be opened
        }
        for (auto& b : TRY(api(backup::list_backups(*opened, vm))))
            found.emplace_back(std::move(b), r.name);
    }
    std::stable_sort(found.begin(), found.end(),
                     [](const auto& a, const auto& b) { return a.first.created < b.first.created; });
    nlohmann::json list = nlohmann::json::array();
    for (const auto& [b, r] : found)
        list.push_back(backup_json(b, r));
    return json_response(200, list);
}

ApiResult<HttpResponse> start_backup(const HttpRequest& request, ApiContext& context) {
    auto* service = TRY(service_of(context));
    auto body = TRY(RequestBody::parse(request.body));
    const std::string vm = TRY(body.required_string("vm"));
    TRY_VOID(validate_name(vm, "VM name", "vm"));
    auto repo_name = TRY(body.optional_string("repository"));
    TRY_VOID(body.finish());
    TRY(api(context.inventory.get_vm(vm), "vm"));
    auto repo = TRY(api(service->choose(repo_name, "repository"), "repository"));
    TRY_VOID(api(service->check_backup(vm), "vm"));
    auto task = TRY(api(context.tasks.start(
        "backup.create", vm,
        [service, repo, vm](TaskProgress& progress) -> Result<std::string> {
            return TRY(service->run_backup(repo, vm, progress)).message;
        },
        Cancellable::Yes)));
    return accepted_task(task);
}

ApiResult<HttpResponse> show_one(const HttpRequest& request, const std::string& id, ApiContext& context) {
    auto* service = TRY(service_of(context));
    auto repo = TRY(api(service->locate(id, query(request, "repository")), "backup"));
    auto opened = TRY(api(service->open(repo), "repository"));
    auto [record, index] = TRY(api(backup::show_backup(opened, id), "backup"));
    auto out = backup_json(record, repo.name);
    auto config = nlohmann::json::parse(index.config_json, nullptr, false);
    out["config"] = config.is_discarded() ? nlohmann::json() : config;
    out["disks"] = nlohmann::json::array();
    for (const auto& d : index.disks) {
        const auto zero = std::count(d.chunks.begin(), d.chunks.end(), std::string());
        out["disks"].push_back(
            {{"name", d.name}, {"virtual_size", d.virtual_size}, {"chunks", d.chunks.size()}, {"zero_chunks", zero}});
    }
    return json_response(200, out);
}

ApiResult<HttpResponse> restore(const HttpRequest& request, const std::string& id, ApiContext& context) {
    auto* service = TRY(service_of(context));
    auto body = TRY(RequestBody::parse(request.body));
    const std::string as = TRY(body.required_string("as"));
    TRY_VOID(validate_name(as, "VM name", "as"));
    TRY_VOID(refuse_reserved_vm_name(as, "as"));
    TRY_VOID(body.finish());
    auto repo = TRY(api(service->locate(id, query(request, "repository")), "backup"));
    auto planned = service->plan_restore(repo, id, as);
    // A name (of the VM or a volume) that is taken is the new name's fault; the rest the backup's.
    if (!planned)
        return std::unexpected(
            api_error_from(planned.error(), planned.error().errno_value() == EEXIST ? "as" : "backup"));
    auto plan = std::move(*planned);
    auto task = TRY(api(context.tasks.start(
        "backup.restore", as,
        [service, repo, plan](TaskProgress& progress) { return service->run_restore(repo, plan, progress); },
        Cancellable::Yes)));
    return accepted_task(task);
}

/// POST /backup-repositories/{name}/prune: the policy's keeps (per VM, or one VM's), the
/// backups kept and removed; with dry_run nothing is removed. Metadata only, so not a task.
ApiResult<HttpResponse> prune(const HttpRequest& request, const std::string& name, ApiContext& context) {
    constexpr uint64_t k_max_keep = 100000;
    auto* service = TRY(service_of(context));
    auto body = TRY(RequestBody::parse(request.body));
    backup::PruneOptions options;
    options.vm = TRY(body.optional_string("vm"));
    if (options.vm) TRY_VOID(validate_name(*options.vm, "VM name", "vm"));
    auto keep = [&](const char* field, int& into) -> ApiResult<void> {
        into = static_cast<int>(TRY(body.optional_uint(field, 0, k_max_keep, "backups")).value_or(0));
        return {};
    };
    TRY_VOID(keep("keep_last", options.keep_last));
    TRY_VOID(keep("keep_daily", options.keep_daily));
    TRY_VOID(keep("keep_weekly", options.keep_weekly));
    TRY_VOID(keep("keep_monthly", options.keep_monthly));
    options.dry_run = TRY(body.optional_bool("dry_run")).value_or(false);
    TRY_VOID(body.finish());
    if (options.keep_last + options.keep_daily + options.keep_weekly + options.keep_monthly == 0)
        return api_fail(400,
                        "a prune keeps something: give at least one of keep_last, keep_daily, keep_weekly, "
                        "keep_monthly above 0",
                        "keep_last");
    auto repo = TRY(api(service->get_repo(name), "name"));
    auto result = TRY(api(service->prune(repo, options), "name"));
    return json_response(200, {{"repository", repo.name},
                               {"dry_run", options.dry_run},
                               {"kept", result.kept},
                               {"removed", result.removed}});
}

/// POST /backups/{id}/verify: re-reads every chunk, or with "boot" proves the backup boots
/// (BackupService::run_boot_check). Both are tasks.
ApiResult<HttpResponse> verify(const HttpRequest& request, const std::string& id, ApiContext& context) {
    auto* service = TRY(service_of(context));
    auto body = TRY(RequestBody::parse(request.body));
    const bool boot = TRY(body.optional_bool("boot")).value_or(false);
    BootCheckOptions options;
    const auto timeout = TRY(body.optional_uint("timeout_s", BootCheckOptions::k_min_timeout.count(),
                                                BootCheckOptions::k_max_timeout.count(), "seconds"));
    const auto ready = TRY(body.optional_string("ready"));
    TRY_VOID(body.finish());
    if (!boot && (timeout || ready))
        return api_fail(
            400, fmt::format("{} applies to a boot check only (\"boot\": true)", timeout ? "timeout_s" : "ready"),
            timeout ? "timeout_s" : "ready");
    if (timeout)
        options.timeout = std::chrono::seconds(*timeout);
    if (ready) {
        // Checked here so that a bad pattern is a 400, not a failed task.
        if (auto checked = ReadyMarker::make(*ready); !checked)
            return api_fail(400, checked.error().message(), "ready");
        options.ready = *ready;
    }
    auto repo = TRY(api(service->locate(id, query(request, "repository")), "backup"));
    if (!boot) {
        auto task = TRY(api(context.tasks.start(
            "backup.verify", id,
            [service, repo, id](TaskProgress& progress) { return service->run_verify(repo, id, progress); },
            Cancellable::Yes)));
        return accepted_task(task);
    }
    auto task = TRY(api(context.tasks.start(
        "backup.boot-check", id,
        [service, repo, id, options](TaskProgress& progress) {
            return service->run_boot_check(repo, id, options, progress);
        },
        Cancellable::Yes)));
    return accepted_task(task);
}

}  // namespace

void add_backup_routes(Router& router, ApiContext& context) {
    router.add("GET", api_path("/backup-repositories"),
               [&context](const HttpRequest&, const PathParams&) -> ApiResult<HttpResponse> {
                   auto* service = TRY(service_of(context));
                   nlohmann::json list = nlohmann::json::array();
                   for (const auto& r : TRY(api(service->list_repos())))
                       list.push_back(repo_json(r, *service));
                   return json_response(200, list);
               });
    router.add(
        "POST", api_path("/backup-repositories"),
        [&context](const HttpRequest& request, const PathParams&) { return add_repo(request, context); },
        host_paths({"path", "key"}));
    router.add("GET", api_path("/backup-repositories/{name}"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto* service = TRY(service_of(context));
                   auto record = TRY(api(service->get_repo(params.at("name")), "name"));
                   return json_response(200, repo_json(record, *service));
               });
    router.add("DELETE", api_path("/backup-repositories/{name}"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto* service = TRY(service_of(context));
                   TRY_VOID(api(service->forget_repo(params.at("name")), "name"));
                   return json_response(200, {{"deleted", params.at("name")},
                                              {"note", "the repository's folder and backups are left in place"}});
               });
    router.add("POST", api_path("/backup-repositories/{name}/prune"),
               [&context](const HttpRequest& request, const PathParams& params) {
                   return prune(request, params.at("name"), context);
               });
    router.add("POST", api_path("/backup-repositories/{name}/gc"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto* service = TRY(service_of(context));
                   auto repo = TRY(api(service->get_repo(params.at("name")), "name"));
                   auto task = TRY(api(context.tasks.start(
                       "backup.gc", repo.name, [service, repo](TaskProgress&) { return service->run_gc(repo); },
                       Cancellable::No)));
                   return accepted_task(task);
               });
    router.add("GET", api_path("/backups"),
               [&context](const HttpRequest& request, const PathParams&) { return list_all(request, context); });
    router.add("POST", api_path("/backups"),
               [&context](const HttpRequest& request, const PathParams&) { return start_backup(request, context); });
    router.add("GET", api_path("/backups/{backup}"), [&context](const HttpRequest& request, const PathParams& params) {
        return show_one(request, params.at("backup"), context);
    });
    router.add("DELETE", api_path("/backups/{backup}"),
               [&context](const HttpRequest& request, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto* service = TRY(service_of(context));
                   const std::string& id = params.at("backup");
                   auto repo = TRY(api(service->locate(id, query(request, "repository")), "backup"));
                   auto opened = TRY(api(service->open(repo), "repository"));
                   TRY_VOID(api(backup::delete_backup(opened, id), "backup"));
                   return json_response(200, {{"deleted", id}, {"repository", repo.name}});
               });
    router.add("POST", api_path("/backups/{backup}/verify"),
               [&context](const HttpRequest& request, const PathParams& params) {
                   return verify(request, params.at("backup"), context);
               });
    router.add("POST", api_path("/backups/{backup}/restore"),
               [&context](const HttpRequest& request, const PathParams& params) {
                   return restore(request, params.at("backup"), context);
               });
}

}  // namespace corral::daemon
