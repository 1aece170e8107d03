#include <optional>
#include <tuple>

#include <fmt/format.h>

#include "daemon/api/api_context.h"
#include "daemon/http/request_body.h"
#include "daemon/names.h"

namespace corral::daemon {
namespace {

nlohmann::json image_json(const inventory::ImageRecord& image) {
    return {{"name", image.name},       {"pool", image.pool},     {"kernel", image.kernel},
            {"initrd", image.initrd},   {"root_volume", image.root_volume}, {"cmdline", image.cmdline},
            {"description", image.description}, {"created_at", image.created_at}};
}

ApiResult<HttpResponse> create_image(const HttpRequest& request, ApiContext& context) {
    auto body = TRY(RequestBody::parse(request.body));
    auto name = TRY(body.required_string("name"));
    TRY_VOID(validate_name(name, "image name", "name"));
    auto pool = TRY(body.optional_string("pool")).value_or(StorageService::k_default_pool);
    auto kernel = TRY(body.optional_string("kernel"));
    auto initrd = TRY(body.optional_string("initrd"));
    auto root = TRY(body.optional_string("root"));
    auto cmdline = TRY(body.optional_string("cmdline"));
    auto description = TRY(body.optional_string("description"));
    TRY_VOID(body.finish());
    if (context.inventory.get_image(name)) return api_fail(409, fmt::format("an image named {} already exists", name), "name");
    TRY(api(context.storage.pool(pool), "pool"));
    bool from_files = kernel || root;
    // The images corrald builds from Debian packages itself: each has its recipe.
    const bool desktop = name == "desktop";
    if (!from_files && name != "default" && !desktop)
        return api_fail(400,
                        fmt::format("image {}: give kernel and root (files on this host) to import it; only 'default' "
                                    "and 'desktop' can be built from Debian packages",
                                    name),
                        "kernel");
    if (from_files && (!kernel || !root))
        return api_fail(400, "an imported image needs both kernel and root", kernel ? "root" : "kernel");
    ImageSources sources;
    std::vector<HostFile> opened;  // kept open until the task has copied them
    if (from_files) {
        sources = {*kernel, initrd.value_or(""), *root, cmdline.value_or(ImageService::k_default_cmdline),
                   description.value_or("")};
        using Part = std::tuple<const char*, std::optional<std::string>, std::filesystem::path*, HostFileKind>;
        for (const auto& [field, path, into, kind] : {Part{"kernel", kernel, &sources.kernel, HostFileKind::Plain},
                                                      Part{"initrd", initrd, &sources.initrd, HostFileKind::Plain},
                                                      Part{"root", root, &sources.root, HostFileKind::Image}}) {
            if (!path) continue;
            if (path->empty() || (*path)[0] != '/')
                return api_fail(400, fmt::format("{} '{}' must be the absolute path of a file on the host", field, *path),
                                field);
            // Over TCP: opened now, beneath an allowed folder; the task copies that very file.
            auto file = TRY(context.host_access.open_file(request.origin, field, *path, kind));
            if (!std::filesystem::is_regular_file(file.path))
                return api_fail(400, fmt::format("{} '{}' must be the absolute path of a file on the host", field, *path),
                                field);
            *into = file.path;
            opened.push_back(std::move(file));
        }
    }
    auto task = TRY(api(context.tasks.start(
        "image.prepare", name,
        [&context, name, pool, from_files, desktop, sources, opened](TaskProgress& progress) -> Result<std::string> {
            auto report = [&progress](double fraction, const std::string& message) {
                if (progress.cancelled()) return storage::Proceed::Cancel;
                progress.report(fraction, message);
                return storage::Proceed::Continue;
            };
            auto image = from_files ? context.images.import(name, pool, sources, report)
                         : desktop  ? context.images.prepare_desktop(name, pool, report)
                                    : context.images.prepare_default(name, pool, report);
            if (!image) return fail(image.error());
            context.events.publish({{"kind", "image.created"}, {"target", name}});
            return fmt::format("image {} is ready (root volume {}/{})", name, image->pool, image->root_volume);
        },
        // An import copies files and can stop half-way; the default image's build (a script
        // fetching Debian packages) cannot.
        from_files ? Cancellable::Yes : Cancellable::No)));
    return accepted_task(task);
}

}  // namespace

void add_image_routes(Router& router, ApiContext& context) {
    router.add("GET", api_path("/images"), [&context](const HttpRequest&, const PathParams&) -> ApiResult<HttpResponse> {
        nlohmann::json list = nlohmann::json::array();
        for (const auto& image : TRY(api(context.inventory.list_images()))) list.push_back(image_json(image));
        return json_response(200, list);
    });
    router.add("GET", api_path("/images/{name}"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   return json_response(200, image_json(TRY(api(context.inventory.get_image(params.at("name")), "name"))));
               });
    router.add("POST", api_path("/images"), [&context](const HttpRequest& request, const PathParams&) {
        return create_image(request, context);
    }, host_paths({"kernel", "initrd", "root"}));
    router.add("DELETE", api_path("/images/{name}"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   TRY(api(context.images.remove(params.at("name")), "name"));
                   context.events.publish({{"kind", "image.deleted"}, {"target", params.at("name")}});
                   return json_response(200, {{"deleted", params.at("name")}});
               });
}

}  // namespace corral::daemon
