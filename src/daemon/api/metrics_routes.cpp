#include <fmt/format.h>

#include "daemon/api/api_context.h"
#include "daemon/http/request_body.h"
#include "daemon/metrics_history.h"
#include "daemon/slow_diagnosis.h"
#include "daemon/vm_json.h"

namespace corral::daemon {

namespace {

struct SeriesQuery {
    double since;
    uint64_t step;
};

/// ?since=UNIX_SECONDS (default an hour ago) &step=SECONDS (default the sampling interval).
ApiResult<SeriesQuery> series_query(const HttpRequest& request, const MetricsHistory& history) {
    constexpr uint64_t k_year_2100 = 4102444800;
    auto since = TRY(query_uint(request, "since", 0, k_year_2100, "seconds since 1970-01-01 UTC"));
    auto step = TRY(query_uint(request, "step", 1, 86400, "seconds"));
    return SeriesQuery{since ? static_cast<double>(*since) : unix_now() - 3600,
                       step.value_or(static_cast<uint64_t>(history.tiers().interval.count()))};
}

/// The "why is it slow" verdicts over the last minutes of `vm`'s history.
nlohmann::json diagnosis_of(const ApiContext& context, const MetricsHistory& history,
                            const inventory::VmRecord& vm) {
    SlowContext slow{vm.name, context.host.cpus, 0, vm.limits.cpu_max_percent};
    if (auto vms = context.inventory.list_vms())
        for (const auto& each : *vms)
            if (each.state == "running" || each.state == "paused")
                slow.running_vcpus += static_cast<unsigned>(std::max(0, each.vcpus));
    auto recent = history.vm_series(vm.name, unix_now() - slow_thresholds::k_window_seconds,
                                    static_cast<uint64_t>(history.tiers().interval.count()));
    return diagnose_slowness(recent, slow);
}

ApiResult<MetricsHistory*> history_of(ApiContext& context) {
    if (!context.metrics_history) return api_fail(503, "this corrald keeps no metrics history");
    return context.metrics_history;
}

}  // namespace

void add_metrics_routes(Router& router, ApiContext& context) {
    router.add("GET", api_path("/vms/{name}/metrics"),
               [&context](const HttpRequest& request, const PathParams& params) -> ApiResult<HttpResponse> {
                   const std::string& name = params.at("name");
                   // With ?since or ?step: the history (docs/api.md "Metrics history").
                   if (request.query.contains("since") || request.query.contains("step")) {
                       MetricsHistory* history = TRY(history_of(context));
                       auto query = TRY(series_query(request, *history));
                       auto vm = TRY(api(context.inventory.get_vm(name), "name"));
                       auto series = history->vm_series(name, query.since, query.step);
                       series["vm"] = name;
                       series["diagnosis"] = diagnosis_of(context, *history, vm);
                       return json_response(200, series);
                   }
                   auto metrics = TRY(api(context.vms.metrics(name), "name"));
                   return json_response(200, metrics_json(metrics));
               });
    router.add("GET", api_path("/host/metrics"),
               [&context](const HttpRequest& request, const PathParams&) -> ApiResult<HttpResponse> {
                   MetricsHistory* history = TRY(history_of(context));
                   auto query = TRY(series_query(request, *history));
                   auto series = history->host_series(query.since, query.step);
                   series["cpus"] = context.host.cpus;
                   series["memory_total_bytes"] = context.host.memory_mib * 1024 * 1024;
                   return json_response(200, series);
               });
    // Prometheus text exposition format 0.0.4: HELP/TYPE once per metric family.
    router.add("GET", "/metrics", [&context](const HttpRequest&, const PathParams&) -> ApiResult<HttpResponse> {
        auto vms = TRY(api(context.inventory.list_vms()));
        std::string up, cpu, memory, run_delay, throttled, disk_read, disk_write, net_rx, net_tx;
        std::string disk_reads, disk_writes, disk_read_time, disk_write_time;
        std::string guest_free, guest_available, guest_total;
        for (const auto& vm : vms) {
            bool running = vm.state == "running" || vm.state == "paused";
            up += fmt::format("corral_vm_up{{vm=\"{}\",state=\"{}\"}} {}\n", vm.name, vm.state, running ? 1 : 0);
            if (!running) continue;
            auto metrics = context.vms.metrics(vm.name);
            if (!metrics) continue;
            cpu += fmt::format("corral_vm_cpu_seconds_total{{vm=\"{}\"}} {:.2f}\n", vm.name, metrics->cpu_seconds);
            memory += fmt::format("corral_vm_memory_bytes{{vm=\"{}\"}} {}\n", vm.name, metrics->memory_bytes);
            run_delay += fmt::format("corral_vm_vcpu_run_delay_seconds_total{{vm=\"{}\"}} {:.3f}\n", vm.name,
                                     metrics->vcpu_run_delay_seconds);
            throttled += fmt::format("corral_vm_cpu_throttled_seconds_total{{vm=\"{}\"}} {:.3f}\n", vm.name,
                                     metrics->cpu_throttled_seconds);
            // The guest's own view of its memory (balloon statistics), once it reported them.
            auto guest = [&](std::string& samples, const char* name, const std::optional<uint64_t>& value) {
                if (value)
                    samples += fmt::format("{}{{vm=\"{}\"}} {}\n", name, vm.name, *value);
            };
            guest(guest_free, "corral_vm_guest_memory_free_bytes", metrics->guest_memory_free_bytes);
            guest(guest_available, "corral_vm_guest_memory_available_bytes", metrics->guest_memory_available_bytes);
            guest(guest_total, "corral_vm_guest_memory_total_bytes", metrics->guest_memory_total_bytes);
            for (const auto& disk : metrics->disks) {
                disk_read += fmt::format("corral_vm_disk_read_bytes_total{{vm=\"{}\",disk=\"{}\"}} {}\n", vm.name,
                                         disk.device, disk.read_bytes);
                disk_write += fmt::format("corral_vm_disk_write_bytes_total{{vm=\"{}\",disk=\"{}\"}} {}\n", vm.name,
                                          disk.device, disk.write_bytes);
                const auto labels = fmt::format("{{vm=\"{}\",disk=\"{}\"}}", vm.name, disk.device);
                disk_reads += fmt::format("corral_vm_disk_reads_total{} {}\n", labels, disk.read_ops);
                disk_writes += fmt::format("corral_vm_disk_writes_total{} {}\n", labels, disk.write_ops);
                disk_read_time += fmt::format("corral_vm_disk_read_seconds_total{} {:.6f}\n", labels,
                                              static_cast<double>(disk.read_time_ns) / 1e9);
                disk_write_time += fmt::format("corral_vm_disk_write_seconds_total{} {:.6f}\n", labels,
                                               static_cast<double>(disk.write_time_ns) / 1e9);
            }
            for (const auto& nic : metrics->nics) {
                net_rx += fmt::format("corral_vm_net_rx_bytes_total{{vm=\"{}\",nic=\"{}\"}} {}\n", vm.name, nic.tap,
                                      nic.rx_bytes);
                net_tx += fmt::format("corral_vm_net_tx_bytes_total{{vm=\"{}\",nic=\"{}\"}} {}\n", vm.name, nic.tap,
                                      nic.tx_bytes);
            }
        }
        std::string text;
        auto family = [&text](const char* name, const char* type, const char* help, const std::string& samples) {
            text += fmt::format("# HELP {} {}\n# TYPE {} {}\n{}", name, help, name, type, samples);
        };
        family("corral_vm_up", "gauge", "1 when the VM has a running process", up);
        family("corral_vm_cpu_seconds_total", "counter", "CPU time of the VM process", cpu);
        family("corral_vm_memory_bytes", "gauge", "resident memory of the VM process", memory);
        family("corral_vm_vcpu_run_delay_seconds_total", "counter",
               "time the VM's vCPU threads were ready to run but waited for a host CPU", run_delay);
        family("corral_vm_cpu_throttled_seconds_total", "counter", "time the VM was held back by its CPU cap",
               throttled);
        family("corral_vm_guest_memory_free_bytes", "gauge", "the guest's free memory, as it reports it", guest_free);
        family("corral_vm_guest_memory_available_bytes", "gauge", "the guest's available memory, as it reports it",
               guest_available);
        family("corral_vm_guest_memory_total_bytes", "gauge", "the guest's total memory, as it reports it",
               guest_total);
        family("corral_vm_disk_read_bytes_total", "counter", "bytes the guest read from a disk", disk_read);
        family("corral_vm_disk_write_bytes_total", "counter", "bytes the guest wrote to a disk", disk_write);
        // As node_exporter's node_disk_*: latency is rate(..._seconds_total) / rate(..._total).
        family("corral_vm_disk_reads_total", "counter", "reads the guest's disk completed", disk_reads);
        family("corral_vm_disk_writes_total", "counter", "writes the guest's disk completed", disk_writes);
        family("corral_vm_disk_read_seconds_total", "counter", "time the disk took to serve the guest's reads",
               disk_read_time);
        family("corral_vm_disk_write_seconds_total", "counter", "time the disk took to serve the guest's writes",
               disk_write_time);
        family("corral_vm_net_rx_bytes_total", "counter", "bytes the guest received on a NIC", net_rx);
        family("corral_vm_net_tx_bytes_total", "counter", "bytes the guest sent on a NIC", net_tx);
        family("corral_host_cpus", "gauge", "CPUs of the host", fmt::format("corral_host_cpus {}\n", context.host.cpus));
        family("corral_host_memory_bytes", "gauge", "memory of the host",
               fmt::format("corral_host_memory_bytes {}\n", context.host.memory_mib * 1024 * 1024));
        family("corral_vms", "gauge", "VMs defined on this host", fmt::format("corral_vms {}\n", vms.size()));
        HttpResponse response;
        response.content_type = "text/plain; version=0.0.4";
        response.body = std::move(text);
        return response;
    });
}

}  // namespace corral::daemon
