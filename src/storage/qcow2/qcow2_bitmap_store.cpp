// Keeping QEMU's persistent dirty bitmaps while Corral's own qcow2 code writes an image
// (docs/interop/qcow2.txt "Bitmaps extension", "Bitmaps file format"), so that a disk written by
// corral-vmm can be backed up incrementally like one QEMU ran. The steps follow QEMU's
// block/qcow2-bitmap.c: in use on disk while open, new clusters at the close, old ones freed
// only once the header names the new directory (a crash leaves leaks, never a wrong bitmap).
// Bitmaps added or removed while open (a backup's generation change) reach the directory at the
// close too, as QEMU stores a bitmap added at run time: until then the file still lists the old
// ones in use, which every reader distrusts.
#include <fmt/format.h>

#include <algorithm>

#include "base/log.h"
#include "storage/endian.h"
#include "storage/qcow2/kept_bitmaps.h"
#include "storage/qcow2/qcow2_image.h"

namespace corral::storage::qcow2 {

namespace {
constexpr uint64_t k_autoclear_offset = 88;  // qcow2.txt: header bytes 88-95
constexpr uint32_t k_entry_header = 24;
constexpr uint8_t k_type_dirty_tracking = 1;
/// QEMU's bound on one bitmap's table (BME_MAX_TABLE_SIZE).
constexpr uint64_t k_max_bitmap_table_entries = 0x8000000;

uint64_t div_round_up(uint64_t a, uint64_t b) {
    return (a + b - 1) / b;
}

bool has_bitmaps_extension(const Header& h) {
    return std::any_of(h.other_extensions.begin(), h.other_extensions.end(),
                       [](const HeaderExtension& e) { return e.type == k_ext_bitmaps; });
}
}  // namespace

Result<void> Qcow2Image::open_bitmaps() {
    Header& h = m_header;
    if (h.version < 3)
        return {};
    bool keep = false;
    if (has_bitmaps_extension(h) && (h.autoclear_features & k_autoclear_bitmaps)) {
        // A bitmap we cannot load is no reason to refuse the disk (a VM must still boot): it and
        // its siblings become stale, and the next backup reads in full, saying why.
        if (auto loaded = load_bitmaps(); loaded)
            keep = true;
        else
            log_warning("qcow2: '{}': the dirty bitmaps cannot be kept and become stale: {}", m_file.path(),
                        loaded.error().describe());
    }
    // Every other autoclear bit is one we do not maintain: clearing it tells readers so.
    const uint64_t autoclear = keep ? k_autoclear_bitmaps : 0;
    if (h.autoclear_features != autoclear) {
        uint8_t raw[8];
        store_be64(raw, autoclear);
        TRY_VOID(write_header_fields(k_autoclear_offset, raw));
        h.autoclear_features = autoclear;
    }
    if (!keep)
        m_bitmaps.reset();
    return {};
}

Result<void> Qcow2Image::load_bitmaps() {
    m_bitmaps.reset();
    const ImageBitmaps found = TRY(read_bitmaps(*this));
    auto kept = std::make_unique<KeptBitmaps>();
    for (const auto& e : m_header.other_extensions)
        if (e.type == k_ext_bitmaps) {
            kept->directory_size = load_be64(e.data.data() + 8);
            kept->directory_offset = load_be64(e.data.data() + 16);
        }
    kept->directory_owned = true;
    for (const BitmapEntry& entry : found.bitmaps) {
        KeptBitmaps::Bitmap b{.entry = entry, .kept = false, .map = {}, .clusters = {}};
        // A disabled bitmap records nothing new; one in use was not stored by its last writer
        // (a crash) and stays so: readers know not to trust it.
        if (entry.enabled() && !entry.in_use()) {
            b.map = TRY(read_bitmap(*this, entry));
            // read_bitmap checked the table's place and every entry in it.
            b.clusters = bitmap_clusters(entry);
            b.kept = true;
        }
        kept->bitmaps.push_back(std::move(b));
    }
    if (std::any_of(kept->bitmaps.begin(), kept->bitmaps.end(), [](const auto& b) { return b.kept; })) {
        // In use on disk before the first write: a crash from now on leaves them marked so.
        std::vector<BitmapEntry> entries;
        for (const auto& b : kept->bitmaps) {
            entries.push_back(b.entry);
            if (b.kept)
                entries.back().flags |= k_bitmap_in_use;
        }
        TRY_VOID(m_file.write_all(kept->directory_offset, serialize_bitmap_directory(entries)));
        TRY_VOID(m_file.sync());
    }
    m_bitmaps = std::move(kept);
    return {};
}

std::vector<uint64_t> Qcow2Image::bitmap_clusters(const BitmapEntry& entry) {
    std::vector<uint64_t> clusters;
    const uint64_t table_bytes = uint64_t(entry.table_size) * 8;
    if (!entry.table_offset || entry.table_offset % m_cluster_size || entry.table_offset > m_file_size ||
        table_bytes > m_file_size - entry.table_offset)
        return clusters;
    std::vector<uint8_t> table(table_bytes);
    if (!m_file.read_exact(entry.table_offset, table))
        return clusters;
    for (uint64_t c = 0; c < div_round_up(table.size(), m_cluster_size); ++c)
        clusters.push_back(entry.table_offset + c * m_cluster_size);
    for (uint32_t i = 0; i < entry.table_size; ++i) {
        const uint64_t off = load_be64(&table[size_t(i) * 8]) & k_offset_mask;
        // A cluster we cannot be sure of is left alone: a leak is harmless, a wrong free is not.
        if (off && (off % m_cluster_size || off >= m_file_size))
            return {};
        if (off)
            clusters.push_back(off);
    }
    return clusters;
}

void Qcow2Image::mark_dirty(uint64_t offset, uint64_t length) {
    if (!m_bitmaps || !length)
        return;
    for (auto& b : m_bitmaps->bitmaps) {
        if (!b.kept)
            continue;
        const uint64_t g = b.map.granularity;
        for (uint64_t i = offset / g; i <= (offset + length - 1) / g && i / 8 < b.map.bits.size(); ++i)
            b.map.bits[i / 8] |= uint8_t(1u << (i % 8));
    }
}

KeptBitmaps& Qcow2Image::bitmaps_for_change() {
    if (!m_bitmaps) {
        // No bitmaps kept: none on disk, or stale ones. QEMU drops stale ones unread (their
        // clusters may have been reused by a program that knew nothing of them, so they leak).
        if (has_bitmaps_extension(m_header))
            log_warning("qcow2: '{}': its stale dirty bitmaps are dropped for a new one (their clusters leak)",
                        m_file.path());
        m_bitmaps = std::make_unique<KeptBitmaps>();
    }
    return *m_bitmaps;
}

Result<void> Qcow2Image::check_new_bitmap(const std::string& name, const DirtyMap& bits, const std::string& replaces) {
    const std::string path = m_file.path();
    if (m_read_only)
        return fail(fmt::format("'{}' is open read-only: it gets no new bitmap", path), EROFS);
    if (m_header.version < 3)
        return fail(fmt::format("'{}' is a version 2 qcow2 image, which keeps no bitmaps (version 3 does: "
                                "qemu-img amend -o compat=1.1)",
                                path),
                    ENOTSUP);
    if (m_bitmaps_abandoned)
        return fail(fmt::format("'{}': its bitmaps were handed to another process", path), EBUSY);
    if (name.empty() || name.size() > k_max_bitmap_name)
        return fail(fmt::format("bitmap name of {} bytes (allowed 1..{})", name.size(), k_max_bitmap_name), EINVAL);
    const uint64_t g = bits.granularity;
    if (g < (1ull << k_min_bitmap_granularity_bits) || g > (1ull << k_max_bitmap_granularity_bits) || (g & (g - 1)))
        return fail(fmt::format("bitmap '{}': granularity {} (allowed a power of two from {} to {})", name, g,
                                1ull << k_min_bitmap_granularity_bits, 1ull << k_max_bitmap_granularity_bits),
                    EINVAL);
    const uint64_t bytes = div_round_up(div_round_up(size(), g), 8);
    if (bits.disk_size != size() || bits.bits.size() != bytes)
        return fail(fmt::format("bitmap '{}' covers {} bytes in {} bytes of bits; '{}' has {} bytes (so {} of bits)",
                                name, bits.disk_size, bits.bits.size(), path, size(), bytes),
                    EINVAL);
    const uint8_t granularity_bits = uint8_t(__builtin_ctzll(g));
    const uint64_t table = bitmap_table_entries(size(), granularity_bits, m_cluster_size);
    if (bytes > k_max_bitmap_bytes || table > k_max_bitmap_table_entries)
        return fail(
            fmt::format("bitmap '{}': {} bytes of bits for '{}' (at most {})", name, bytes, path, k_max_bitmap_bytes),
            EINVAL);
    // What the directory lists after the change: QEMU refuses an image with two bitmaps of one name.
    std::vector<BitmapEntry> after;
    if (m_bitmaps)
        for (const auto& b : m_bitmaps->bitmaps)
            if (replaces.empty() || !b.entry.name.starts_with(replaces))
                after.push_back(b.entry);
    for (const auto& e : after)
        if (e.name == name)
            return fail(fmt::format("'{}' already has a bitmap named '{}'", path, name), EEXIST);
    if (after.size() + 1 > k_max_bitmaps)
        return fail(fmt::format("'{}' has {} bitmaps, the most an image may have", path, after.size()), ENOSPC);
    after.push_back(BitmapEntry{.name = name});
    if (serialize_bitmap_directory(after).size() > k_max_bitmap_directory)
        return fail(fmt::format("'{}': the bitmap directory would exceed {} bytes", path, k_max_bitmap_directory),
                    ENOSPC);
    // The close adds the extension to the header cluster, beside the backing file's name: try it now.
    if (!has_bitmaps_extension(m_header))
        TRY_VOID(header_with_bitmaps_extension(std::vector<uint8_t>(24, 0)));
    return {};
}

Result<void> Qcow2Image::add_bitmap(const std::string& name, DirtyMap bits) {
    TRY_VOID(check_new_bitmap(name, bits, {}));
    KeptBitmaps& kept = bitmaps_for_change();
    const uint8_t granularity_bits = uint8_t(__builtin_ctzll(bits.granularity));
    BitmapEntry entry{.table_offset = 0,
                      .table_size = uint32_t(bitmap_table_entries(size(), granularity_bits, m_cluster_size)),
                      .flags = k_bitmap_auto,
                      .type = k_type_dirty_tracking,
                      .granularity_bits = granularity_bits,
                      .extra_data_size = 0,
                      .name = name,
                      .extra_data = {}};
    kept.bitmaps.push_back({.entry = std::move(entry), .kept = true, .map = std::move(bits), .clusters = {}});
    kept.changed = true;
    return {};
}

Result<BitmapRotation> Qcow2Image::rotate_bitmaps(const std::string& name, const std::string& replaces) {
    uint64_t granularity = 1ull << k_default_bitmap_granularity_bits;
    if (m_bitmaps)
        for (const auto& b : m_bitmaps->bitmaps)
            if (b.kept && !replaces.empty() && b.entry.name.starts_with(replaces)) {
                granularity = b.map.granularity;
                break;
            }
    DirtyMap fresh{.granularity = granularity, .disk_size = size(), .bits = {}};
    fresh.bits.resize(div_round_up(div_round_up(size(), granularity), 8), 0);
    TRY_VOID(check_new_bitmap(name, fresh, replaces));

    BitmapRotation out;
    if (!m_bitmaps && has_bitmaps_extension(m_header))
        out.notes.push_back(
            "the disk's bitmaps were stale (a program that keeps no bitmaps wrote it) and were dropped");
    KeptBitmaps& kept = bitmaps_for_change();
    if (!replaces.empty()) {
        std::vector<KeptBitmaps::Bitmap> stay;
        for (auto& b : kept.bitmaps) {
            if (!b.entry.name.starts_with(replaces)) {
                stay.push_back(std::move(b));
                continue;
            }
            if (b.kept) {
                out.handed.push_back({.name = b.entry.name, .map = std::move(b.map)});
            } else {
                out.notes.push_back(
                    b.entry.in_use()
                        ? fmt::format("bitmap '{}' was in use at a crash (its last writer did not close the disk)",
                                      b.entry.name)
                        : fmt::format("bitmap '{}' is disabled (it does not record writes)", b.entry.name));
                // Only a trusted directory's bitmaps are ours to free.
                if (kept.directory_owned)
                    b.clusters = bitmap_clusters(b.entry);
            }
            kept.removed_clusters.insert(kept.removed_clusters.end(), b.clusters.begin(), b.clusters.end());
            kept.changed = true;
        }
        kept.bitmaps = std::move(stay);
    }
    TRY_VOID(add_bitmap(name, std::move(fresh)));
    return out;
}

Result<void> Qcow2Image::store_bitmaps() {
    std::unique_ptr<KeptBitmaps> kept = std::move(m_bitmaps);
    if (!kept)
        return {};
    const bool any_kept = std::any_of(kept->bitmaps.begin(), kept->bitmaps.end(), [](const auto& b) { return b.kept; });
    if (!any_kept && !kept->changed)
        return {};
    // The guest data the bits describe is durable before the bits are.
    TRY_VOID(flush());
    std::vector<BitmapEntry> entries;
    std::vector<uint64_t> old_clusters = kept->removed_clusters;
    for (auto& b : kept->bitmaps) {
        if (b.kept) {
            const auto& bits = b.map.bits;
            std::vector<uint64_t> table(b.entry.table_size, 0);
            for (uint32_t i = 0; i < b.entry.table_size; ++i) {
                const uint64_t begin = uint64_t(i) * m_cluster_size;
                const uint64_t length =
                    begin < bits.size() ? std::min<uint64_t>(m_cluster_size, bits.size() - begin) : 0;
                auto part = std::span(bits).subspan(std::min<uint64_t>(begin, bits.size()), length);
                if (std::all_of(part.begin(), part.end(), [](uint8_t v) { return v == 0; }))
                    continue;  // an all-zero cluster of bits is a 0 table entry
                std::vector<uint8_t> cluster(m_cluster_size, 0);
                std::copy(part.begin(), part.end(), cluster.begin());
                table[i] = TRY(alloc_clusters(1));
                TRY_VOID(write_host(table[i], cluster));
            }
            const uint64_t table_clusters = div_round_up(table.size() * 8, m_cluster_size);
            const uint64_t table_offset = TRY(alloc_clusters(table_clusters));
            TRY_VOID(write_table(table_offset, table, table_clusters));
            b.entry.table_offset = table_offset;
            b.entry.flags &= ~k_bitmap_in_use;
            old_clusters.insert(old_clusters.end(), b.clusters.begin(), b.clusters.end());
        }
        entries.push_back(b.entry);
    }
    const std::vector<uint8_t> directory = serialize_bitmap_directory(entries);
    const uint64_t dir_clusters = div_round_up(directory.size(), m_cluster_size);
    uint64_t dir_offset = 0;
    if (dir_clusters) {
        dir_offset = TRY(alloc_clusters(dir_clusters));
        std::vector<uint8_t> padded(dir_clusters * m_cluster_size, 0);
        std::copy(directory.begin(), directory.end(), padded.begin());
        TRY_VOID(write_host(dir_offset, padded));
    }
    // Refcounts and the new clusters reach the disk before the header names them; the old
    // clusters are freed only after it does.
    TRY_VOID(flush_refblocks());
    TRY_VOID(m_file.sync());
    TRY_VOID(write_bitmaps_extension(uint32_t(entries.size()), directory.size(), dir_offset));
    // The autoclear bit says "the bitmaps hold" and goes on only once the header names a
    // directory that does: set first, a crash would leave the old (stale) ones trusted.
    if (!entries.empty() && !(m_header.autoclear_features & k_autoclear_bitmaps)) {
        uint8_t raw[8];
        store_be64(raw, m_header.autoclear_features | k_autoclear_bitmaps);
        TRY_VOID(write_header_fields(k_autoclear_offset, raw));
        m_header.autoclear_features |= k_autoclear_bitmaps;
    }
    if (kept->directory_owned)
        for (uint64_t c = 0; c < div_round_up(kept->directory_size, m_cluster_size); ++c)
            old_clusters.push_back(kept->directory_offset + c * m_cluster_size);
    for (uint64_t off : old_clusters)
        TRY_VOID(adjust_refcount(off >> m_cluster_bits, -1));
    TRY_VOID(flush_refblocks());
    return m_file.sync();
}

Result<std::vector<uint8_t>> Qcow2Image::header_with_bitmaps_extension(std::span<const uint8_t> data) {
    // From the file, not m_header: the header cluster is rewritten whole, so it must be the
    // one on disk with only the extension changed.
    std::vector<uint8_t> first(m_cluster_size);
    TRY_VOID(m_file.read_zero_fill(0, first));
    const uint64_t file_size = TRY(m_file.size());
    Header h = TRY(parse_header(first, file_size));
    std::erase_if(h.other_extensions, [](const HeaderExtension& e) { return e.type == k_ext_bitmaps; });
    if (!data.empty())
        h.other_extensions.push_back({k_ext_bitmaps, std::vector<uint8_t>(data.begin(), data.end())});
    return TRY_CONTEXT(serialize_header(h),
                       fmt::format("'{}': no room for the bitmaps header extension in the header cluster (beside "
                                   "the backing file's name and the other extensions)",
                                   m_file.path()));
}

Result<void> Qcow2Image::write_bitmaps_extension(uint32_t count, uint64_t directory_size, uint64_t directory_offset) {
    uint8_t data[24] = {};
    store_be32(data, count);
    store_be64(data + 8, directory_size);
    store_be64(data + 16, directory_offset);
    // An extension already there keeps its place and size: one 24-byte write in the header.
    std::vector<uint8_t> first(m_cluster_size);
    TRY_VOID(m_file.read_zero_fill(0, first));
    uint64_t at = m_header.version >= 3 ? m_header.header_length : k_v2_header_length;
    while (count && at + 8 <= first.size()) {
        const uint32_t type = load_be32(&first[at]), length = load_be32(&first[at + 4]);
        if (type == k_ext_end)
            break;
        if (type == k_ext_bitmaps && length == 24 && at + 8 + 24 <= first.size()) {
            TRY_VOID(write_header_fields(at + 8, data));
            for (auto& e : m_header.other_extensions)
                if (e.type == k_ext_bitmaps)
                    e.data.assign(data, data + 24);
            return {};
        }
        at += 8 + ((uint64_t(length) + 7) & ~uint64_t(7));
    }
    // None yet (or none wanted): the header cluster is rewritten with it (QEMU rewrites it so
    // too). The backing file's name moves behind the extensions, in the same write.
    const std::vector<uint8_t> header =
        TRY(header_with_bitmaps_extension(count ? std::span<const uint8_t>(data) : std::span<const uint8_t>()));
    TRY_VOID(write_header_fields(0, header));
    const Header fresh = TRY(parse_header(header, TRY(m_file.size())));
    m_header.header_length = fresh.header_length;
    m_header.backing_file_offset = fresh.backing_file_offset;
    m_header.other_extensions = fresh.other_extensions;
    return {};
}

void Qcow2Image::abandon_bitmaps() {
    m_bitmaps.reset();
    m_bitmaps_abandoned = true;
}

Result<void> Qcow2Image::drop_bitmaps() {
    m_bitmaps.reset();
    if (!(m_header.autoclear_features & k_autoclear_bitmaps))
        return {};
    uint8_t zero[8] = {};
    TRY_VOID(write_header_fields(k_autoclear_offset, zero));
    m_header.autoclear_features = 0;
    return {};
}

}  // namespace corral::storage::qcow2
