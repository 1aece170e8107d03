// Internal snapshots (qcow2.txt "Snapshots"): the snapshot table, L1 copies and the refcount
// updates that make later writes copy-on-write.
#include <fmt/format.h>

#include <cstring>
#include <ctime>

#include "storage/endian.h"
#include "storage/qcow2/qcow2_image.h"

namespace corral::storage::qcow2 {

Result<size_t> Qcow2Image::find_snapshot(const std::string& name_or_id) const {
    for (size_t i = 0; i < m_snapshots.size(); ++i)
        if (m_snapshots[i].name == name_or_id) return i;
    for (size_t i = 0; i < m_snapshots.size(); ++i)
        if (m_snapshots[i].id == name_or_id) return i;
    return fail(fmt::format("'{}' has no snapshot named '{}'", m_file.path(), name_or_id));
}

Result<void> Qcow2Image::view_snapshot(const std::string& name_or_id) {
    const Snapshot s = m_snapshots[TRY(find_snapshot(name_or_id))];
    // load_tables() checked that the snapshot's L1 table lies inside the file; lookup() treats
    // entries past its end as unallocated, so a snapshot taken before a resize reads right.
    m_l1 = TRY_CONTEXT(read_l1(s.l1_table_offset, s.l1_size),
                       fmt::format("reading the L1 table of snapshot '{}'", s.name));
    m_header.size = s.disk_size.value_or(m_header.size);
    m_header.l1_size = s.l1_size;
    m_header.l1_table_offset = s.l1_table_offset;
    m_decompressed_entry = 0;
    return {};
}

Result<void> Qcow2Image::adjust_tree(const std::vector<uint64_t>& l1, int64_t delta) {
    for (uint64_t e : l1) {
        uint64_t off = e & k_offset_mask;
        if (!off) continue;
        std::vector<uint8_t> table(m_cluster_size);
        {
            const uint8_t* cached = TRY(load_l2(off));
            std::memcpy(table.data(), cached, m_cluster_size);
        }
        for (uint64_t j = 0; j < m_l2_entries; ++j) {
            uint64_t entry = load_be64(&table[j * m_l2_entry_bytes]);
            if (entry & k_compressed) {
                CompressedDescriptor d = decode_compressed(entry, m_cluster_bits);
                for (uint64_t c = d.host_offset >> m_cluster_bits; c <= (d.host_offset + d.length - 1) >> m_cluster_bits; ++c)
                    TRY_VOID(adjust_refcount(c, delta));
            } else if (uint64_t host = entry & k_offset_mask) {
                TRY_VOID(adjust_refcount(host >> m_cluster_bits, delta));
            }
        }
        TRY_VOID(adjust_refcount(off >> m_cluster_bits, delta));
    }
    return {};
}

Result<void> Qcow2Image::refresh_copied_flags() {
    bool l1_changed = false;
    for (auto& e : m_l1) {
        uint64_t off = e & k_offset_mask;
        if (!off) continue;
        bool exclusive = TRY(refcount(off >> m_cluster_bits)) == 1;
        uint64_t want = exclusive ? (e | k_copied) : (e & ~k_copied);
        if (want != e) {
            e = want;
            l1_changed = true;
        }
        if (!exclusive) continue;  // a shared table is never modified in place
        for (uint64_t j = 0; j < m_l2_entries; ++j) {
            uint8_t* table = TRY(load_l2(off));
            uint64_t entry = load_be64(table + j * m_l2_entry_bytes);
            uint64_t host = entry & k_offset_mask;
            uint64_t next = entry;
            if (entry & k_compressed)
                continue;
            else if (host)
                next = TRY(refcount(host >> m_cluster_bits)) == 1 ? (entry | k_copied) : (entry & ~k_copied);
            if (next != entry) TRY_VOID(set_l2_entry(off, j, next));
        }
    }
    if (l1_changed) {
        TRY_VOID(flush());
        TRY_VOID(write_table(m_header.l1_table_offset, m_l1, 0));
    }
    return {};
}

Result<void> Qcow2Image::write_snapshot_table(std::vector<Snapshot> snapshots) {
    std::vector<uint8_t> bytes = serialize_snapshot_table(snapshots);
    if (bytes.size() > k_max_snapshot_table_bytes) return fail("the snapshot table would exceed 64 MiB");
    uint64_t fresh = 0;
    if (!snapshots.empty()) {
        uint64_t clusters = (bytes.size() + m_cluster_size - 1) / m_cluster_size;
        fresh = TRY(alloc_clusters(clusters));
        if (TRY(flush_refblocks())) TRY_VOID(m_file.sync());
        bytes.resize(clusters * m_cluster_size, 0);
        TRY_VOID(write_host(fresh, bytes));
        TRY_VOID(m_file.sync());
    }
    uint8_t fields[12];
    store_be32(fields, uint32_t(snapshots.size()));
    store_be64(fields + 4, fresh);
    TRY_VOID(write_header_fields(60, fields));
    uint64_t old = m_header.snapshots_offset, old_bytes = m_snapshot_table_bytes;
    bool had = m_header.nb_snapshots != 0;
    m_header.nb_snapshots = uint32_t(snapshots.size());
    m_header.snapshots_offset = fresh;
    m_snapshot_table_bytes = serialize_snapshot_table(snapshots).size();
    m_snapshots = std::move(snapshots);
    if (had && old_bytes)
        for (uint64_t c = old >> m_cluster_bits; c <= (old + old_bytes - 1) >> m_cluster_bits; ++c)
            TRY_VOID(adjust_refcount(c, -1));
    return {};
}

Result<void> Qcow2Image::create_snapshot(const std::string& name) {
    if (m_read_only) return fail(fmt::format("'{}' is open read-only", m_file.path()), EROFS);
    if (name.empty() || name.size() > 65535)
        return fail(fmt::format("snapshot name must be 1 to 65535 bytes, got {}", name.size()));
    for (const auto& s : m_snapshots)
        if (s.name == name) return fail(fmt::format("'{}' already has a snapshot named '{}'", m_file.path(), name));
    if (m_snapshots.size() >= k_max_snapshots) return fail("too many snapshots");
    TRY_VOID(flush());
    // Every L2 table and cluster reachable from the active L1 gains a reference (the snapshot's).
    TRY_VOID(adjust_tree(m_l1, +1));
    if (TRY(flush_refblocks())) TRY_VOID(m_file.sync());
    // Now nothing in the active tables is exclusively owned: clear the copied flags.
    for (auto& e : m_l1) {
        uint64_t off = e & k_offset_mask;
        if (!off) continue;
        e &= ~k_copied;
        for (uint64_t j = 0; j < m_l2_entries; ++j) {
            uint8_t* table = TRY(load_l2(off));
            uint64_t entry = load_be64(table + j * m_l2_entry_bytes);
            if (entry & k_copied) TRY_VOID(set_l2_entry(off, j, entry & ~k_copied));
        }
    }
    TRY_VOID(flush());
    uint64_t clusters = (uint64_t(m_l1.size()) * 8 + m_cluster_size - 1) / m_cluster_size;
    TRY_VOID(write_table(m_header.l1_table_offset, m_l1, 0));
    uint64_t copy = 0;
    if (clusters) {
        copy = TRY(alloc_clusters(clusters));
        if (TRY(flush_refblocks())) TRY_VOID(m_file.sync());
        TRY_VOID(write_table(copy, m_l1, clusters));
    }
    TRY_VOID(m_file.sync());

    Snapshot s;
    s.l1_table_offset = copy;
    s.l1_size = uint32_t(m_l1.size());
    uint64_t max_id = 0;
    for (const auto& other : m_snapshots) max_id = std::max<uint64_t>(max_id, strtoull(other.id.c_str(), nullptr, 10));
    s.id = std::to_string(max_id + 1);
    s.name = name;
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    s.date_sec = uint32_t(now.tv_sec);
    s.date_nsec = uint32_t(now.tv_nsec);
    s.disk_size = size();
    s.icount = UINT64_MAX;
    auto list = m_snapshots;
    list.push_back(std::move(s));
    TRY_VOID(write_snapshot_table(std::move(list)));
    return flush();
}

Result<void> Qcow2Image::revert_snapshot(const std::string& name_or_id) {
    if (m_read_only) return fail(fmt::format("'{}' is open read-only", m_file.path()), EROFS);
    size_t index = TRY(find_snapshot(name_or_id));
    Snapshot s = m_snapshots[index];
    if (s.vm_state_size)
        return fail(fmt::format("snapshot '{}' holds VM state, which corral-img cannot restore", s.name));
    // The whole disk changes behind the bitmaps: they become stale (the next backup reads in full).
    TRY_VOID(drop_bitmaps());
    TRY_VOID(flush());
    std::vector<uint64_t> l1 = TRY(read_l1(s.l1_table_offset, s.l1_size));
    uint64_t disk_size = s.disk_size.value_or(size());
    uint64_t needed = l1_entries_for(disk_size, m_cluster_bits, false);
    if (l1.size() < needed) l1.resize(needed, 0);
    for (auto& e : l1) e &= ~k_copied;
    TRY_VOID(adjust_tree(l1, +1));
    uint64_t clusters = (uint64_t(l1.size()) * 8 + m_cluster_size - 1) / m_cluster_size;
    uint64_t fresh = clusters ? TRY(alloc_clusters(clusters)) : 0;
    if (TRY(flush_refblocks())) TRY_VOID(m_file.sync());
    if (clusters) TRY_VOID(write_table(fresh, l1, clusters));
    TRY_VOID(m_file.sync());
    uint8_t fields[24] = {};
    store_be64(fields, disk_size);
    store_be32(fields + 8, m_header.crypt_method);
    store_be32(fields + 12, uint32_t(l1.size()));
    store_be64(fields + 16, fresh);
    TRY_VOID(write_header_fields(24, fields));
    std::vector<uint64_t> old = std::move(m_l1);
    uint64_t old_offset = m_header.l1_table_offset;
    uint64_t old_clusters = (uint64_t(old.size()) * 8 + m_cluster_size - 1) / m_cluster_size;
    m_l1 = std::move(l1);
    m_header.size = disk_size;
    m_header.l1_size = uint32_t(m_l1.size());
    m_header.l1_table_offset = fresh;
    m_decompressed_entry = 0;
    TRY_VOID(adjust_tree(old, -1));
    if (old_offset)
        for (uint64_t c = 0; c < old_clusters; ++c) TRY_VOID(adjust_refcount((old_offset >> m_cluster_bits) + c, -1));
    TRY_VOID(refresh_copied_flags());
    return flush();
}

Result<void> Qcow2Image::delete_snapshot(const std::string& name_or_id) {
    if (m_read_only) return fail(fmt::format("'{}' is open read-only", m_file.path()), EROFS);
    size_t index = TRY(find_snapshot(name_or_id));
    Snapshot s = m_snapshots[index];
    TRY_VOID(flush());
    std::vector<uint64_t> l1 = TRY(read_l1(s.l1_table_offset, s.l1_size));
    auto list = m_snapshots;
    list.erase(list.begin() + long(index));
    TRY_VOID(write_snapshot_table(std::move(list)));
    TRY_VOID(adjust_tree(l1, -1));
    uint64_t clusters = (uint64_t(s.l1_size) * 8 + m_cluster_size - 1) / m_cluster_size;
    if (s.l1_table_offset)
        for (uint64_t c = 0; c < clusters; ++c) TRY_VOID(adjust_refcount((s.l1_table_offset >> m_cluster_bits) + c, -1));
    TRY_VOID(refresh_copied_flags());
    return flush();
}

}  // namespace corral::storage::qcow2
