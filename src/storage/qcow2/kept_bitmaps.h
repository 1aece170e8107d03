#pragma once

// The persistent dirty bitmaps a writable Qcow2Image keeps up to date, as QEMU does
// (docs/interop/qcow2.txt "Bitmaps"): loaded at open, marked in use on disk, set by every
// write, stored back at a clean close. Internal to storage/qcow2.

#include <cstdint>
#include <vector>

#include "storage/dirty_map.h"
#include "storage/qcow2/qcow2_bitmaps.h"

namespace corral::storage::qcow2 {

struct KeptBitmaps {
    /// One enabled bitmap that was not in use at open: its bits live here until the close.
    struct Tracked {
        size_t entry_at = 0;  ///< byte offset of its entry in `directory`
        BitmapEntry entry{};
        DirtyMap map{};
        std::vector<uint64_t> clusters{};  ///< host offsets of its table and data clusters on disk
    };
    uint64_t directory_offset = 0;
    std::vector<uint8_t> directory{};  ///< the directory's bytes, as on disk
    std::vector<Tracked> tracked{};
};

}  // namespace corral::storage::qcow2
