#include "daemon/api/api_context.h"
#include "daemon/api/display_routes.h"

namespace corral::daemon {

void add_all_routes(Router& router, ApiContext& context) {
    router.set_host_path_check([&access = context.host_access](Origin origin, const std::string& field,
                                                               const std::string& path) {
        return access.check_path(origin, field, path);
    });
    add_host_routes(router, context);
    add_doctor_routes(router, context);
    add_capacity_plan_routes(router, context);
    add_vm_routes(router, context);
    add_console_routes(router, context);
    add_display_routes(router, context);
    add_balloon_routes(router, context);
    add_snapshot_routes(router, context);
    add_storage_routes(router, context);
    add_volume_content_routes(router, context);
    add_image_routes(router, context);
    add_task_routes(router, context);
    add_event_routes(router, context);
    add_metrics_routes(router, context);
    add_token_routes(router, context);
    add_network_routes(router, context);
    add_security_group_routes(router, context);
    add_web_routes(router, context);
    add_backup_routes(router, context);
    add_migration_routes(router, context);
    add_alarm_routes(router, context);
    add_backup_schedule_routes(router, context);
}

}  // namespace corral::daemon
