// /backup-schedules (docs/api.md "Backup schedules"): the HTTP side of BackupScheduler.

#include <fmt/format.h>

#include <ctime>

#include "daemon/api/api_context.h"
#include "daemon/backup_scheduler.h"
#include "daemon/backup_service.h"
#include "daemon/http/request_body.h"
#include "daemon/names.h"

namespace corral::daemon {
namespace {

constexpr uint64_t k_max_keep = 100000;

/// Local time with its offset ("2026-12-07T02:00:00+0100"): schedules run by the host's clock.
nlohmann::json local_time(time_t t) {
    if (t == 0)
        return nullptr;
    std::tm tm{};
    localtime_r(&t, &tm);
    char text[40];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S%z", &tm);
    return text;
}

nlohmann::json nullable(const std::string& text) {
    return text.empty() ? nlohmann::json() : nlohmann::json(text);
}

nlohmann::json schedule_json(const BackupScheduleRecord& s) {
    nlohmann::json keep = nlohmann::json::object();
    for (auto [name, value] : {std::pair{"last", s.keep.keep_last}, std::pair{"daily", s.keep.keep_daily},
                               std::pair{"weekly", s.keep.keep_weekly}, std::pair{"monthly", s.keep.keep_monthly}})
        if (value > 0)
            keep[name] = value;
    return {{"id", s.id},
            {"vm", s.vm},
            {"repository", s.repository},
            {"time", time_of_day_text(s.when)},
            {"day", s.when.weekday ? nlohmann::json(weekday_name(*s.when.weekday)) : nlohmann::json()},
            {"keep", keep},
            {"verify_boot", s.verify_boot},
            {"created_at", s.created_at},
            {"next_run", local_time(s.next_run)},
            {"last_run", local_time(s.last_run)},
            {"last_result", nullable(s.last_result)},
            {"last_message", nullable(s.last_message)},
            {"last_backup", nullable(s.last_backup)}};
}

ApiResult<BackupScheduler*> scheduler_of(ApiContext& context) {
    if (!context.backup_schedules || !context.backups)
        return api_fail(503, "backup schedules are not available in this corrald");
    return context.backup_schedules;
}

ApiResult<HttpResponse> create(const HttpRequest& request, ApiContext& context) {
    auto* scheduler = TRY(scheduler_of(context));
    auto body = TRY(RequestBody::parse(request.body));
    BackupScheduleRecord record;
    record.vm = TRY(body.required_string("vm"));
    TRY_VOID(validate_name(record.vm, "VM name", "vm"));
    const std::string time = TRY(body.required_string("time"));
    const auto day = TRY(body.optional_string("day"));
    auto repository = TRY(body.optional_string("repository"));
    auto keep = [&](const char* field, int& into) -> ApiResult<void> {
        into = static_cast<int>(TRY(body.optional_uint(field, 1, k_max_keep, "backups")).value_or(0));
        return {};
    };
    TRY_VOID(keep("keep_last", record.keep.keep_last));
    TRY_VOID(keep("keep_daily", record.keep.keep_daily));
    TRY_VOID(keep("keep_weekly", record.keep.keep_weekly));
    TRY_VOID(keep("keep_monthly", record.keep.keep_monthly));
    record.verify_boot = TRY(body.optional_bool("verify_boot")).value_or(false);
    TRY_VOID(body.finish());
    auto when = parse_time_of_day(time);
    if (!when)
        return api_fail(400, fmt::format("time: {}", when.error().message()), "time");
    record.when = *when;
    if (day) {
        auto weekday = parse_weekday(*day);
        if (!weekday)
            return api_fail(400, fmt::format("day: {}", weekday.error().message()), "day");
        record.when.weekday = *weekday;
    }
    TRY(api(context.inventory.get_vm(record.vm), "vm"));
    record.repository = TRY(api(context.backups->choose(repository, "repository"), "repository")).name;
    auto made = TRY(api(scheduler->create(record)));
    auto response = json_response(201, schedule_json(made));
    response.headers.emplace_back("Location", api_path(fmt::format("/backup-schedules/{}", made.id)));
    return response;
}

}  // namespace

void add_backup_schedule_routes(Router& router, ApiContext& context) {
    router.add("GET", api_path("/backup-schedules"),
               [&context](const HttpRequest&, const PathParams&) -> ApiResult<HttpResponse> {
                   auto* scheduler = TRY(scheduler_of(context));
                   nlohmann::json list = nlohmann::json::array();
                   for (const auto& s : TRY(api(scheduler->list())))
                       list.push_back(schedule_json(s));
                   return json_response(200, list);
               });
    router.add("POST", api_path("/backup-schedules"),
               [&context](const HttpRequest& request, const PathParams&) { return create(request, context); });
    router.add("GET", api_path("/backup-schedules/{id}"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto* scheduler = TRY(scheduler_of(context));
                   return json_response(200, schedule_json(TRY(api(scheduler->get(params.at("id")), "id"))));
               });
    router.add("DELETE", api_path("/backup-schedules/{id}"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto* scheduler = TRY(scheduler_of(context));
                   TRY_VOID(api(scheduler->remove(params.at("id")), "id"));
                   return json_response(
                       200, {{"deleted", params.at("id")}, {"note", "the backups it made are left in place"}});
               });
    router.add("POST", api_path("/backup-schedules/{id}/run"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto* scheduler = TRY(scheduler_of(context));
                   auto task = TRY(api(scheduler->run_now(params.at("id")), "id"));
                   return accepted_task(task);
               });
}

}  // namespace corral::daemon
