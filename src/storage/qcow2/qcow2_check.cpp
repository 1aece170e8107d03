// Consistency check and repair: recount every reference from the header, L1/L2 tables, refcount
// structures and snapshots, and compare with the stored refcounts (like `qemu-img check`).
#include <fmt/format.h>

#include <cstring>

#include "base/log.h"
#include "storage/endian.h"
#include "storage/qcow2/qcow2_bitmaps.h"
#include "storage/qcow2/qcow2_image.h"

namespace corral::storage::qcow2 {

namespace {
constexpr uint64_t k_max_check_clusters = 1ull << 27;  // 512 MiB of counters at most
constexpr size_t k_max_messages = 200;

// What a cluster holds, for the clusters that hold metadata. A guest data cluster (or an L2 table)
// placed on one of them is a corruption whatever the refcounts say: the refcount recount alone
// sees only "one reference too many", which a refcount rebuild would turn into a clean-looking
// image whose guest data is the L1 table (and whose writer refuses writes: check_data_target).
enum class Meta : uint8_t {
    None,
    L2,
    Header,
    L1,
    RefcountTable,
    RefcountBlock,
    SnapshotTable,
    SnapshotL1,
    BitmapDirectory,
    Bitmap
};

const char* meta_name(Meta m) {
    switch (m) {
    case Meta::None: return "nothing";
    case Meta::L2: return "an L2 table";
    case Meta::Header: return "the header";
    case Meta::L1: return "the L1 table";
    case Meta::RefcountTable: return "the refcount table";
    case Meta::RefcountBlock: return "a refcount block";
    case Meta::SnapshotTable: return "the snapshot table";
    case Meta::SnapshotL1: return "a snapshot's L1 table";
    case Meta::BitmapDirectory:
        return "the bitmap directory";
    case Meta::Bitmap:
        return "a dirty bitmap's table or data";
    }
    return "metadata";
}

// An L2 entry whose data cluster lies on metadata, remembered for the repair.
struct BadEntry {
    uint64_t l2_offset;
    uint64_t index;
};

/// What a repair reports: the check that followed it, with what it fixed (counted against the
/// check before it) and the messages of both, the first check's first.
CheckResult after_repair(CheckResult before, CheckResult after) {
    after.corruptions_fixed = before.corruptions > after.corruptions ? before.corruptions - after.corruptions : 0;
    after.leaks_fixed = before.leaks > after.leaks ? before.leaks - after.leaks : 0;
    before.messages.insert(before.messages.end(), after.messages.begin(), after.messages.end());
    after.messages = std::move(before.messages);
    return after;
}

}  // namespace

Result<CheckResult> Qcow2Image::check(Repair repair) {
    if (!m_read_only) TRY_VOID(flush());
    CheckResult r;
    const uint64_t file_size = m_file_size;
    const uint64_t nclusters = (file_size + m_cluster_size - 1) >> m_cluster_bits;
    if (nclusters > k_max_check_clusters)
        return fail(fmt::format("'{}' has {} clusters, more than check can count ({})", m_file.path(), nclusters,
                                k_max_check_clusters));
    std::vector<uint32_t> refs(nclusters, 0);
    auto note = [&](std::string message) {
        if (r.messages.size() < k_max_messages) r.messages.push_back(std::move(message));
    };
    auto corrupt = [&](std::string message) {
        ++r.corruptions;
        note("ERROR " + message);
    };
    auto inc = [&](uint64_t off, uint64_t len, const std::string& what) {
        if (!len) return;
        for (uint64_t c = off >> m_cluster_bits; c <= (off + len - 1) >> m_cluster_bits; ++c) {
            if (c >= nclusters) {
                corrupt(fmt::format("{} at {:#x} lies outside the {}-byte file", what, off, file_size));
                return;
            }
            ++refs[c];
        }
    };

    // Metadata clusters by kind: L2 tables first, so that an L1 entry naming the header or the
    // refcount table as its L2 table leaves the fixed structure's name on that cluster.
    std::vector<Meta> meta(nclusters, Meta::None);
    auto mark = [&](uint64_t off, uint64_t len, Meta kind) {
        if (!len) return;
        for (uint64_t c = off >> m_cluster_bits; c < nclusters && c <= (off + len - 1) >> m_cluster_bits; ++c)
            meta[c] = kind;
    };
    auto meta_at = [&](uint64_t off, uint64_t len) {
        for (uint64_t c = off >> m_cluster_bits; len && c < nclusters && c <= (off + len - 1) >> m_cluster_bits; ++c)
            if (meta[c] != Meta::None) return meta[c];
        return Meta::None;
    };
    std::vector<std::vector<uint64_t>> snapshot_l1s;
    for (const auto& s : m_snapshots) snapshot_l1s.push_back(TRY(read_l1(s.l1_table_offset, s.l1_size)));
    auto mark_l2_tables = [&](const std::vector<uint64_t>& l1) {
        for (uint64_t e : l1)
            if (uint64_t off = e & k_offset_mask; off && off % m_cluster_size == 0) mark(off, m_cluster_size, Meta::L2);
    };
    mark_l2_tables(m_l1);
    for (const auto& l1 : snapshot_l1s) mark_l2_tables(l1);
    mark(0, m_cluster_size, Meta::Header);
    mark(m_header.l1_table_offset, uint64_t(m_header.l1_size) * 8, Meta::L1);
    mark(m_header.refcount_table_offset, uint64_t(m_header.refcount_table_clusters) * m_cluster_size,
         Meta::RefcountTable);
    for (uint64_t e : m_refcount_table)
        if (uint64_t off = e & k_offset_mask; off && off % m_cluster_size == 0)
            mark(off, m_cluster_size, Meta::RefcountBlock);
    if (m_header.nb_snapshots) mark(m_header.snapshots_offset, m_snapshot_table_bytes, Meta::SnapshotTable);
    for (const auto& s : m_snapshots) mark(s.l1_table_offset, uint64_t(s.l1_size) * 8, Meta::SnapshotL1);
    std::vector<BadEntry> bad_entries;  // data on metadata, in L2 tables that are real L2 tables
    std::vector<size_t> bad_l1;         // active L1 entries whose "L2 table" is other metadata

    inc(0, m_cluster_size, "header");
    inc(m_header.l1_table_offset, uint64_t(m_header.l1_size) * 8, "L1 table");
    inc(m_header.refcount_table_offset, uint64_t(m_header.refcount_table_clusters) * m_cluster_size,
        "refcount table");
    if (m_header.nb_snapshots) inc(m_header.snapshots_offset, m_snapshot_table_bytes, "snapshot table");
    for (size_t i = 0; i < m_refcount_table.size(); ++i) {
        uint64_t off = m_refcount_table[i] & k_offset_mask;
        if (!off) continue;
        if (m_refcount_table[i] & 511 || off % m_cluster_size)
            corrupt(fmt::format("refcount block {} has unaligned offset {:#x}", i, m_refcount_table[i]));
        else
            inc(off, m_cluster_size, fmt::format("refcount block {}", i));
    }
    // Persistent dirty bitmaps (qcow2.txt "Bitmaps extension"): the directory, each bitmap's
    // table and the clusters it names are referenced. Stale ones (autoclear bit clear: a writer
    // that keeps no bitmaps wrote the image) are not: QEMU drops them unread, and so does its
    // check, which shows their clusters as leaks.
    if (auto bitmaps = read_bitmaps(*this); !bitmaps) {
        corrupt(fmt::format("bitmaps: {}", bitmaps.error().message()));
    } else if (!bitmaps->consistent && !bitmaps->bitmaps.empty()) {
        note("the bitmaps are stale (autoclear bit clear): their clusters show as leaks");
    } else if (!bitmaps->bitmaps.empty()) {
        const HeaderExtension* ext = nullptr;
        for (const auto& e : m_header.other_extensions)
            if (e.type == k_ext_bitmaps)
                ext = &e;
        const uint64_t dir_size = load_be64(ext->data.data() + 8), dir_offset = load_be64(ext->data.data() + 16);
        inc(dir_offset, dir_size, "bitmap directory");
        mark(dir_offset, dir_size, Meta::BitmapDirectory);
        for (const auto& b : bitmaps->bitmaps) {
            const uint64_t table_bytes = uint64_t(b.table_size) * 8;
            if (b.table_offset % m_cluster_size || b.table_offset > file_size ||
                table_bytes > file_size - b.table_offset) {
                corrupt(fmt::format("bitmap '{}': table at {:#x} is unaligned or outside the file", b.name,
                                    b.table_offset));
                continue;
            }
            inc(b.table_offset, table_bytes, fmt::format("bitmap '{}' table", b.name));
            mark(b.table_offset, table_bytes, Meta::Bitmap);
            std::vector<uint8_t> entries(table_bytes);
            TRY_VOID(m_file.read_exact(b.table_offset, entries));
            for (uint32_t i = 0; i < b.table_size; ++i) {
                const uint64_t off = load_be64(&entries[size_t(i) * 8]) & k_offset_mask;
                if (!off)
                    continue;
                if (off % m_cluster_size) {
                    corrupt(fmt::format("bitmap '{}' table entry {}: unaligned offset {:#x}", b.name, i, off));
                    continue;
                }
                inc(off, m_cluster_size, fmt::format("bitmap '{}' data cluster {}", b.name, i));
                mark(off, m_cluster_size, Meta::Bitmap);
            }
        }
    }

    std::vector<uint8_t> table(m_cluster_size);
    auto walk = [&](const std::vector<uint64_t>& l1, bool active, const std::string& label) -> Result<void> {
        for (size_t i = 0; i < l1.size(); ++i) {
            uint64_t off = l1[i] & k_offset_mask;
            if (!off) continue;
            if (off % m_cluster_size) {
                corrupt(fmt::format("{} L1 entry {} has unaligned L2 offset {:#x}", label, i, off));
                continue;
            }
            if (off + m_cluster_size > file_size) {
                corrupt(fmt::format("{} L1 entry {}: L2 table at {:#x} lies outside the file", label, i, off));
                continue;
            }
            inc(off, m_cluster_size, "L2 table");
            const Meta l2_place = meta_at(off, m_cluster_size);
            if (l2_place != Meta::L2) {
                corrupt(fmt::format("{} L1 entry {}: L2 table at {:#x} is {}", label, i, off, meta_name(l2_place)));
                if (active) bad_l1.push_back(i);
            }
            if (active) {
                bool exclusive = TRY(refcount(off >> m_cluster_bits)) == 1;
                if (exclusive != bool(l1[i] & k_copied))
                    corrupt(fmt::format("OFLAG_COPIED L2 cluster: l1_index={} l1_entry={:x} refcount={}", i, l1[i],
                                        exclusive ? 1 : 0));
            }
            TRY_VOID(m_file.read_exact(off, table));
            for (uint64_t j = 0; j < m_l2_entries; ++j) {
                uint64_t entry = load_be64(&table[j * m_l2_entry_bytes]);
                uint64_t guest = ((uint64_t(i) * m_l2_entries) + j) << m_cluster_bits;
                if (entry & k_compressed) {
                    CompressedDescriptor d = decode_compressed(entry, m_cluster_bits);
                    if (active) ++r.allocated_clusters;
                    uint64_t length = d.host_offset < file_size ? std::min(d.length, file_size - d.host_offset) : d.length;
                    inc(d.host_offset, length, fmt::format("compressed cluster for guest offset {:#x}", guest));
                    if (Meta on = meta_at(d.host_offset, length); on != Meta::None) {
                        corrupt(fmt::format("{} guest offset {:#x}: compressed data at {:#x} lies on {}", label, guest,
                                            d.host_offset, meta_name(on)));
                        if (l2_place == Meta::L2) bad_entries.push_back({off, j});
                    }
                    continue;
                }
                uint64_t host = entry & k_offset_mask;
                if (!host) continue;
                if (active && !(entry & k_zero)) ++r.allocated_clusters;
                if (host % m_cluster_size) {
                    corrupt(fmt::format("{} guest offset {:#x}: data cluster {:#x} is unaligned", label, guest, host));
                    continue;
                }
                inc(host, m_cluster_size, fmt::format("data cluster for guest offset {:#x}", guest));
                if (Meta on = meta_at(host, m_cluster_size); on != Meta::None) {
                    corrupt(fmt::format("{} guest offset {:#x}: data cluster {:#x} is {}", label, guest, host,
                                        meta_name(on)));
                    if (l2_place == Meta::L2) bad_entries.push_back({off, j});
                }
                if (active && !m_header.extended_l2()) {
                    uint64_t rc = TRY(refcount(host >> m_cluster_bits));
                    if ((rc == 1) != bool(entry & k_copied))
                        corrupt(fmt::format("OFLAG_COPIED data cluster: l2_entry={:x} refcount={}", entry, rc));
                }
            }
        }
        return {};
    };
    TRY_VOID(walk(m_l1, true, "active"));
    for (size_t k = 0; k < m_snapshots.size(); ++k) {
        const auto& s = m_snapshots[k];
        inc(s.l1_table_offset, uint64_t(s.l1_size) * 8, fmt::format("snapshot '{}' L1 table", s.name));
        TRY_VOID(walk(snapshot_l1s[k], false, fmt::format("snapshot '{}'", s.name)));
    }

    uint64_t last_used = 0;
    for (uint64_t c = 0; c < nclusters; ++c) {
        auto stored = refcount(c);
        if (!stored) {
            ++r.check_errors;
            note(fmt::format("cannot read the refcount of cluster {}: {}", c, stored.error().describe()));
            continue;
        }
        if (*stored || refs[c]) last_used = c + 1;
        if (*stored == refs[c]) continue;
        if (*stored > refs[c]) {
            ++r.leaks;
            note(fmt::format("Leaked cluster {} refcount={} reference={}", c, *stored, refs[c]));
        } else {
            corrupt(fmt::format("cluster {} refcount={} reference={}", c, *stored, refs[c]));
        }
    }
    r.image_end_offset = last_used << m_cluster_bits;
    r.total_clusters = (size() + m_cluster_size - 1) >> m_cluster_bits;

    const bool flagged = m_header.incompatible_features & (k_incompat_dirty | k_incompat_corrupt);
    if (repair == Repair::No || m_read_only || (!r.corruptions && !r.leaks && !flagged)) return r;

    // Guest data on metadata cannot be kept (it *is* the metadata): those L2 entries go (the guest
    // cluster reads as unallocated again: zeroes, or the backing file), and so do active L1
    // entries naming other metadata as their L2 table. Then everything is counted again.
    if (!bad_entries.empty() || !bad_l1.empty()) {
        m_l2_cache.clear();
        for (const BadEntry& bad : bad_entries) {
            TRY_VOID(m_file.read_exact(bad.l2_offset, table));
            std::fill_n(table.begin() + bad.index * m_l2_entry_bytes, m_l2_entry_bytes, uint8_t{0});
            TRY_VOID(write_host(bad.l2_offset, table));
            note(fmt::format("Repairing: dropped the L2 entry {} of the L2 table at {:#x} (its data lay on metadata)",
                             bad.index, bad.l2_offset));
        }
        for (size_t i : bad_l1) {
            m_l1[i] = 0;
            note(fmt::format("Repairing: dropped active L1 entry {} (its L2 table lay on other metadata)", i));
        }
        if (!bad_l1.empty()) TRY_VOID(write_table(m_header.l1_table_offset, m_l1, 0));
        TRY_VOID(m_file.sync());
        return after_repair(std::move(r), TRY(check(Repair::Yes)));
    }

    // Repair: exact copied flags from the recount, then fresh refcount structures.
    m_l2_cache.clear();
    m_refblock_cache.clear();
    bool l1_changed = false;
    for (auto& e : m_l1) {
        uint64_t off = e & k_offset_mask;
        if (!off || off % m_cluster_size || off + m_cluster_size > file_size) continue;
        bool exclusive = refs[off >> m_cluster_bits] == 1;
        uint64_t want = exclusive ? (e | k_copied) : (e & ~k_copied);
        l1_changed |= want != e;
        e = want;
        if (!exclusive) continue;
        TRY_VOID(m_file.read_exact(off, table));
        bool changed = false;
        for (uint64_t j = 0; j < m_l2_entries; ++j) {
            uint64_t entry = load_be64(&table[j * m_l2_entry_bytes]);
            uint64_t host = entry & k_offset_mask;
            if ((entry & k_compressed) || !host || host % m_cluster_size || (host >> m_cluster_bits) >= nclusters)
                continue;
            uint64_t next = refs[host >> m_cluster_bits] == 1 ? (entry | k_copied) : (entry & ~k_copied);
            if (next != entry) {
                store_be64(&table[j * m_l2_entry_bytes], next);
                changed = true;
            }
        }
        if (changed) TRY_VOID(write_host(off, table));
    }
    if (l1_changed) TRY_VOID(write_table(m_header.l1_table_offset, m_l1, 0));
    TRY_VOID(m_file.sync());
    TRY_VOID(rebuild_refcounts(refs));
    TRY_VOID(set_incompatible(m_header.incompatible_features & ~(k_incompat_dirty | k_incompat_corrupt)));
    return after_repair(std::move(r), TRY(check(Repair::No)));
}

Result<void> Qcow2Image::set_incompatible(uint64_t bits) {
    if (m_header.version < 3) return {};
    uint8_t raw[8];
    store_be64(raw, bits);
    TRY_VOID(write_header_fields(72, raw));
    m_header.incompatible_features = bits;
    return {};
}

Result<void> Qcow2Image::rebuild_refcounts(const std::vector<uint32_t>& counted) {
    // The old refcount table and blocks are replaced, so they no longer count.
    std::vector<uint32_t> refs = counted;
    auto drop = [&](uint64_t off, uint64_t len) {
        for (uint64_t c = off >> m_cluster_bits; c < refs.size() && c <= (off + len - 1) >> m_cluster_bits; ++c)
            if (refs[c]) --refs[c];
    };
    drop(m_header.refcount_table_offset, uint64_t(m_header.refcount_table_clusters) * m_cluster_size);
    for (uint64_t e : m_refcount_table)
        if ((e & k_offset_mask) && (e & k_offset_mask) % m_cluster_size == 0) drop(e & k_offset_mask, m_cluster_size);
    const uint64_t per = m_refblock_entries;
    const uint64_t max = m_header.refcount_order == 6 ? UINT64_MAX : (1ull << (1u << m_header.refcount_order)) - 1;
    const uint64_t base = std::max<uint64_t>(refs.size(), m_end_cluster);
    auto block_used = [&](uint64_t ti, uint64_t total) {
        uint64_t lo = ti * per, hi = lo + per;
        if (hi > base && lo < total) return true;
        for (uint64_t c = lo; c < std::min<uint64_t>(hi, refs.size()); ++c)
            if (refs[c]) return true;
        return false;
    };
    uint64_t table_clusters = 1, blocks = 0, total = 0;
    for (int round = 0; round < 64; ++round) {
        total = base + table_clusters + blocks;
        uint64_t ti_count = (total + per - 1) / per;
        uint64_t need_tc = (ti_count * 8 + m_cluster_size - 1) / m_cluster_size;
        uint64_t need_blocks = 0;
        for (uint64_t ti = 0; ti < ti_count; ++ti) need_blocks += block_used(ti, total);
        if (need_tc <= table_clusters && need_blocks == blocks) break;
        table_clusters = std::max(table_clusters, need_tc);
        blocks = need_blocks;
    }
    if (table_clusters * m_cluster_size > k_max_refcount_table_bytes)
        return fail("rebuilding refcounts: the refcount table would be too large");
    std::vector<uint64_t> table(table_clusters * m_cluster_size / 8, 0);
    uint64_t next = base + table_clusters;
    std::vector<uint8_t> block(m_cluster_size);
    for (uint64_t ti = 0; ti * per < total; ++ti) {
        if (!block_used(ti, total)) continue;
        std::fill(block.begin(), block.end(), 0);
        for (uint64_t i = 0; i < per; ++i) {
            uint64_t c = ti * per + i;
            uint64_t v = c < refs.size() ? refs[c] : 0;
            if (c >= base && c < total) v = 1;
            if (v > max) return fail(fmt::format("rebuilding refcounts: cluster {} has {} references", c, v));
            if (!v) continue;
            // Same encoding as the refcount block readers (big-endian, LSB-first sub-byte).
            uint32_t order = m_header.refcount_order;
            if (order >= 3) {
                uint64_t bytes = (1ull << order) / 8;
                for (uint64_t b = 0; b < bytes; ++b) block[i * bytes + b] = uint8_t(v >> (8 * (bytes - 1 - b)));
            } else {
                uint64_t bits = 1ull << order, bit = i * bits;
                block[bit / 8] |= uint8_t(v << (bit % 8));
            }
        }
        table[ti] = next << m_cluster_bits;
        TRY_VOID(write_host(next << m_cluster_bits, block));
        ++next;
    }
    TRY_VOID(write_table(base << m_cluster_bits, table, table_clusters));
    TRY_VOID(m_file.sync());
    uint8_t fields[12];
    store_be64(fields, base << m_cluster_bits);
    store_be32(fields + 8, uint32_t(table_clusters));
    TRY_VOID(write_header_fields(48, fields));
    m_header.refcount_table_offset = base << m_cluster_bits;
    m_header.refcount_table_clusters = uint32_t(table_clusters);
    m_refcount_table = std::move(table);
    m_refblock_cache.clear();
    m_end_cluster = total;
    m_free_hint = 1;
    log_info("qcow2: rebuilt the refcount structures of '{}'", m_file.path());
    return {};
}

}  // namespace corral::storage::qcow2
