// Keeping QEMU's persistent dirty bitmaps while Corral's own qcow2 code writes an image
// (docs/interop/qcow2.txt "Bitmaps extension", "Bitmaps file format"), so that a disk written by
// corral-vmm can be backed up incrementally like one QEMU ran. The steps follow QEMU's
// block/qcow2-bitmap.c: in use on disk while open, new clusters at the close, old ones freed
// only once the header names the new directory (a crash leaves leaks, never a wrong bitmap).
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

uint64_t div_round_up(uint64_t a, uint64_t b) {
    return (a + b - 1) / b;
}
}  // namespace

Result<void> Qcow2Image::open_bitmaps() {
    Header& h = m_header;
    if (h.version < 3)
        return {};
    bool has_extension = false;
    for (const auto& e : h.other_extensions)
        has_extension |= e.type == k_ext_bitmaps;
    bool keep = false;
    if (has_extension && (h.autoclear_features & k_autoclear_bitmaps)) {
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
            const uint64_t dir_size = load_be64(e.data.data() + 8);
            kept->directory_offset = load_be64(e.data.data() + 16);
            kept->directory.resize(dir_size);
        }
    TRY_VOID(m_file.read_exact(kept->directory_offset, kept->directory));
    size_t at = 0;
    for (const BitmapEntry& entry : found.bitmaps) {
        const size_t entry_at = at;
        at += (k_entry_header + entry.extra_data_size + entry.name.size() + 7) & ~size_t(7);
        // A disabled bitmap records nothing new; one in use was not stored by its last writer
        // (a crash) and stays so: readers know not to trust it.
        if (!entry.enabled() || entry.in_use())
            continue;
        KeptBitmaps::Tracked t{
            .entry_at = entry_at, .entry = entry, .map = TRY(read_bitmap(*this, entry)), .clusters = {}};
        // read_bitmap checked the table's place and every entry in it.
        std::vector<uint8_t> table(uint64_t(entry.table_size) * 8);
        TRY_VOID(m_file.read_exact(entry.table_offset, table));
        for (uint64_t c = 0; c < div_round_up(table.size(), m_cluster_size); ++c)
            t.clusters.push_back(entry.table_offset + c * m_cluster_size);
        for (uint32_t i = 0; i < entry.table_size; ++i)
            if (uint64_t off = load_be64(&table[size_t(i) * 8]) & k_offset_mask)
                t.clusters.push_back(off);
        kept->tracked.push_back(std::move(t));
    }
    if (!kept->tracked.empty()) {
        // In use on disk before the first write: a crash from now on leaves them marked so.
        for (const auto& t : kept->tracked)
            store_be32(&kept->directory[t.entry_at + 12], t.entry.flags | k_bitmap_in_use);
        TRY_VOID(m_file.write_all(kept->directory_offset, kept->directory));
        TRY_VOID(m_file.sync());
    }
    m_bitmaps = std::move(kept);
    return {};
}

void Qcow2Image::mark_dirty(uint64_t offset, uint64_t length) {
    if (!m_bitmaps || !length)
        return;
    for (auto& t : m_bitmaps->tracked) {
        const uint64_t g = t.map.granularity;
        for (uint64_t i = offset / g; i <= (offset + length - 1) / g && i / 8 < t.map.bits.size(); ++i)
            t.map.bits[i / 8] |= uint8_t(1u << (i % 8));
    }
}

Result<void> Qcow2Image::store_bitmaps() {
    std::unique_ptr<KeptBitmaps> kept = std::move(m_bitmaps);
    if (!kept || kept->tracked.empty())
        return {};
    // The guest data the bits describe is durable before the bits are.
    TRY_VOID(flush());
    std::vector<uint8_t> directory = kept->directory;
    std::vector<uint64_t> old_clusters;
    for (auto& t : kept->tracked) {
        const auto& bits = t.map.bits;
        std::vector<uint64_t> table(t.entry.table_size, 0);
        for (uint32_t i = 0; i < t.entry.table_size; ++i) {
            const uint64_t begin = uint64_t(i) * m_cluster_size;
            const uint64_t length = begin < bits.size() ? std::min<uint64_t>(m_cluster_size, bits.size() - begin) : 0;
            auto part = std::span(bits).subspan(begin, length);
            if (std::all_of(part.begin(), part.end(), [](uint8_t b) { return b == 0; }))
                continue;  // an all-zero cluster of bits is a 0 table entry
            std::vector<uint8_t> cluster(m_cluster_size, 0);
            std::copy(part.begin(), part.end(), cluster.begin());
            table[i] = TRY(alloc_clusters(1));
            TRY_VOID(write_host(table[i], cluster));
        }
        const uint64_t table_clusters = div_round_up(table.size() * 8, m_cluster_size);
        const uint64_t table_offset = TRY(alloc_clusters(table_clusters));
        TRY_VOID(write_table(table_offset, table, table_clusters));
        store_be64(&directory[t.entry_at], table_offset);
        store_be32(&directory[t.entry_at + 12], t.entry.flags & ~k_bitmap_in_use);
        old_clusters.insert(old_clusters.end(), t.clusters.begin(), t.clusters.end());
    }
    const uint64_t dir_clusters = div_round_up(directory.size(), m_cluster_size);
    const uint64_t dir_offset = TRY(alloc_clusters(dir_clusters));
    std::vector<uint8_t> padded(dir_clusters * m_cluster_size, 0);
    std::copy(directory.begin(), directory.end(), padded.begin());
    TRY_VOID(write_host(dir_offset, padded));
    // Refcounts and the new clusters reach the disk before the header names them; the old
    // clusters are freed only after it does.
    TRY_VOID(flush_refblocks());
    TRY_VOID(m_file.sync());
    TRY_VOID(write_bitmaps_extension(dir_offset));
    for (uint64_t c = 0; c < div_round_up(kept->directory.size(), m_cluster_size); ++c)
        old_clusters.push_back(kept->directory_offset + c * m_cluster_size);
    for (uint64_t off : old_clusters)
        TRY_VOID(adjust_refcount(off >> m_cluster_bits, -1));
    TRY_VOID(flush_refblocks());
    return m_file.sync();
}

Result<void> Qcow2Image::write_bitmaps_extension(uint64_t directory_offset) {
    // The extension keeps its place and size in the header cluster: only its directory offset
    // (bytes 16-23 of its data) changes, one aligned 8-byte write.
    std::vector<uint8_t> first(m_cluster_size);
    TRY_VOID(m_file.read_zero_fill(0, first));
    uint64_t at = m_header.version >= 3 ? m_header.header_length : k_v2_header_length;
    while (at + 8 <= first.size()) {
        const uint32_t type = load_be32(&first[at]), length = load_be32(&first[at + 4]);
        if (type == k_ext_end)
            break;
        if (type == k_ext_bitmaps) {
            if (length < 24 || at + 8 + 24 > first.size())
                break;
            uint8_t raw[8];
            store_be64(raw, directory_offset);
            TRY_VOID(write_header_fields(at + 8 + 16, raw));
            for (auto& e : m_header.other_extensions)
                if (e.type == k_ext_bitmaps)
                    store_be64(e.data.data() + 16, directory_offset);
            return {};
        }
        at += 8 + ((uint64_t(length) + 7) & ~uint64_t(7));
    }
    return fail(fmt::format("'{}': the bitmaps header extension is gone from the header", m_file.path()), EIO);
}

void Qcow2Image::abandon_bitmaps() {
    m_bitmaps.reset();
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
