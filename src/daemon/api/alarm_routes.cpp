// /alarms (docs/api.md "Alarms"): the HTTP side of AlarmService.

#include <fmt/format.h>

#include "daemon/alarm_service.h"
#include "daemon/api/api_context.h"
#include "daemon/http/request_body.h"
#include "daemon/names.h"
#include "daemon/webhook_sender.h"

namespace corral::daemon {
namespace {

/// A week: longer than any condition anyone waits out before being told.
constexpr uint64_t k_max_for_seconds = 7 * 24 * 3600;

ApiResult<AlarmService*> service_of(ApiContext& context) {
    if (!context.alarms)
        return api_fail(503, "alarms are not available in this corrald");
    return context.alarms;
}

ApiResult<HttpResponse> create(const HttpRequest& request, ApiContext& context) {
    auto* service = TRY(service_of(context));
    auto body = TRY(RequestBody::parse(request.body));
    AlarmRule rule;
    rule.name = TRY(body.required_string("name"));
    TRY_VOID(validate_name(rule.name, "alarm name", "name"));
    rule.metric = TRY(body.required_string("metric"));
    rule.vm = TRY(body.optional_string("vm"));
    auto above = TRY(body.optional_number("above", "the threshold the metric must rise above"));
    auto below = TRY(body.optional_number("below", "the threshold the metric must fall below"));
    rule.for_seconds = TRY(body.optional_uint("for_seconds", 0, k_max_for_seconds, "seconds")).value_or(0);
    auto webhook = TRY(body.optional_string("webhook"));
    TRY_VOID(body.finish());

    const auto metric = find_alarm_metric(rule.metric);
    if (!metric)
        return api_fail(
            400,
            fmt::format("metric '{}' is not one an alarm can watch (allowed: {})", rule.metric, alarm_metric_names()),
            "metric");
    if (rule.vm) {
        if (metric->host)
            return api_fail(400,
                            fmt::format("vm: {} is the host's metric, measured for no VM; leave vm out, or watch a "
                                        "vm.* metric",
                                        rule.metric),
                            "vm");
        TRY_VOID(validate_name(*rule.vm, "VM name", "vm"));
        TRY(api(context.inventory.get_vm(*rule.vm), "vm"));
    }
    if (above && below)
        return api_fail(400, "give one of above or below, not both (an alarm watches one side of one threshold)",
                        "below");
    if (!above && !below)
        return api_fail(400, "above or below is required: the threshold the metric must cross, e.g. \"above\": 0.8",
                        "above");
    rule.direction = above ? AlarmDirection::Above : AlarmDirection::Below;
    rule.threshold = above ? *above : *below;
    if (webhook) {
        if (auto problem = webhook_url_problem(*webhook))
            return api_fail(400, fmt::format("webhook '{}' is not a URL corrald can call: {}", *webhook, *problem),
                            "webhook");
        TRY_VOID(context.host_access.check_webhook(request.origin, "webhook", *webhook));
        rule.webhook = *webhook;
    }
    auto made = TRY(api(service->add(rule), "name"));
    context.events.publish({{"kind", "alarm.created"}, {"target", made.name}});
    auto response = json_response(201, service->describe(made));
    response.headers.emplace_back("Location", api_path(fmt::format("/alarms/{}", made.name)));
    return response;
}

}  // namespace

void add_alarm_routes(Router& router, ApiContext& context) {
    router.add("GET", api_path("/alarms"),
               [&context](const HttpRequest&, const PathParams&) -> ApiResult<HttpResponse> {
                   auto* service = TRY(service_of(context));
                   auto list = nlohmann::json::array();
                   for (const auto& rule : service->list())
                       list.push_back(service->describe(rule));
                   return json_response(200, list);
               });
    router.add("POST", api_path("/alarms"),
               [&context](const HttpRequest& request, const PathParams&) { return create(request, context); });
    router.add("GET", api_path("/alarms/{name}"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto* service = TRY(service_of(context));
                   auto rule = service->get(params.at("name"));
                   if (!rule)
                       return api_fail(404, fmt::format("no alarm named {}", params.at("name")), "name");
                   return json_response(200, service->describe(*rule));
               });
    router.add("DELETE", api_path("/alarms/{name}"),
               [&context](const HttpRequest&, const PathParams& params) -> ApiResult<HttpResponse> {
                   auto* service = TRY(service_of(context));
                   const std::string& name = params.at("name");
                   TRY_VOID(api(service->remove(name), "name"));
                   context.events.publish({{"kind", "alarm.deleted"}, {"target", name}});
                   return json_response(200, {{"deleted", name}});
               });
}

}  // namespace corral::daemon
