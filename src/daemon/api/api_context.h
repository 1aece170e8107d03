#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "base/api_path.h"
#include "daemon/event_bus.h"
#include "daemon/host_access.h"
#include "daemon/image_service.h"
#include "daemon/inventory/inventory.h"
#include "daemon/network_service.h"
#include "daemon/storage_service.h"
#include "daemon/task_manager.h"
#include "daemon/vm_manager.h"
#include "daemon/http/request_body.h"
#include "daemon/http/router.h"

namespace corral::daemon {

class AlarmService;
class BackupService;
class BackupScheduler;
class StaticFiles;
class WebSessions;
class MetricsHistory;
class MigrationService;

/// What the host looks like, measured once at start (GET /host).
struct HostFacts {
    std::string hostname;
    unsigned cpus = 1;
    uint64_t memory_mib = 0;
    std::filesystem::path state_dir;
    nlohmann::json calibration;  // {"kvm", "ring0_loop_mips", "reason"}
    nlohmann::json api;          // {"unix_socket", "listen": [...], "tls_fingerprint"}
};

/// Everything the route handlers work with; owned by main().
struct ApiContext {
    inventory::Inventory& inventory;
    StorageService& storage;
    TaskManager& tasks;
    EventBus& events;
    VmManager& vms;
    ImageService& images;
    HostFacts host;
    /// What TCP clients may name on the host (corrald --allow-path, --allow-bridge, --allow-tap).
    const HostAccess& host_access;
    /// The largest image PUT /volumes/{pool}/{name}/content takes (corrald --max-upload).
    uint64_t max_upload_bytes = k_default_max_upload_bytes;
    /// Managed networks (docs/api.md "Networks"); null where no NetworkService runs (the
    /// /networks routes then answer 503).
    NetworkService* networks = nullptr;
    /// Web UI sessions and sign-in links; null where none are kept (the /session routes then answer 503).
    WebSessions* sessions = nullptr;
    /// The web UI's built files (served at / and /ui/...); null where none are served (404).
    const StaticFiles* web = nullptr;
    /// Each VM's and the host's sampled metrics over the last day; null where none are kept (503).
    MetricsHistory* metrics_history = nullptr;
    /// Backup repositories and backups (docs/api.md "Backups"); null where none are kept (503).
    BackupService* backups = nullptr;
    /// Live migrations to and from other corralds (docs/api.md "Migrations"); null where none (503).
    MigrationService* migrations = nullptr;
    /// Alarm rules and their state (docs/api.md "Alarms"); null where none are kept (503).
    AlarmService* alarms = nullptr;
    /// Backup schedules (docs/api.md "Backup schedules"); null where none run (503).
    BackupScheduler* backup_schedules = nullptr;

    static constexpr uint64_t k_default_max_upload_bytes = 1ull << 40;  // 1 TiB
};

/// Every route of the API (what corrald serves; the OpenAPI test checks the same list).
void add_all_routes(Router& router, ApiContext& context);

void add_host_routes(Router& router, ApiContext& context);
/// GET /host/doctor: misconfigurations of the host and its VMs, each with its fix (host_doctor.h).
void add_doctor_routes(Router& router, ApiContext& context);
void add_capacity_plan_routes(Router& router, ApiContext& context);
void add_vm_routes(Router& router, ApiContext& context);
void add_console_routes(Router& router, ApiContext& context);
/// A VM's snapshots (docs/api.md "Snapshots").
void add_snapshot_routes(Router& router, ApiContext& context);
void add_storage_routes(Router& router, ApiContext& context);
void add_image_routes(Router& router, ApiContext& context);
void add_task_routes(Router& router, ApiContext& context);
void add_event_routes(Router& router, ApiContext& context);
void add_metrics_routes(Router& router, ApiContext& context);
/// GET/PUT /vms/{name}/balloon (docs/api.md "Memory balloon").
void add_balloon_routes(Router& router, ApiContext& context);
void add_token_routes(Router& router, ApiContext& context);
void add_network_routes(Router& router, ApiContext& context);
/// Security groups and the groups of a VM's NICs (docs/api.md "Security groups").
void add_security_group_routes(Router& router, ApiContext& context);
/// Streaming uploads and downloads of a volume's bytes (docs/api.md "Volume content").
void add_volume_content_routes(Router& router, ApiContext& context);
/// The web UI's files and browser sessions (docs/api.md "Web UI sessions").
void add_web_routes(Router& router, ApiContext& context);
/// Backup repositories and backups of VMs (docs/api.md "Backups").
void add_backup_routes(Router& router, ApiContext& context);
/// POST /vms/{name}/migrate and the destination's /migrations (docs/api.md "Migrations").
void add_migration_routes(Router& router, ApiContext& context);

/// Reads the definition of a VM from a POST /vms body (name, vcpus, memory, image, disks, NICs,
/// engine, restart policy, cmdline, limits, display), each field checked (a 400 naming it).
ApiResult<inventory::VmRecord> read_vm_definition(const HttpRequest& request, RequestBody& body, ApiContext& context);
/// Gives NICs on managed networks their bridge, MAC and address around `store` (NetworkService).
Result<inventory::VmRecord> define_vm(ApiContext& context, const inventory::VmRecord& vm,
                                      const std::vector<inventory::NicRef>& previous,
                                      const std::function<Result<inventory::VmRecord>(const inventory::VmRecord&)>& store);
/// The NICs that name host devices (bridge or tap): only those go through the TCP allow-lists.
std::vector<inventory::NicRef> host_nics(const std::vector<inventory::NicRef>& nics);
/// Alarm rules on metrics and their state (docs/api.md "Alarms").
void add_alarm_routes(Router& router, ApiContext& context);
/// Backup schedules that corrald runs (docs/api.md "Backup schedules").
void add_backup_schedule_routes(Router& router, ApiContext& context);

/// The API's JSON for a volume of `pool` (docs/api.md "Volumes").
nlohmann::json volume_json(const std::string& pool, const storage::pool::VolumeInfo& info, ApiContext& context);

/// 202 {"task": id, "status_url": ...} for an operation that became a task.
HttpResponse accepted_task(const inventory::TaskRecord& task);

}  // namespace corral::daemon
