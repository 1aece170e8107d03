#include "vmm/config/restore_config.h"

#include <algorithm>

#include <fmt/format.h>

namespace corral::vmm {

Result<void> apply_restore_flags(VmConfig& snapshot, const VmConfig& given, std::span<const std::string> flags) {
    std::vector<std::string> mismatches;
    auto has = [&](const char* flag) { return std::find(flags.begin(), flags.end(), flag) != flags.end(); };
    auto mismatch = [&](const char* flag, const std::string& saved, const std::string& asked) {
        mismatches.push_back(fmt::format("{}: the snapshot has {}, {} given", flag, saved, asked));
    };
    if (has("--config"))
        mismatches.push_back("--config: a restored VM takes its configuration from the snapshot");
    if (has("--memory") && given.memory_bytes != snapshot.memory_bytes)
        mismatch("--memory", fmt::format("{} MiB", snapshot.memory_bytes >> 20), fmt::format("{} MiB", given.memory_bytes >> 20));
    if (has("--cpus") && given.cpus != snapshot.cpus)
        mismatch("--cpus", std::to_string(snapshot.cpus), std::to_string(given.cpus));
    if (has("--kernel") && given.kernel_path != snapshot.kernel_path)
        mismatch("--kernel", snapshot.kernel_path, given.kernel_path);
    if (has("--initrd") && given.initrd_path != snapshot.initrd_path)
        mismatch("--initrd", snapshot.initrd_path.value_or("none"), given.initrd_path.value_or("none"));
    if (has("--cmdline") && given.cmdline != snapshot.cmdline)
        mismatch("--cmdline", "'" + snapshot.cmdline + "'", "'" + given.cmdline + "'");
    if (has("--hugepages") && given.page_backing != snapshot.page_backing)
        mismatch("--hugepages", "normal pages", "hugepages");
    if (has("--rng") && given.rng != snapshot.rng) mismatch("--rng", "no virtio-rng", "--rng");
    if (has("--balloon") && given.balloon != snapshot.balloon)
        mismatch("--balloon", "no virtio-balloon", "--balloon");
    if (has("--virtio-console") && given.virtio_console != snapshot.virtio_console)
        mismatch("--virtio-console", "no virtio-console", "--virtio-console");
    // A snapshot never has a display (the VMM refuses to take one), so asking for one cannot match.
    for (const char* flag : {"--display", "--vnc", "--vnc-view-only"})
        if (has(flag))
            mismatches.push_back(fmt::format("{}: snapshots of VMs with a display are not supported yet", flag));
    if (has("--net")) {
        if (given.nets.size() != snapshot.nets.size()) {
            mismatch("--net", fmt::format("{} NICs", snapshot.nets.size()), fmt::format("{}", given.nets.size()));
        } else {
            for (size_t i = 0; i < given.nets.size(); ++i)
                if (given.nets[i].mac != snapshot.nets[i].mac)
                    mismatch("--net", fmt::format("NIC {} with MAC {}", i, format_mac(snapshot.nets[i].mac)),
                             format_mac(given.nets[i].mac));
        }
    }
    if (has("--disk")) {
        if (given.disks.size() != snapshot.disks.size()) {
            mismatch("--disk", fmt::format("{} disks", snapshot.disks.size()), fmt::format("{}", given.disks.size()));
        } else {
            for (size_t i = 0; i < given.disks.size(); ++i)
                if (given.disks[i].read_only != snapshot.disks[i].read_only)
                    mismatch("--disk", fmt::format("disk {} {}", i, snapshot.disks[i].read_only ? "read-only" : "writable"),
                             given.disks[i].read_only ? "read-only" : "writable");
        }
    }
    if (!mismatches.empty()) {
        std::string list;
        for (const auto& line : mismatches) list += (list.empty() ? "" : "; ") + line;
        return fail(ErrorKind::Invalid, "the flags do not match the snapshot's configuration: " + list);
    }
    if (has("--net")) snapshot.nets = given.nets;
    if (has("--disk")) snapshot.disks = given.disks;
    if (has("--on-reboot")) snapshot.on_reboot = given.on_reboot;
    if (has("--shutdown-timeout")) snapshot.shutdown_timeout_seconds = given.shutdown_timeout_seconds;
    return {};
}

}  // namespace corral::vmm
