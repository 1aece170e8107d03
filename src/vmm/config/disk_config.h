#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "base/result.h"

namespace corral::vmm {

/// The image format of a disk; Probe reads the image's header (qcow2 magic, else raw).
enum class DiskFormat { Probe, Raw, Qcow2 };

/// One virtio-blk disk (--disk, repeatable; the guest sees them as /dev/vda, /dev/vdb, ... in
/// order). Plain values; the image is opened when the VM is built.
struct DiskConfig {
    std::string path;
    bool read_only = false;
    std::string serial;  // GET_ID / /sys/block/vdX/serial; at most 20 bytes
    DiskFormat format = DiskFormat::Probe;
    uint64_t bytes_per_second = 0;  // 0: unlimited
    uint64_t ops_per_second = 0;    // 0: unlimited

    bool operator==(const DiskConfig&) const = default;
};

constexpr size_t k_max_disk_serial = 20;

/// Parses one `--disk` value: "path=FILE[,readonly=on|off][,serial=S][,format=raw|qcow2]
/// [,bps=N][,iops=N]". Errors name --disk and the bad key or value.
Result<DiskConfig> parse_disk_option(std::string_view text);
/// One entry of the JSON "disks" array: {"path": FILE, "readonly": bool, "serial": S,
/// "format": "raw"|"qcow2", "bps": N, "iops": N}; only "path" is required.
Result<DiskConfig> disk_config_from_json(const nlohmann::json& entry, size_t index);
nlohmann::json disk_config_to_json(const DiskConfig& config);

}  // namespace corral::vmm
