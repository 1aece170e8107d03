#pragma once

// Which parts of a disk were written since some instant: one bit per granule, as a dirty bitmap
// (QEMU's persistent bitmaps, docs/interop/qcow2.txt "Bitmaps") records them. An incremental
// backup reads only the chunks this marks.

#include <algorithm>
#include <cstdint>
#include <vector>

namespace corral::storage {

/// Bit i (byte i / 8, bit i % 8: qcow2's order) set = some byte of
/// [i * granularity, (i + 1) * granularity) was written.
struct DirtyMap {
    uint64_t granularity = 0;  ///< bytes per bit, a power of two
    uint64_t disk_size = 0;    ///< the virtual size the map covers
    std::vector<uint8_t> bits{};

    bool bit(uint64_t i) const { return i / 8 < bits.size() && (bits[i / 8] >> (i % 8)) & 1; }
    /// True when some granule overlapping [offset, offset + length) is dirty.
    bool any(uint64_t offset, uint64_t length) const {
        if (!granularity || !length)
            return false;
        for (uint64_t i = offset / granularity; i <= (offset + length - 1) / granularity; ++i)
            if (bit(i))
                return true;
        return false;
    }
    /// Bytes the dirty granules cover (the last one clipped to the disk).
    uint64_t dirty_bytes() const {
        uint64_t total = 0;
        for (uint64_t i = 0; granularity && i * granularity < disk_size; ++i)
            if (bit(i))
                total += std::min(granularity, disk_size - i * granularity);
        return total;
    }
};

}  // namespace corral::storage
