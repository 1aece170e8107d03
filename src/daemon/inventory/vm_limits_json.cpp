#include "daemon/inventory/vm_limits_json.h"

namespace corral::inventory {

nlohmann::json vm_limits_json(const VmLimits& limits) {
    return {{"cpu_weight", limits.cpu_weight},
            {"cpu_max_percent", limits.cpu_max_percent},
            {"memory_overhead_mib", limits.memory_overhead_mib},
            {"io_weight", limits.io_weight},
            {"host_cpus", limits.host_cpus},
            {"vcpu_pins", limits.vcpu_pins},
            {"disk_bytes_per_s", limits.disk_bytes_per_s},
            {"disk_iops", limits.disk_iops},
            {"nic_bytes_per_s", limits.nic_bytes_per_s}};
}

VmLimits vm_limits_from_json(const nlohmann::json& object) {
    VmLimits limits;
    limits.cpu_weight = object.value("cpu_weight", 0);
    limits.cpu_max_percent = object.value("cpu_max_percent", 0);
    limits.memory_overhead_mib = object.value("memory_overhead_mib", std::int64_t{0});
    limits.io_weight = object.value("io_weight", 0);
    limits.host_cpus = object.value("host_cpus", std::string());
    limits.vcpu_pins = object.value("vcpu_pins", std::string());
    limits.disk_bytes_per_s = object.value("disk_bytes_per_s", std::uint64_t{0});
    limits.disk_iops = object.value("disk_iops", std::uint64_t{0});
    limits.nic_bytes_per_s = object.value("nic_bytes_per_s", std::uint64_t{0});
    return limits;
}

}  // namespace corral::inventory
