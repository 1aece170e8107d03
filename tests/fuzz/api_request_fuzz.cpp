// libFuzzer target for corrald's API: a request (route, path parameters, query, headers, body)
// goes through bearer authentication (as on a TCP listener) and Router::handle with every
// route of the real API on a real (temporary) inventory and storage. Whatever the bytes, the
// answer must be an HTTP status with a body that is valid JSON (UTF-8 included), and no
// exception may reach the router's last line (a 500 "internal error (request id ...)").
//
// Input: byte 0 picks the route (255: the first text line names it, "METHOD /pattern", so that
// seeds stay on their route when routes are added), byte 1 the origin (bit 0: TLS + bearer
// check); then text lines: the value for the route's {parameters}, the query string, header
// lines "Name: value" until an empty line, and the rest is the body.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "daemon/alarm_service.h"
#include "daemon/api/api_context.h"
#include "daemon/backup_scheduler.h"
#include "daemon/backup_service.h"
#include "daemon/host_access.h"
#include "daemon/http/bearer_auth.h"
#include "daemon/inventory/sqlite_inventory.h"
#include "daemon/metrics_history.h"
#include "daemon/migration_service.h"
#include "daemon/web/web_sessions.h"
#include "fuzz_check.h"

namespace {

using namespace corral::daemon;

/// The daemon's parts, made once: a request may create pools, volumes, VMs and tasks.
struct Daemon {
    Daemon() : dir(std::filesystem::temp_directory_path() / ("api-request-fuzz-" + std::to_string(::getpid()))) {
        std::filesystem::create_directories(dir);
        inventory = std::move(*corral::inventory::SqliteInventory::open((dir / "inventory.db").string()));
        events = std::make_unique<EventBus>();
        tasks = std::make_unique<TaskManager>(*inventory, *events);
        storage = std::make_unique<StorageService>(*inventory, dir);
        (void)storage->ensure_default_pool();
        (void)storage->pool("default").value()->create_volume("vol1", 1 << 20, corral::storage::ImageFormat::Qcow2);
        // No guest-image tool and no engines: an image build or a VM start fails in its task.
        images = std::make_unique<ImageService>(*inventory, *storage, dir, dir / "no-guest-image");
        vms = std::make_unique<VmManager>(*inventory, *storage, *tasks, *events, VmManager::Engines{}, "emulated",
                                          dir / "run");
        HostFacts host;
        host.cpus = 2;
        host.memory_mib = 1024;
        context = std::make_unique<ApiContext>(ApiContext{*inventory, *storage, *tasks, *events, *vms, *images, host, host_access});
        // The services behind the later routes, as corrald's main() makes them, minus their
        // threads (no schedule runs, no metrics are sampled). Networks stay out: creating one
        // changes the host's bridges and nftables.
        backups = std::make_unique<BackupService>(dir, *inventory, *storage, *vms);
        migrations = std::make_unique<MigrationService>(*vms, *storage, *tasks, "fuzzhost", dir / "run");
        schedules = std::make_unique<BackupScheduler>(dir, *backups, *tasks);
        alarms = std::make_unique<AlarmService>(dir, *events, host.cpus);
        (void)alarms->load();
        history = std::make_unique<MetricsHistory>(
            HistoryTiers{}, [](double) { return std::vector<std::pair<std::string, std::optional<MetricsSample>>>(); },
            [](double) { return std::optional<MetricsSample>(); });
        context->backups = backups.get();
        context->migrations = migrations.get();
        context->backup_schedules = schedules.get();
        context->alarms = alarms.get();
        context->metrics_history = history.get();
        context->sessions = &sessions;
        add_all_routes(router, *context);
        routes = router.routes();
    }
    ~Daemon() {
        tasks->stop();  // before the services its tasks use
        schedules.reset();
        migrations.reset();
        backups.reset();
        vms.reset();
        tasks.reset();  // joins the tasks' threads
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
    }

