#pragma once

// A running corral-vmm's generation bitmaps, handed back inline in its `disk_snapshot` answer at
// a backup's instant (vmm/vmm_snapshot.cpp), written into the images corrald gave for them
// (DiskBitmap::copy_to) as QEMU writes its copies: the backup reads them from there
// (docs/backup.md "Incremental").

#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.h"

namespace corral::engine {

/// Writes each handed bitmap of the disks `disks` (indices in LaunchSpec::disks order, as the
/// answer's "bitmaps" array is) into that disk's copy image. The answer is checked as hostile
/// input: a field of the wrong type, bits of the wrong size or a name `bitmap` did not ask for
/// copy nothing. Returns, for each disk whose copy got no bitmap, why when corral-vmm or the
/// copy says more than "no bitmap" (an older corral-vmm that hands none, a disk that kept its
/// bitmaps, an old generation in use at a crash, disabled or too large to hand).
BitmapNotes copy_handed_bitmaps(const nlohmann::json& answer, const std::vector<size_t>& disks,
                                const DiskBitmap& bitmap);

}  // namespace corral::engine
