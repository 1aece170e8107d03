#pragma once

// Reading the persistent dirty bitmaps QEMU keeps in a qcow2 image (docs/interop/qcow2.txt,
// "Bitmaps extension" and "Bitmaps file format"): the bitmap directory and one bitmap's bits.
// Read-only here: QEMU, `qemu-img bitmap` and Corral's own writer (qcow2_bitmap_store.cpp,
// Qcow2Image::add_bitmap / rotate_bitmaps) write them; an incremental backup and that writer
// read them.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "storage/dirty_map.h"

namespace corral::storage::qcow2 {

class Qcow2Image;

// Bitmap directory entry flags.
constexpr uint32_t k_bitmap_in_use = 1u << 0;  ///< open for writing (set while QEMU runs; left by a crash)
constexpr uint32_t k_bitmap_auto = 1u << 1;    ///< enabled: tracks writes
constexpr uint32_t k_bitmap_extra_data_compatible = 1u << 2;
/// The autoclear bit a writer that does not know bitmaps leaves clear (they are stale then).
constexpr uint64_t k_autoclear_bitmaps = 1ull << 0;
constexpr uint32_t k_max_bitmaps = 65535;             // QEMU's limit
constexpr uint64_t k_max_bitmap_directory = 64u << 20;  // QEMU's limit
constexpr uint32_t k_max_bitmap_name = 1023;
// QEMU's range of granularity_bits (BME_MIN/MAX_GRANULARITY_BITS), and its default for a disk
// with 64 KiB clusters (bdrv_get_default_bitmap_granularity: the cluster size).
constexpr uint8_t k_min_bitmap_granularity_bits = 9;
constexpr uint8_t k_max_bitmap_granularity_bits = 31;
constexpr uint8_t k_default_bitmap_granularity_bits = 16;
/// QEMU's bound on one bitmap's bits (BME_MAX_PHYS_SIZE): the bits are held in memory, by the
/// backup that reads them and by a writer that keeps them, so a crafted image must not ask more.
constexpr uint64_t k_max_bitmap_bytes = 512u << 20;

/// One bitmap directory entry.
struct BitmapEntry {
    uint64_t table_offset = 0;
    uint32_t table_size = 0;  ///< entries in the bitmap table (one per cluster of bits)
    uint32_t flags = 0;
    uint8_t type = 0;  ///< 1: dirty tracking (the only one defined)
    uint8_t granularity_bits = 0;
    uint32_t extra_data_size = 0;
    std::string name{};
    std::vector<uint8_t> extra_data{};  ///< kept verbatim when the directory is rewritten

    bool in_use() const { return flags & k_bitmap_in_use; }
    bool enabled() const { return flags & k_bitmap_auto; }
    uint64_t granularity() const { return 1ull << granularity_bits; }
};

/// What an image says about its bitmaps.
struct ImageBitmaps {
    /// False when the image has a bitmaps extension but its autoclear bit is clear: a program
    /// that does not keep bitmaps wrote the image, so none of them can be trusted.
    bool consistent = true;
    std::vector<BitmapEntry> bitmaps{};
};

/// Parses `count` directory entries from `data` (the directory's bytes). Fails naming the entry
/// and field that is out of bounds.
Result<std::vector<BitmapEntry>> parse_bitmap_directory(std::span<const uint8_t> data, uint32_t count);

/// The directory's bytes for `entries` (each padded to 8 bytes), as parse_bitmap_directory reads them.
std::vector<uint8_t> serialize_bitmap_directory(const std::vector<BitmapEntry>& entries);

/// The number of bitmap table entries (clusters of bits) a bitmap of `disk_size` bytes at
/// 2^granularity_bits-byte granules needs in an image of `cluster_size`-byte clusters.
uint64_t bitmap_table_entries(uint64_t disk_size, uint8_t granularity_bits, uint64_t cluster_size);

/// One bitmap's bits handed back by Qcow2Image::rotate_bitmaps.
struct HandedBitmap {
    std::string name{};
    DirtyMap map{};
};

/// What Qcow2Image::rotate_bitmaps did.
struct BitmapRotation {
    /// The bits of each removed bitmap that was kept up to date while the image was open.
    std::vector<HandedBitmap> handed{};
    /// Why a removed bitmap's bits were not handed (in use at a crash, disabled, stale).
    std::vector<std::string> notes{};
};

/// The bitmap directory of `image` (empty when it has no bitmaps extension).
Result<ImageBitmaps> read_bitmaps(const Qcow2Image& image);

/// The bits of one bitmap of `image`, covering its current virtual size.
Result<DirtyMap> read_bitmap(const Qcow2Image& image, const BitmapEntry& bitmap);

}  // namespace corral::storage::qcow2