    std::filesystem::path dir;
    HostAccess host_access;  // nothing allowed over TCP, as corrald without --allow-*
    std::unique_ptr<corral::inventory::Inventory> inventory;
    std::unique_ptr<EventBus> events;
    std::unique_ptr<TaskManager> tasks;
    std::unique_ptr<StorageService> storage;
    std::unique_ptr<ImageService> images;
    std::unique_ptr<VmManager> vms;
    std::unique_ptr<ApiContext> context;
    std::unique_ptr<BackupService> backups;
    std::unique_ptr<MigrationService> migrations;
    std::unique_ptr<BackupScheduler> schedules;
    std::unique_ptr<AlarmService> alarms;
    std::unique_ptr<MetricsHistory> history;
    WebSessions sessions{std::chrono::hours(1)};
    Router router;
    std::vector<std::pair<std::string, std::string>> routes;
    BearerAuth auth{[](std::string_view secret) -> corral::Result<std::optional<std::string>> {
                        if (secret == "corral_good") return std::optional<std::string>("ci");
                        return std::optional<std::string>();
                    },
                    nullptr};
};

Daemon& daemon_instance() {
    static Daemon daemon;
    return daemon;
}

/// The next line of `text` from `at` (without its '\n').
std::string next_line(const std::string& text, size_t& at) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(at, end - at);
    at = std::min(text.size(), end + 1);
    return line;
}

void check_json_answer(const HttpResponse& response) {
    FUZZ_CHECK(response.status >= 100 && response.status <= 599);
    if (response.content_type != "application/json") return;
    // Strict parsing: throws (and so aborts the run) on invalid JSON or invalid UTF-8.
    auto body = nlohmann::json::parse(response.body);
    if (response.status >= 400) {
        FUZZ_CHECK(body.contains("error") && body["error"]["status"] == response.status);
        const std::string message = body["error"]["message"];
        // The router's last line: an exception escaped a handler.
        FUZZ_CHECK(message.rfind("internal error (request id", 0) != 0);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    Daemon& daemon = daemon_instance();
    const bool tls = data[1] & 1;
    std::string text(reinterpret_cast<const char*>(data + 2), size - 2);
    size_t at = 0;
    std::pair<std::string, std::string> route;
    if (data[0] == 255) {
        std::string named = next_line(text, at);
        auto found = std::find_if(daemon.routes.begin(), daemon.routes.end(), [&](const auto& candidate) {
            return candidate.first + " " + candidate.second == named;
        });
        if (found == daemon.routes.end())
            return 0;
        route = *found;
    } else {
        route = daemon.routes[data[0] % daemon.routes.size()];
    }
    const auto& [method, pattern] = route;
    std::string param = next_line(text, at);
    std::string query = next_line(text, at);

    HttpRequest request;
    request.method = method == "WEBSOCKET" ? "GET" : method;
    std::string path;
    for (size_t i = 0; i < pattern.size();) {
        if (pattern[i] == '{') {
            path += param;
            i = pattern.find('}', i) + 1;
        } else {
            path += pattern[i++];
        }
    }
    request.target = query.empty() ? path : path + "?" + query;
    if (!parse_target(request.target, request.path, request.query)) return 0;  // the server answers 400 itself
    while (at < text.size()) {
        std::string line = next_line(text, at);
        if (line.empty()) break;
        size_t colon = line.find(':');
        std::string name = line.substr(0, colon);
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        request.headers[name] = colon == std::string::npos ? "" : line.substr(colon + 1);
    }
    request.body = text.substr(at);
    // Host paths in bodies (pool, import and export paths, image files) would make the target
    // create and read files anywhere: '/' never reaches the daemon, so every path is relative
    // and refused. What is fuzzed is the reading of the body, not the file system.
    for (auto& c : request.body)
        if (c == '/') c = '_';
    request.origin = tls ? Origin::Tls : Origin::UnixSocket;
    if (tls) {
        if (auto refusal = daemon.auth.check(request)) {
            check_json_answer(*refusal);
            return 0;
        }
    }
    check_json_answer(daemon.router.handle(request));
    return 0;
}
