#include "storage/qcow2/qcow2_bitmaps.h"

#include <fmt/format.h>

#include "storage/endian.h"
#include "storage/qcow2/qcow2_image.h"

namespace corral::storage::qcow2 {

namespace {

constexpr uint32_t k_entry_header = 24;
constexpr uint8_t k_type_dirty_tracking = 1;
// qcow2.txt: table entries keep the offset in bits 9-55 and bit 0 ("all ones" when there is no
// cluster); the rest is reserved and must be zero.
constexpr uint8_t k_min_granularity_bits = k_min_bitmap_granularity_bits;
constexpr uint8_t k_max_granularity_bits = k_max_bitmap_granularity_bits;
constexpr uint64_t k_table_reserved = 0xff000000000001feull;
constexpr uint64_t k_table_all_ones = 1;

uint64_t div_round_up(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

}  // namespace

Result<std::vector<BitmapEntry>> parse_bitmap_directory(std::span<const uint8_t> data, uint32_t count) {
    std::vector<BitmapEntry> entries;
    size_t at = 0;
    for (uint32_t i = 0; i < count; ++i) {
        if (data.size() - at < k_entry_header)
            return fail(fmt::format("bitmap directory entry {} runs past the directory", i));
        const uint8_t* p = data.data() + at;
        BitmapEntry e;
        e.table_offset = load_be64(p);
        e.table_size = load_be32(p + 8);
        e.flags = load_be32(p + 12);
        e.type = p[16];
        e.granularity_bits = p[17];
        const uint16_t name_size = load_be16(p + 18);
        e.extra_data_size = load_be32(p + 20);
        if (name_size == 0 || name_size > k_max_bitmap_name)
            return fail(fmt::format("bitmap directory entry {}: name_size {} (allowed 1..{})", i, name_size,
                                    k_max_bitmap_name));
        const uint64_t size = (uint64_t(k_entry_header) + e.extra_data_size + name_size + 7) & ~uint64_t(7);
        if (size > data.size() - at)
            return fail(fmt::format("bitmap directory entry {} ({} bytes) runs past the directory", i, size));
        e.extra_data.assign(p + k_entry_header, p + k_entry_header + e.extra_data_size);
        e.name.assign(reinterpret_cast<const char*>(p + k_entry_header + e.extra_data_size), name_size);
        entries.push_back(std::move(e));
        at += size;
    }
    return entries;
}

std::vector<uint8_t> serialize_bitmap_directory(const std::vector<BitmapEntry>& entries) {
    std::vector<uint8_t> out;
    for (const auto& e : entries) {
        const size_t at = out.size();
        const size_t size = (k_entry_header + e.extra_data.size() + e.name.size() + 7) & ~size_t(7);
        out.resize(at + size, 0);
        uint8_t* p = out.data() + at;
        store_be64(p, e.table_offset);
        store_be32(p + 8, e.table_size);
        store_be32(p + 12, e.flags);
        p[16] = e.type;
        p[17] = e.granularity_bits;
        store_be16(p + 18, uint16_t(e.name.size()));
        store_be32(p + 20, uint32_t(e.extra_data.size()));
        std::copy(e.extra_data.begin(), e.extra_data.end(), p + k_entry_header);
        std::copy(e.name.begin(), e.name.end(), p + k_entry_header + e.extra_data.size());
    }
    return out;
}

uint64_t bitmap_table_entries(uint64_t disk_size, uint8_t granularity_bits, uint64_t cluster_size) {
    const uint64_t bits = div_round_up(disk_size, 1ull << granularity_bits);
    return div_round_up(bits, cluster_size * 8);
}

Result<ImageBitmaps> read_bitmaps(const Qcow2Image& image) {
    const Header& h = image.header();
    ImageBitmaps out;
    const HeaderExtension* ext = nullptr;
    for (const auto& e : h.other_extensions)
        if (e.type == k_ext_bitmaps)
            ext = &e;
    if (!ext)
        return out;
    if (ext->data.size() < 24)
        return fail(fmt::format("bitmaps header extension has {} bytes (24 expected)", ext->data.size()));
    const uint8_t* p = ext->data.data();
    const uint32_t count = load_be32(p);
    const uint64_t dir_size = load_be64(p + 8);
    const uint64_t dir_offset = load_be64(p + 16);
    out.consistent = h.autoclear_features & k_autoclear_bitmaps;
    if (count > k_max_bitmaps)
        return fail(fmt::format("bitmaps extension: nb_bitmaps {} (at most {})", count, k_max_bitmaps));
    if (dir_size > k_max_bitmap_directory || dir_size < uint64_t(count) * k_entry_header)
        return fail(fmt::format("bitmaps extension: directory size {} for {} bitmaps", dir_size, count));
    if (dir_offset % image.cluster_size())
        return fail(fmt::format("bitmaps extension: directory offset {:#x} is not cluster aligned", dir_offset));
    const uint64_t file_size = TRY(image.file().size());
    if (dir_offset > file_size || dir_size > file_size - dir_offset)
        return fail(fmt::format("bitmaps extension: directory at {:#x} ({} bytes) is past the end of the file",
                                dir_offset, dir_size));
    std::vector<uint8_t> dir(dir_size);
    TRY_VOID(image.file().read_exact(dir_offset, dir));
    out.bitmaps = TRY(parse_bitmap_directory(dir, count));
    return out;
}

Result<DirtyMap> read_bitmap(const Qcow2Image& image, const BitmapEntry& bitmap) {
    const auto fail_with = [&](const std::string& what) {
        return fail(fmt::format("bitmap '{}': {}", bitmap.name, what));
    };
    if (bitmap.type != k_type_dirty_tracking)
        return fail_with(fmt::format("type {} (only 1, dirty tracking, is defined)", bitmap.type));
    if (bitmap.granularity_bits < k_min_granularity_bits || bitmap.granularity_bits > k_max_granularity_bits)
        return fail_with(fmt::format("granularity_bits {} (allowed {}..{})", bitmap.granularity_bits,
                                     k_min_granularity_bits, k_max_granularity_bits));
    if (bitmap.extra_data_size && !(bitmap.flags & k_bitmap_extra_data_compatible))
        return fail_with("has extra data that must not be ignored");
    const uint64_t cluster = image.cluster_size();
    const uint64_t bits = div_round_up(image.size(), bitmap.granularity());
    const uint64_t bits_per_cluster = cluster * 8;
    const uint64_t needed = div_round_up(bits, bits_per_cluster);
    if (div_round_up(bits, 8) > k_max_bitmap_bytes)
        return fail_with(fmt::format("{} bytes of bits for a {}-byte disk at {}-byte granules (at most {})",
                                     div_round_up(bits, 8), image.size(), bitmap.granularity(), k_max_bitmap_bytes));
    if (bitmap.table_size != needed)
        return fail_with(fmt::format("its table has {} entries, {} expected for a {}-byte disk", bitmap.table_size,
                                     needed, image.size()));
    const uint64_t file_size = TRY(image.file().size());
    const uint64_t table_bytes = uint64_t(bitmap.table_size) * 8;
    if (bitmap.table_offset % cluster || bitmap.table_offset > file_size ||
        table_bytes > file_size - bitmap.table_offset)
        return fail_with(fmt::format("table at {:#x} is unaligned or past the end of the file", bitmap.table_offset));
    std::vector<uint8_t> table(table_bytes);
    TRY_VOID(image.file().read_exact(bitmap.table_offset, table));

    DirtyMap map{.granularity = bitmap.granularity(), .disk_size = image.size(), .bits = {}};
    map.bits.resize(div_round_up(bits, 8));
    for (uint64_t i = 0; i < needed; ++i) {
        const uint64_t entry = load_be64(table.data() + i * 8);
        if (entry & k_table_reserved)
            return fail_with(fmt::format("table entry {} has reserved bits set ({:#x})", i, entry));
        const uint64_t offset = entry & k_offset_mask;
        const uint64_t begin = i * cluster;  // byte of map.bits this cluster holds
        const uint64_t length = std::min<uint64_t>(cluster, map.bits.size() - begin);
        auto dest = std::span(map.bits).subspan(begin, length);
        if (offset == 0) {
            std::fill(dest.begin(), dest.end(), (entry & k_table_all_ones) ? 0xff : 0);
            continue;
        }
        if (offset % cluster || offset > file_size || cluster > file_size - offset)
            return fail_with(fmt::format("table entry {} points at {:#x}, unaligned or past the end of the file", i,
                                         offset));
        TRY_VOID(image.file().read_exact(offset, dest));
    }
    // Bits past the disk's end are padding: clear them so they never count as dirty.
    if (bits % 8)
        map.bits.back() &= uint8_t((1u << (bits % 8)) - 1);
    return map;
}

}  // namespace corral::storage::qcow2
