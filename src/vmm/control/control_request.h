#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace corral::vmm {

/// What a control client asked for: one typed action per request line (see control_server.h).
enum class ControlAction {
    Status,
    Pause,
    Resume,
    Shutdown,
    Stop,
    Counters,
    Reset,
    Snapshot,
    Migrate,
    Screenshot,
    Balloon,
    Limits,
    DiskSnapshot
};

/// The range of a migration's "max_bandwidth_bytes".
inline constexpr uint64_t k_min_migration_bandwidth = 1ull << 20;
inline constexpr uint64_t k_max_migration_bandwidth = 1ull << 40;

/// The most a `limits` rate may be (a TiB a second, or 2^40 operations: far past any device).
inline constexpr uint64_t k_max_io_rate = 1ull << 40;

/// The `limits` action's rates, each per disk or per NIC and direction; 0 is unlimited. The
/// action sets all three: a field left out is 0.
struct IoRateLimits {
    uint64_t disk_bytes_per_s = 0;
    uint64_t disk_ops_per_s = 0;
    uint64_t nic_bytes_per_s = 0;
};

/// disk_snapshot's "bitmap": a backup's generation change at the snapshot's instant. Every
/// writable qcow2 disk hands back the bits of its bitmaps named with `replaces` (what the guest
/// wrote since that generation began), loses them, and starts keeping the new bitmap `name`.
struct DiskSnapshotBitmap {
    std::string name;      ///< 1 to 1023 printable characters without spaces
    std::string replaces;  ///< a name prefix, 0 to 1023 printable characters (empty: none goes)
};

/// One parsed request: the action and, for those that take them, its parameters.
struct ControlRequest {
    ControlAction action = ControlAction::Status;
    /// snapshot: the folder to write ("dir", an absolute path), and whether the VM runs on
    /// afterwards ("resume", default true) or stays paused.
    std::string snapshot_dir;
    bool resume = true;
    /// migrate: where the destination listens ("to": unix:PATH or tcp:HOST:PORT), the longest
    /// pause the guest may see ("downtime_ms", 1-60000, default 300), and how long the
    /// migration may take before it is cancelled with the VM running on here ("timeout_s",
    /// 1-86400, default 600), and the most bytes a second the stream may take while the guest
    /// runs ("max_bandwidth_bytes", 1 MiB to 1 TiB; absent: as fast as the link goes).
    std::string migrate_to;
    uint32_t downtime_ms = 300;
    uint32_t timeout_s = 600;
    uint64_t max_bandwidth_bytes = 0;
    /// balloon: with "target_bytes" (the memory the guest should keep, at most its RAM) sets the
    /// balloon's target; without it only reads the balloon and the guest's memory statistics.
    std::optional<uint64_t> balloon_target_bytes;
    /// disk_snapshot: the internal qcow2 snapshot to take of every writable qcow2 disk at one
    /// instant ("tag", 1-128 printable characters), or with "delete": true to delete.
    std::string disk_snapshot_tag;
    bool disk_snapshot_delete = false;
    /// disk_snapshot: with "bitmap": {"name": ..., "replaces": ...} (not with "delete").
    std::optional<DiskSnapshotBitmap> disk_snapshot_bitmap;
    /// limits: the rates every disk and NIC gets from now on.
    IoRateLimits limits;
};

/// The action's name on the wire ("status", "pause", ...).
const char* to_string(ControlAction action);

/// Parses one request line: a JSON object with an "action" string naming a ControlAction, and
/// the action's parameters (`{"action":"snapshot","dir":"/path","resume":false}`).
/// The error is the sentence sent back to the client ("not JSON", "unknown action 'x'").
Result<ControlRequest> parse_control_request(std::string_view line);

/// `{"ok":false,"error":message}` as one line (without the newline).
std::string control_error_answer(std::string_view message);

}  // namespace corral::vmm
