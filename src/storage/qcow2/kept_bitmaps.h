#pragma once

// The persistent dirty bitmaps a writable Qcow2Image keeps up to date, as QEMU does
// (docs/interop/qcow2.txt "Bitmaps"): loaded at open, marked in use on disk, set by every
// write, stored back at a clean close; bitmaps added or removed while the image is open change
// the directory only at that close, as in QEMU. Internal to storage/qcow2.

#include <cstdint>
#include <vector>

#include "storage/dirty_map.h"
#include "storage/qcow2/qcow2_bitmaps.h"

namespace corral::storage::qcow2 {

struct KeptBitmaps {
    /// One bitmap the directory lists at the close, in directory order.
    struct Bitmap {
        BitmapEntry entry{};  ///< as on disk; a kept one's table and flags are rewritten at the close
        /// Enabled and trusted: its bits live in `map`, every write sets them, the close stores
        /// them (and clears its in-use flag). Otherwise it is stored as it was found.
        bool kept = false;
        DirtyMap map{};
        std::vector<uint64_t> clusters{};  ///< a kept one's table and data clusters on disk (freed at the close)
    };
    /// The directory at `directory_offset` is trusted and ours to free at the close (false: the
    /// image had no bitmaps, or stale ones that QEMU would drop and that are dropped here too).
    bool directory_owned = false;
    uint64_t directory_offset = 0;
    uint64_t directory_size = 0;
    std::vector<Bitmap> bitmaps{};
    /// Clusters of bitmaps removed while open: freed once the header names the new directory.
    std::vector<uint64_t> removed_clusters{};
    /// Bitmaps were added or removed: the directory is rewritten at the close even when none is kept.
    bool changed = false;
};

}  // namespace corral::storage::qcow2
