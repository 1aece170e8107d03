#pragma once

// The disks' side of VM snapshots (docs/api.md "Snapshots"): internal qcow2 snapshots through
// the storage layer for disks no process has open, and sparse file copies for the native
// engine's snapshots of a live VM.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "base/result.h"

namespace corral::daemon {

/// Internal snapshots named so are a running VM's backup instant (BackupService::run_backup):
/// never user snapshots (the name is refused for those), and a leftover of a backup that was
/// killed is deleted by the VM's next backup.
constexpr const char* k_backup_snapshot_prefix = "corral-backup-";

/// Takes the internal snapshot `tag` of the qcow2 image at `path` (qemu-img snapshot -c).
/// EINVAL when the image is not qcow2.
Result<void> create_disk_snapshot(const std::filesystem::path& path, const std::string& tag);
/// Reverts the image to its internal snapshot `tag` (qemu-img snapshot -a); ENOENT when it has none.
Result<void> revert_disk_snapshot(const std::filesystem::path& path, const std::string& tag);
/// Deletes the internal snapshot `tag`, freeing the clusters only it used; a missing snapshot
/// (one that a failed or interrupted snapshot never made) is no error.
Result<void> delete_disk_snapshot(const std::filesystem::path& path, const std::string& tag);
/// The saved VM state size (bytes) of the internal snapshot `tag`, 0 if none.
Result<uint64_t> disk_snapshot_state_bytes(const std::filesystem::path& path, const std::string& tag);

/// Copies the file `from` to `to` (created, or replaced through a temporary name and a rename so
/// that a failure leaves the old file whole), leaving holes where `from` has holes or zeros.
/// `progress(done, total)` after each chunk.
Result<void> copy_file_sparse(const std::filesystem::path& from, const std::filesystem::path& to,
                              const std::function<void(uint64_t, uint64_t)>& progress = {});

/// The bytes the files under `dir` take on disk (allocated blocks, holes not counted).
uint64_t allocated_bytes(const std::filesystem::path& dir);

}  // namespace corral::daemon
