#pragma once

// The generation bitmaps of a stopped VM's qcow2 disks (docs/backup.md "Incremental"): after a
// backup, each disk carries one persistent dirty bitmap named for that backup, added with
// `qemu-img bitmap` (QEMU keeps it up to date while it runs the VM; our reader,
// storage/qcow2/qcow2_bitmaps.h, only reads).

#include <filesystem>
#include <string>

#include "base/result.h"

namespace corral::daemon {

/// Replaces every Corral generation bitmap of the qcow2 image at `path` (no process may have it
/// open) by a new, empty, enabled one named `bitmap`. Fails naming the qemu-img step.
Result<void> set_generation_bitmap(const std::filesystem::path& path, const std::string& bitmap);

}  // namespace corral::daemon
