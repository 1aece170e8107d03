#pragma once

// The generation bitmaps of a stopped VM's qcow2 disks (docs/backup.md "Incremental"): after a
// backup, each disk carries one persistent dirty bitmap named for that backup, added with
// `qemu-img bitmap` (QEMU keeps it up to date while it runs the VM; our reader,
// storage/qcow2/qcow2_bitmaps.h, only reads).

#include <filesystem>
#include <string>

#include "base/result.h"

namespace corral::daemon {

/// Removes every Corral generation bitmap QEMU sees in the qcow2 image at `path` (no process may
/// have it open); returns how many. QEMU refuses to load a snapshot (-loadvm) into a disk with an
/// active dirty bitmap, and a revert changes the disk behind the bitmap's back anyway.
Result<size_t> remove_generation_bitmaps(const std::filesystem::path& path);

/// Replaces every Corral generation bitmap of the qcow2 image at `path` (no process may have it
/// open) by a new, empty, enabled one named `bitmap` (old ones that cannot go are logged and
/// left). Fails naming the qemu-img step that adds it.
Result<void> set_generation_bitmap(const std::filesystem::path& path, const std::string& bitmap);

}  // namespace corral::daemon
