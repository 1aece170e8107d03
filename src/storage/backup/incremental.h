#pragma once

// Incremental backups through QEMU's persistent dirty bitmaps (docs/backup.md "Incremental"):
// after a backup, each qcow2 disk carries a bitmap named for that backup (its generation); the
// next backup of the disk reads only what that bitmap marks, when the bitmap can be trusted.

#include <string>
#include <string_view>

#include "base/result.h"
#include "storage/backup/operations.h"

namespace corral::storage::backup {

/// Bitmaps so named are Corral's generations: the one of the newest backup of the disk is kept,
/// the others are removed after each backup.
constexpr std::string_view k_generation_prefix = "corral-gen-";

/// The name of the bitmap that records what changes on a disk after backup `id`.
std::string generation_bitmap(const std::string& id);

/// Decides how `disk` (of VM `vm`, a disk no process writes) is read by the next backup into
/// `repo`: sets disk.incremental when the image holds a valid bitmap of the generation of the
/// VM's newest backup in `repo` that has this disk, else disk.full_reason ("no bitmap", "bitmap
/// was in use at a crash", "previous backup ... was pruned" ...). Fails only when the repository
/// cannot be read; anything wrong with the image or its bitmaps means a full read.
/// `bitmaps_from`, when given, is the qcow2 image the disk's bitmaps are read from instead of
/// the disk (a running VM's, copied out of QEMU at the backup's instant).
Result<void> plan_incremental(Repository& repo, const std::string& vm, DiskSource& disk,
                              const std::string& bitmaps_from = {});

}  // namespace corral::storage::backup
