#include "daemon/vm_json.h"

#include <time.h>

#include <algorithm>

#include "daemon/inventory/vm_limits_json.h"
#include "daemon/network/nic_ipv6.h"

namespace corral::daemon {

std::optional<int64_t> uptime_seconds(const std::string& started_at, std::time_t now) {
    std::tm parts{};
    const char* end = ::strptime(started_at.c_str(), "%Y-%m-%dT%H:%M:%SZ", &parts);
    if (end == nullptr || *end != '\0') return std::nullopt;
    const std::time_t started = ::timegm(&parts);
    if (started == static_cast<std::time_t>(-1)) return std::nullopt;
    // A clock stepped back since the start must not show a negative uptime.
    return std::max<int64_t>(0, static_cast<int64_t>(now - started));
}

nlohmann::json balloon_json(const inventory::VmRecord& vm, const std::optional<engine::BalloonInfo>& live) {
    constexpr uint64_t k_mib = 1024 * 1024;
    const uint64_t memory = static_cast<uint64_t>(std::max<int64_t>(0, vm.memory_mib));
    const bool kept = vm.balloon_target_mib > 0;
    // Running: what the balloon was asked for (the kept target, unless it was set before corrald
    // kept targets); down: what the next start applies.
    const uint64_t target =
        live ? live->target_bytes / k_mib : (kept ? static_cast<uint64_t>(vm.balloon_target_mib) : memory);
    nlohmann::json json = {{"memory_mib", memory},
                           {"target_mib", target},
                           {"kept", kept},
                           {"actual_mib", nullptr},
                           {"inflated_mib", nullptr},
                           {"guest_memory_free_bytes", nullptr},
                           {"guest_memory_available_bytes", nullptr},
                           {"guest_memory_total_bytes", nullptr}};
    if (!live)
        return json;
    const uint64_t actual = live->actual_bytes / k_mib;
    json["actual_mib"] = actual;
    // What the balloon holds now: memory given back to the host.
    json["inflated_mib"] = memory > actual ? memory - actual : 0;
    json["guest_memory_free_bytes"] = optional_json(live->guest_free_bytes);
    json["guest_memory_available_bytes"] = optional_json(live->guest_available_bytes);
    json["guest_memory_total_bytes"] = optional_json(live->guest_total_bytes);
    return json;
}

nlohmann::json limits_json(const inventory::VmRecord& vm) {
    const auto& limits = vm.limits;
    auto json = inventory::vm_limits_json(limits);
    // What the memory cap comes to, so nobody has to add it up.
    json["memory_max_mib"] = limits.memory_overhead_mib != 0
                                 ? nlohmann::json(vm.memory_mib + limits.memory_overhead_mib)
                                 : nlohmann::json(nullptr);
    return json;
}

nlohmann::json vm_json(const inventory::VmRecord& vm, const std::map<std::string, std::string>& subnet6_by_network) {
    nlohmann::json disks = nlohmann::json::array();
    for (const auto& disk : vm.disks)
        disks.push_back({{"pool", disk.pool}, {"volume", disk.volume}, {"readonly", disk.readonly}});
    nlohmann::json nics = nlohmann::json::array();
    for (const auto& nic : vm.nics) {
        nlohmann::json item = {{"mac", nic.mac}};
        if (!nic.network.empty()) {
            // On a managed network the bridge is the network's: what the user chose is the network.
            item["network"] = nic.network;
            item["ipv4"] = nic.ipv4.empty() ? nlohmann::json(nullptr) : nlohmann::json(nic.ipv4);
            auto subnet6 = subnet6_by_network.find(nic.network);
            std::string ipv6 = subnet6 == subnet6_by_network.end() ? "" : nic_ipv6_address(subnet6->second, nic.mac);
            item["ipv6"] = ipv6.empty() ? nlohmann::json(nullptr) : nlohmann::json(ipv6);
            item["groups"] = nic.groups;  // security groups; [] = everything passes
        } else {
            if (!nic.bridge.empty()) item["bridge"] = nic.bridge;
            if (!nic.tap.empty()) item["tap"] = nic.tap;
        }
        nics.push_back(item);
    }
    auto null_if_empty = [](const std::string& text) -> nlohmann::json {
        return text.empty() ? nlohmann::json(nullptr) : nlohmann::json(text);
    };
    const auto uptime = vm.started_at.empty() ? std::nullopt : uptime_seconds(vm.started_at, std::time(nullptr));
    return {{"name", vm.name},
            {"state", vm.state},
            {"engine", vm.engine},
            {"vcpus", vm.vcpus},
            {"memory_mib", vm.memory_mib},
            {"image", null_if_empty(vm.image)},
            {"disks", disks},
            {"nics", nics},
            {"restart_policy", vm.restart_policy},
            {"cmdline", vm.cmdline},
            {"pid", vm.pid == 0 ? nlohmann::json(nullptr) : nlohmann::json(vm.pid)},
            {"state_reason", vm.state_reason},
            {"started_at", null_if_empty(vm.started_at)},
            // The balloon target kept with the VM and applied at every start; null: none.
            {"balloon_target_mib",
             vm.balloon_target_mib > 0 ? nlohmann::json(vm.balloon_target_mib) : nlohmann::json(nullptr)},
            // The VM generation ID of its current or last run (emulated engine); null: none yet.
            {"generation_id", null_if_empty(vm.generation_id)},
            {"uptime_seconds", uptime.has_value() ? nlohmann::json(*uptime) : nlohmann::json(nullptr)},
            {"restarts", vm.restarts},
            {"last_crash", null_if_empty(vm.last_crash)},
            {"limits", limits_json(vm)},
            {"display", vm.display_width == 0 ? nlohmann::json(nullptr)
                                              : nlohmann::json{{"width", vm.display_width}, {"height", vm.display_height}}},
            {"created_at", vm.created_at},
            {"updated_at", vm.updated_at}};
}

nlohmann::json metrics_json(const VmMetrics& metrics) {
    nlohmann::json disks = nlohmann::json::array();
    for (const auto& disk : metrics.disks)
        disks.push_back({{"device", disk.device},
                         {"read_bytes", disk.read_bytes},
                         {"write_bytes", disk.write_bytes},
                         {"read_ops", disk.read_ops},
                         {"write_ops", disk.write_ops},
                         {"read_time_ns", disk.read_time_ns},
                         {"write_time_ns", disk.write_time_ns}});
    nlohmann::json nics = nlohmann::json::array();
    for (const auto& nic : metrics.nics)
        nics.push_back({{"tap", nic.tap},
                        {"rx_bytes", nic.rx_bytes},
                        {"tx_bytes", nic.tx_bytes},
                        {"rx_packets", nic.rx_packets},
                        {"tx_packets", nic.tx_packets}});
    return {{"cpu_seconds", metrics.cpu_seconds},
            {"memory_bytes", metrics.memory_bytes},
            {"vcpu_run_delay_seconds", metrics.vcpu_run_delay_seconds},
            {"cpu_throttled_seconds", metrics.cpu_throttled_seconds},
            {"guest_memory_free_bytes", optional_json(metrics.guest_memory_free_bytes)},
            {"guest_memory_available_bytes", optional_json(metrics.guest_memory_available_bytes)},
            {"guest_memory_total_bytes", optional_json(metrics.guest_memory_total_bytes)},
            {"disks", disks},
            {"nics", nics}};
}

}  // namespace corral::daemon
