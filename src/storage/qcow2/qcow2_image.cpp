#include "storage/qcow2/qcow2_image.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "base/log.h"
#include "storage/endian.h"
#include "storage/qcow2/compression.h"
#include "storage/qcow2/kept_bitmaps.h"

namespace corral::storage::qcow2 {

namespace {
constexpr size_t k_max_pending_frees = 4096;

uint64_t round_up(uint64_t value, uint64_t align) { return (value + align - 1) / align * align; }
}  // namespace

/// How one guest cluster is stored.
struct Qcow2Image::Mapping {
    enum class Kind { Unallocated, Zero, Normal, Compressed, Extended } kind = Kind::Unallocated;
    uint64_t entry = 0;
    uint64_t bitmap = 0;  // extended L2 only
    uint64_t host = 0;    // Normal/Extended: cluster offset
    bool l1_copied = false;
};

Qcow2Image::Qcow2Image(File file, Header header, std::unique_ptr<BlockDevice> backing, bool read_only,
                       size_t cache_bytes)
    : m_file(std::move(file)),
      m_header(std::move(header)),
      m_backing(std::move(backing)),
      m_read_only(read_only),
      m_cluster_bits(m_header.cluster_bits),
      m_cluster_size(m_header.cluster_size()),
      m_l2_entries(m_cluster_size / (m_header.extended_l2() ? 16 : 8)),
      m_l2_entry_bytes(m_header.extended_l2() ? 16 : 8),
      m_refblock_entries(m_cluster_size * 8 >> m_header.refcount_order),
      m_l2_cache(std::max<size_t>(16, cache_bytes * 3 / 4 / m_cluster_size)),
      m_refblock_cache(std::max<size_t>(8, cache_bytes / 4 / m_cluster_size)) {}

Qcow2Image::~Qcow2Image() {
    if (m_read_only) return;
    // A bitmap that cannot be stored stays in use on disk: readers know not to trust it.
    if (auto r = store_bitmaps(); !r)
        log_error("qcow2: storing the dirty bitmaps of '{}' on close: {}", m_file.path(), r.error().describe());
    if (auto r = flush(); !r) log_error("qcow2: flushing '{}' on close: {}", m_file.path(), r.error().describe());
}

// ---------------------------------------------------------------------------------------------
// Open and create

Result<std::unique_ptr<Qcow2Image>> Qcow2Image::open(File file, const OpenOptions& options,
                                                     const BackingOpener& open_backing) {
    const bool read_only = options.access == Access::ReadOnly || !file.writable();
    uint64_t file_size = TRY(file.size());
    std::vector<uint8_t> first(std::min<uint64_t>(file_size, 1u << k_max_cluster_bits));
    TRY_VOID(file.read_exact(0, first));
    Header header = TRY_CONTEXT(parse_header(first, file_size), fmt::format("'{}'", file.path()));
    if (header.incompatible_features & k_incompat_data_file)
        return fail(fmt::format("'{}' uses an external data file, which is not supported", file.path()));
    if (!read_only && (header.incompatible_features & k_incompat_corrupt))
        return fail(fmt::format("'{}' is marked corrupt; open it read-only, or run 'corral-img check --repair'",
                                file.path()));
    if (!read_only && header.extended_l2())
        return fail(fmt::format("'{}' uses extended L2 entries, which are supported read-only", file.path()));
    std::unique_ptr<BlockDevice> backing;
    if (!header.backing_file.empty()) backing = TRY(open_backing(header));

    std::unique_ptr<Qcow2Image> image(
        new Qcow2Image(std::move(file), std::move(header), std::move(backing), read_only, options.cache_bytes));
    image->m_file_size = file_size;
    image->m_end_cluster = (file_size + image->m_cluster_size - 1) >> image->m_cluster_bits;
    TRY_VOID(image->load_tables());
    if (!options.snapshot.empty()) {
        if (!read_only)
            return fail(fmt::format("'{}': a view of snapshot '{}' is read-only; open it with read-only access",
                                    image->m_file.path(), options.snapshot),
                        EINVAL);
        TRY_VOID(image->view_snapshot(options.snapshot));
    }
    if (!read_only) {
        // The repair counts the bitmaps' clusters while the autoclear bit still says they hold.
        if (image->m_header.incompatible_features & k_incompat_dirty) {
            log_warning("qcow2: '{}' was not closed cleanly (dirty bit set); rebuilding refcounts",
                        image->m_file.path());
            TRY_VOID(image->check(Repair::Yes));
        }
        TRY_VOID(image->open_bitmaps());
    }
    return image;
}

Result<void> Qcow2Image::load_tables() {
    m_l1 = TRY_CONTEXT(read_l1(m_header.l1_table_offset, m_header.l1_size), "reading the L1 table");
    uint64_t rt_bytes = uint64_t(m_header.refcount_table_clusters) * m_cluster_size;
    std::vector<uint8_t> raw(rt_bytes);
    TRY_VOID(m_file.read_exact(m_header.refcount_table_offset, raw));
    m_refcount_table.resize(rt_bytes / 8);
    for (size_t i = 0; i < m_refcount_table.size(); ++i) m_refcount_table[i] = load_be64(&raw[i * 8]);
    m_snapshots.clear();
    m_snapshot_table_bytes = 0;
    if (m_header.nb_snapshots) {
        uint64_t bound = std::min<uint64_t>(
            {m_file_size - m_header.snapshots_offset, k_max_snapshot_table_bytes,
             uint64_t(m_header.nb_snapshots) * (40 + k_max_snapshot_extra + 2 * 65535 + 8)});
        std::vector<uint8_t> table(bound);
        TRY_VOID(m_file.read_exact(m_header.snapshots_offset, table));
        size_t consumed = 0;
        m_snapshots = TRY_CONTEXT(parse_snapshot_table(table, m_header.nb_snapshots, &consumed),
                                  fmt::format("'{}'", m_file.path()));
        m_snapshot_table_bytes = consumed;
        for (const auto& s : m_snapshots) {
            if (s.l1_size && (s.l1_table_offset % m_cluster_size != 0 || s.l1_table_offset == 0 ||
                              s.l1_table_offset > m_file_size || uint64_t(s.l1_size) * 8 > m_file_size - s.l1_table_offset))
                return fail(fmt::format("'{}': snapshot '{}' L1 table ({} entries at {:#x}) is unaligned or outside "
                                        "the file", m_file.path(), s.name, s.l1_size, s.l1_table_offset));
        }
    }
    return {};
}

Result<std::vector<uint64_t>> Qcow2Image::read_l1(uint64_t offset, uint32_t entries) {
    if (uint64_t(entries) * 8 > k_max_l1_bytes) return fail(fmt::format("L1 table of {} entries is too large", entries));
    std::vector<uint8_t> raw(uint64_t(entries) * 8);
    if (!raw.empty()) TRY_VOID(m_file.read_exact(offset, raw));
    std::vector<uint64_t> l1(entries);
    for (size_t i = 0; i < entries; ++i) l1[i] = load_be64(&raw[i * 8]);
    return l1;
}

Result<void> Qcow2Image::create(const std::string& path, const CreateOptions& options) {
    if (options.cluster_bits < k_min_cluster_bits || options.cluster_bits > k_max_cluster_bits)
        return fail(fmt::format("cluster size {} is out of range (allowed: 512 to 2M, a power of two)",
                                1ull << options.cluster_bits));
    if (options.version != 2 && options.version != 3)
        return fail(fmt::format("qcow2 version {} is not supported (allowed: 2, 3)", options.version));
    if (options.refcount_order > 6 || (options.version == 2 && options.refcount_order != 4))
        return fail(fmt::format("refcount order {} is not allowed (0..6, and 4 for version 2)", options.refcount_order));
    if (options.size > k_max_virtual_size) return fail(fmt::format("size {} is too large", options.size));

    Header h;
    h.version = options.version;
    h.cluster_bits = options.cluster_bits;
    h.refcount_order = options.refcount_order;
    h.backing_file = options.backing_file;
    h.backing_format = options.backing_format;
    h.compression_type = options.compression;
    if (options.compression != CompressionType::Zlib) {
        if (options.version < 3) return fail("zstd compression needs qcow2 version 3");
        h.incompatible_features |= k_incompat_compression;
    }
    const uint64_t cs = h.cluster_size();
    h.refcount_table_offset = cs;
    h.refcount_table_clusters = 1;
    h.l1_size = 0;
    h.l1_table_offset = 0;
    h.size = 0;
    if (h.version >= 3)
        h.feature_names = {{0, 0, "dirty bit"},          {0, 1, "corrupt bit"},     {0, 2, "external data file"},
                           {0, 3, "compression type"},   {0, 4, "extended L2 entries"}, {1, 0, "lazy refcounts"},
                           {2, 0, "bitmaps"},            {2, 1, "raw external data"}};
    std::vector<uint8_t> header = TRY(serialize_header(h));

    File file = TRY(File::create(path, CreateMode::Exclusive));
    // Cluster 0 header, 1 refcount table, 2 the first refcount block (refcounting clusters 0-2).
    std::vector<uint8_t> block(cs * 3, 0);
    std::copy(header.begin(), header.end(), block.begin());
    store_be64(&block[cs], 2 * cs);
    for (uint64_t c = 0; c < 3; ++c) {
        uint8_t* rb = &block[2 * cs];
        uint64_t bits = 1ull << h.refcount_order;
        uint64_t bit = c * bits;
        if (bits >= 8) {
            rb[(bit + bits) / 8 - 1] = 1;  // big-endian: the last byte of the entry
        } else {
            rb[bit / 8] |= uint8_t(1u << (bit % 8));
        }
    }
    TRY_VOID(file.write_all(0, block));
    TRY_VOID(file.sync());
    // Grow to the requested size through the ordinary resize path (allocates the L1 table).
    auto image = TRY(open(std::move(file), OpenOptions{.access = Access::ReadWrite},
                          [](const Header&) -> Result<std::unique_ptr<BlockDevice>> { return nullptr; }));
    TRY_VOID(image->resize(options.size));
    return image->flush();
}

// ---------------------------------------------------------------------------------------------
// Host file helpers

Result<void> Qcow2Image::write_host(uint64_t offset, std::span<const uint8_t> data) {
    TRY_VOID(m_file.write_all(offset, data));
    m_file_size = std::max(m_file_size, offset + data.size());
    m_unsynced = true;
    return {};
}

Result<void> Qcow2Image::ensure_file_size(uint64_t size) {
    if (size <= m_file_size) return {};
    TRY_VOID(m_file.truncate(size));
    m_file_size = size;
    return {};
}

Result<void> Qcow2Image::write_header_fields(uint64_t offset, std::span<const uint8_t> bytes) {
    TRY_VOID(m_file.write_all(offset, bytes));
    return m_file.sync();
}

Result<void> Qcow2Image::check_data_target(uint64_t host) const {
    struct {
        const char* name;
        uint64_t start, length;
    } areas[] = {{"header", 0, m_cluster_size},
                 {"L1 table", m_header.l1_table_offset, uint64_t(m_header.l1_size) * 8},
                 {"refcount table", m_header.refcount_table_offset,
                  uint64_t(m_header.refcount_table_clusters) * m_cluster_size},
                 {"snapshot table", m_header.snapshots_offset, m_snapshot_table_bytes}};
    for (const auto& a : areas)
        if (a.length && host < a.start + a.length && a.start < host + m_cluster_size)
            return fail(fmt::format("'{}': refusing to write guest data over the {} at {:#x} (the image is "
                                    "corrupt; run 'corral-img check --repair')", m_file.path(), a.name, host), EIO);
    return {};
}

// ---------------------------------------------------------------------------------------------
// Refcounts

Result<uint8_t*> Qcow2Image::load_refblock(uint64_t offset, bool for_write) {
    if (auto* e = m_refblock_cache.find(offset)) {
        if (for_write) e->dirty = true;
        return e->data.data();
    }
    if (offset % m_cluster_size != 0 || offset + m_cluster_size > std::max(m_file_size, m_end_cluster << m_cluster_bits))
        return fail(fmt::format("'{}': refcount block at {:#x} is unaligned or outside the file", m_file.path(),
                                offset), EIO);
    if (m_refblock_cache.full()) {
        auto* victim = m_refblock_cache.lru();
        if (victim->dirty) TRY_VOID(write_host(victim->offset, victim->data));
        m_refblock_cache.evict_lru();
    }
    std::vector<uint8_t> data(m_cluster_size);
    TRY_VOID(m_file.read_zero_fill(offset, data));
    return m_refblock_cache.insert(offset, std::move(data), for_write)->data.data();
}

namespace {
uint64_t get_entry(const uint8_t* block, uint64_t i, uint32_t order) {
    switch (order) {
        case 3: return block[i];
        case 4: return load_be16(block + i * 2);
        case 5: return load_be32(block + i * 4);
        case 6: return load_be64(block + i * 8);
        default: {
            uint64_t bits = 1ull << order, bit = i * bits;
            return (block[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
        }
    }
}
void set_entry(uint8_t* block, uint64_t i, uint32_t order, uint64_t v) {
    switch (order) {
        case 3: block[i] = uint8_t(v); break;
        case 4: store_be16(block + i * 2, uint16_t(v)); break;
        case 5: store_be32(block + i * 4, uint32_t(v)); break;
        case 6: store_be64(block + i * 8, v); break;
        default: {
            uint64_t bits = 1ull << order, bit = i * bits;
            uint8_t mask = uint8_t(((1u << bits) - 1) << (bit % 8));
            block[bit / 8] = uint8_t((block[bit / 8] & ~mask) | ((v << (bit % 8)) & mask));
        }
    }
}
}  // namespace

Result<uint64_t> Qcow2Image::refcount(uint64_t cluster) {
    uint64_t ti = cluster / m_refblock_entries;
    if (ti >= m_refcount_table.size()) return 0;
    uint64_t off = m_refcount_table[ti] & k_offset_mask;
    if (!off) return 0;
    uint8_t* block = TRY(load_refblock(off, false));
    return get_entry(block, cluster % m_refblock_entries, m_header.refcount_order);
}

Result<void> Qcow2Image::set_refcount(uint64_t cluster, uint64_t value) {
    uint64_t ti = cluster / m_refblock_entries;
    if (ti >= m_refcount_table.size()) {
        if (value == 0) return {};
        TRY_VOID(grow_refcount_table(ti));
    }
    if (!(m_refcount_table[ti] & k_offset_mask)) {
        if (value == 0) return {};
        TRY_VOID(allocate_refblock(ti));
    }
    uint8_t* block = TRY(load_refblock(m_refcount_table[ti] & k_offset_mask, true));
    set_entry(block, cluster % m_refblock_entries, m_header.refcount_order, value);
    return {};
}

Result<void> Qcow2Image::adjust_refcount(uint64_t cluster, int64_t delta) {
    uint64_t current = TRY(refcount(cluster));
    uint64_t max = m_header.refcount_order == 6 ? UINT64_MAX : (1ull << (1u << m_header.refcount_order)) - 1;
    if (delta < 0 && current < uint64_t(-delta))
        return fail(fmt::format("'{}': refcount of cluster {:#x} would drop below zero (the image is corrupt)",
                                m_file.path(), cluster << m_cluster_bits), EIO);
    if (delta > 0 && max - current < uint64_t(delta))
        return fail(fmt::format("'{}': refcount of cluster {:#x} would exceed {}", m_file.path(),
                                cluster << m_cluster_bits, max), EIO);
    uint64_t next = current + uint64_t(delta);
    TRY_VOID(set_refcount(cluster, next));
    if (next == 0) {
        m_free_hint = std::min(m_free_hint, cluster);
        uint64_t off = cluster << m_cluster_bits;
        m_l2_cache.erase(off);  // a freed table must not be found again by offset
        if (off < m_file_size) TRY_VOID(m_file.punch_hole(off, m_cluster_size));
    }
    return {};
}

Result<void> Qcow2Image::allocate_refblock(uint64_t ti) {
    const uint64_t at = m_end_cluster++;
    std::vector<uint8_t> block(m_cluster_size, 0);
    if (at / m_refblock_entries == ti) {
        set_entry(block.data(), at % m_refblock_entries, m_header.refcount_order, 1);  // covers itself
    } else {
        TRY_VOID(set_refcount(at, 1));
        if (m_refcount_table[ti] & k_offset_mask) return {};  // the recursion created it already
    }
    // The block's own refcount, then the block, then the table entry pointing at it.
    TRY_VOID(flush_refblocks());
    TRY_VOID(write_host(at << m_cluster_bits, block));
    TRY_VOID(m_file.sync());
    uint8_t entry[8];
    store_be64(entry, at << m_cluster_bits);
    TRY_VOID(write_host(m_header.refcount_table_offset + ti * 8, entry));
    m_refcount_table[ti] = at << m_cluster_bits;
    if (m_refblock_cache.full()) {
        auto* victim = m_refblock_cache.lru();
        if (victim->dirty) TRY_VOID(write_host(victim->offset, victim->data));
        m_refblock_cache.evict_lru();
    }
    m_refblock_cache.insert(at << m_cluster_bits, std::move(block), false);
    return {};
}

Result<void> Qcow2Image::grow_refcount_table(uint64_t needed_index) {
    const uint64_t per = m_refblock_entries;
    const auto& old = m_refcount_table;
    uint64_t entries = round_up(std::max<uint64_t>(old.size() * 2, needed_index + 1), m_cluster_size / 8);
    uint64_t start = 0, table_clusters = 0, blocks = 0;
    auto needs_block = [&](uint64_t ti) { return ti >= old.size() || !(old[ti] & k_offset_mask); };
    while (true) {
        if (entries * 8 > k_max_refcount_table_bytes)
            return fail(fmt::format("'{}': the refcount table would exceed {} bytes", m_file.path(),
                                    k_max_refcount_table_bytes));
        table_clusters = entries * 8 / m_cluster_size;
        start = m_end_cluster;
        blocks = 0;
        while (true) {
            uint64_t end = start + table_clusters + blocks, need = 0;
            for (uint64_t ti = start / per; ti <= (end - 1) / per; ++ti) need += needs_block(ti);
            if (need == blocks) break;
            blocks = need;
        }
        if ((start + table_clusters + blocks - 1) / per < entries) break;
        entries *= 2;
    }
    std::vector<uint64_t> table(entries, 0);
    std::copy(old.begin(), old.end(), table.begin());
    const uint64_t end = start + table_clusters + blocks;
    std::vector<std::pair<uint64_t, std::vector<uint8_t>>> new_blocks;
    uint64_t next_block = start + table_clusters;
    for (uint64_t ti = start / per; ti <= (end - 1) / per; ++ti)
        if (needs_block(ti)) {
            table[ti] = next_block << m_cluster_bits;
            new_blocks.push_back({ti, std::vector<uint8_t>(m_cluster_size, 0)});
            ++next_block;
        }
    m_end_cluster = end;
    for (uint64_t c = start; c < end; ++c) {
        uint64_t ti = c / per;
        auto it = std::find_if(new_blocks.begin(), new_blocks.end(), [&](auto& b) { return b.first == ti; });
        if (it != new_blocks.end())
            set_entry(it->second.data(), c % per, m_header.refcount_order, 1);
        else
            TRY_VOID(set_refcount(c, 1));  // an existing block covers it
    }
    TRY_VOID(flush_refblocks());
    for (auto& [ti, data] : new_blocks) TRY_VOID(write_host(table[ti], data));
    TRY_VOID(write_table(start << m_cluster_bits, table, table_clusters));
    TRY_VOID(m_file.sync());
    uint8_t fields[12];
    store_be64(fields, start << m_cluster_bits);
    store_be32(fields + 8, uint32_t(table_clusters));
    TRY_VOID(write_header_fields(48, fields));
    uint64_t old_offset = m_header.refcount_table_offset, old_clusters = m_header.refcount_table_clusters;
    m_header.refcount_table_offset = start << m_cluster_bits;
    m_header.refcount_table_clusters = uint32_t(table_clusters);
    m_refcount_table = std::move(table);
    for (uint64_t c = 0; c < old_clusters; ++c) TRY_VOID(adjust_refcount((old_offset >> m_cluster_bits) + c, -1));
    return {};
}

Result<void> Qcow2Image::write_table(uint64_t offset, const std::vector<uint64_t>& entries, uint64_t clusters) {
    std::vector<uint8_t> raw(std::max<uint64_t>(clusters * m_cluster_size, entries.size() * 8), 0);
    for (size_t i = 0; i < entries.size(); ++i) store_be64(&raw[i * 8], entries[i]);
    return write_host(offset, raw);
}

Result<bool> Qcow2Image::flush_refblocks() {
    bool wrote = false;
    std::vector<TableCache::Entry*> dirty;
    m_refblock_cache.for_each([&](TableCache::Entry& e) {
        if (e.dirty) dirty.push_back(&e);
    });
    for (auto* e : dirty) {
        TRY_VOID(write_host(e->offset, e->data));
        e->dirty = false;
        wrote = true;
    }
    return wrote;
}

Result<uint64_t> Qcow2Image::alloc_clusters(uint64_t count) {
    uint64_t idx = std::max<uint64_t>(m_free_hint, 1), start = 0;
    while (true) {
        if (idx >= m_end_cluster) {
            start = idx;
            break;
        }
        bool ok = true;
        for (uint64_t k = 0; k < count && idx + k < m_end_cluster; ++k) {
            if (TRY(refcount(idx + k)) != 0) {
                ok = false;
                idx = idx + k + 1;
                break;
            }
        }
        if (ok) {
            start = idx;
            break;
        }
    }
    m_end_cluster = std::max(m_end_cluster, start + count);
    for (uint64_t k = 0; k < count; ++k) TRY_VOID(set_refcount(start + k, 1));
    m_free_hint = start + count;
    return start << m_cluster_bits;
}

void Qcow2Image::schedule_free(uint64_t host, uint64_t length) {
    for (uint64_t c = host >> m_cluster_bits; c <= (host + length - 1) >> m_cluster_bits; ++c)
        m_pending_free.push_back(c);
}

Result<void> Qcow2Image::apply_pending_frees() {
    auto pending = std::move(m_pending_free);
    m_pending_free.clear();
    for (uint64_t c : pending) TRY_VOID(adjust_refcount(c, -1));
    return {};
}

// ---------------------------------------------------------------------------------------------
// L1/L2

Result<void> Qcow2Image::make_room_in_l2_cache() {
    if (!m_l2_cache.full()) return {};
    auto* victim = m_l2_cache.lru();
    if (victim->dirty) {
        // Refcounts first: the table may reference freshly allocated clusters.
        if (TRY(flush_refblocks())) TRY_VOID(m_file.sync());
        TRY_VOID(write_host(victim->offset, victim->data));
    }
    m_l2_cache.evict_lru();
    return {};
}

Result<uint8_t*> Qcow2Image::load_l2(uint64_t offset) {
    if (auto* e = m_l2_cache.find(offset)) return e->data.data();
    if (offset % m_cluster_size != 0 || offset > m_file_size || m_file_size - offset < m_cluster_size)
        return fail(fmt::format("'{}': L2 table at {:#x} is unaligned or outside the {}-byte file", m_file.path(),
                                offset, m_file_size), EIO);
    TRY_VOID(make_room_in_l2_cache());
    std::vector<uint8_t> data(m_cluster_size);
    TRY_VOID(m_file.read_exact(offset, data));
    return m_l2_cache.insert(offset, std::move(data), false)->data.data();
}

Result<void> Qcow2Image::set_l2_entry(uint64_t l2_offset, uint64_t index, uint64_t value) {
    uint8_t* table = TRY(load_l2(l2_offset));
    store_be64(table + index * m_l2_entry_bytes, value);
    m_l2_cache.find(l2_offset)->dirty = true;
    return {};
}

Result<void> Qcow2Image::write_l1_entry(uint64_t index) {
    uint8_t raw[8];
    store_be64(raw, m_l1[index]);
    return write_host(m_header.l1_table_offset + index * 8, raw);
}

Result<void> Qcow2Image::flush_l2_tables() {
    std::vector<TableCache::Entry*> dirty;
    m_l2_cache.for_each([&](TableCache::Entry& e) {
        if (e.dirty) dirty.push_back(&e);
    });
    for (auto* e : dirty) {
        TRY_VOID(write_host(e->offset, e->data));
        e->dirty = false;
    }
    return {};
}

Result<Qcow2Image::Mapping> Qcow2Image::lookup(uint64_t guest_cluster) {
    Mapping m;
    uint64_t l1i = guest_cluster / m_l2_entries;
    if (l1i >= m_l1.size()) return m;
    uint64_t l1e = m_l1[l1i];
    uint64_t l2 = l1e & k_offset_mask;
    if (!l2) return m;
    m.l1_copied = l1e & k_copied;
    const uint8_t* table = TRY(load_l2(l2));
    const uint8_t* e = table + (guest_cluster % m_l2_entries) * m_l2_entry_bytes;
    m.entry = load_be64(e);
    if (m.entry & k_compressed) {
        m.kind = Mapping::Kind::Compressed;
        return m;
    }
    m.host = m.entry & k_offset_mask;
    if (m_header.extended_l2()) {
        m.bitmap = load_be64(e + 8);
        m.kind = Mapping::Kind::Extended;
    } else if (m_header.version >= 3 && (m.entry & k_zero)) {
        m.kind = Mapping::Kind::Zero;
    } else if (m.host) {
        m.kind = Mapping::Kind::Normal;
    }
    if ((m.kind == Mapping::Kind::Normal || (m.kind == Mapping::Kind::Extended && (m.bitmap & 0xffffffffu))) &&
        (m.host % m_cluster_size != 0 || m.host >= m_file_size))
        return fail(fmt::format("'{}': guest cluster {:#x} maps to host offset {:#x}, which is unaligned or "
                                "outside the {}-byte file", m_file.path(), guest_cluster << m_cluster_bits, m.host,
                                m_file_size), EIO);
    return m;
}

// ---------------------------------------------------------------------------------------------
// Reads

Result<void> Qcow2Image::read_backing(uint64_t guest_offset, std::span<uint8_t> out) {
    uint64_t available = 0;
    if (m_backing && guest_offset < m_backing->size())
        available = std::min<uint64_t>(out.size(), m_backing->size() - guest_offset);
    if (available) TRY_VOID(m_backing->read_at(guest_offset, out.subspan(0, available)));
    std::memset(out.data() + available, 0, out.size() - available);
    return {};
}

Result<void> Qcow2Image::read_cluster_part(uint64_t guest_offset, std::span<uint8_t> out, const Mapping& m) {
    const uint64_t in = guest_offset & (m_cluster_size - 1);
    switch (m.kind) {
        case Mapping::Kind::Unallocated: return read_backing(guest_offset, out);
        case Mapping::Kind::Zero: std::memset(out.data(), 0, out.size()); return {};
        case Mapping::Kind::Normal: return m_file.read_zero_fill(m.host + in, out);
        case Mapping::Kind::Compressed: {
            if (m_decompressed_entry != m.entry || m_decompressed.size() != m_cluster_size) {
                CompressedDescriptor d = decode_compressed(m.entry, m_cluster_bits);
                if (d.host_offset >= m_file_size)
                    return fail(fmt::format("'{}': compressed cluster at {:#x} lies outside the file", m_file.path(),
                                            d.host_offset), EIO);
                std::vector<uint8_t> packed(std::min<uint64_t>(d.length, m_file_size - d.host_offset));
                TRY_VOID(m_file.read_exact(d.host_offset, packed));
                m_decompressed.resize(m_cluster_size);
                m_decompressed_entry = 0;
                auto decoded = decompress_cluster(m_header.compression_type, packed, m_decompressed);
                if (!decoded)
                    return fail(decoded.error().with_context(
                        fmt::format("'{}': guest offset {:#x}", m_file.path(), guest_offset - in)));
                m_decompressed_entry = m.entry;
            }
            std::memcpy(out.data(), m_decompressed.data() + in, out.size());
            return {};
        }
        case Mapping::Kind::Extended: {
            const uint64_t sub = m_cluster_size / 32;
            for (uint64_t done = 0; done < out.size();) {
                uint64_t pos = in + done, sc = pos / sub;
                uint64_t n = std::min<uint64_t>(out.size() - done, (sc + 1) * sub - pos);
                auto part = out.subspan(done, n);
                if (m.bitmap & (1ull << sc))
                    TRY_VOID(m_file.read_zero_fill(m.host + pos, part));
                else if (m.bitmap & (1ull << (sc + 32)))
                    std::memset(part.data(), 0, n);
                else
                    TRY_VOID(read_backing(guest_offset + done, part));
                done += n;
            }
            return {};
        }
    }
    return {};
}

Result<void> Qcow2Image::read_at(uint64_t offset, std::span<uint8_t> buffer) {
    TRY_VOID(check_range("read", offset, buffer.size()));
    uint64_t done = 0;
    // Runs of clusters that are contiguous in the host file are read with one pread.
    uint64_t run_host = 0, run_start = 0, run_len = 0;
    auto flush_run = [&]() -> Result<void> {
        if (run_len) TRY_VOID(m_file.read_zero_fill(run_host, buffer.subspan(run_start, run_len)));
        run_len = 0;
        return {};
    };
    while (done < buffer.size()) {
        uint64_t pos = offset + done, in = pos & (m_cluster_size - 1);
        uint64_t n = std::min<uint64_t>(buffer.size() - done, m_cluster_size - in);
        Mapping m = TRY(lookup(pos >> m_cluster_bits));
        if (m.kind == Mapping::Kind::Normal) {
            if (run_len && run_host + run_len == m.host + in) {
                run_len += n;
            } else {
                TRY_VOID(flush_run());
                run_host = m.host + in;
                run_start = done;
                run_len = n;
            }
        } else {
            TRY_VOID(flush_run());
            TRY_VOID(read_cluster_part(pos, buffer.subspan(done, n), m));
        }
        done += n;
    }
    return flush_run();
}

// ---------------------------------------------------------------------------------------------
// Writes

Result<uint64_t> Qcow2Image::l2_for_write(uint64_t l1i) {
    if (l1i >= m_l1.size()) return fail(fmt::format("'{}': L1 index {} out of range", m_file.path(), l1i), EIO);
    uint64_t l1e = m_l1[l1i];
    uint64_t old = l1e & k_offset_mask;
    if (old && (l1e & k_copied)) return old;
    std::vector<uint8_t> table(m_cluster_size, 0);
    if (old) {
        const uint8_t* src = TRY(load_l2(old));
        std::memcpy(table.data(), src, m_cluster_size);
    }
    uint64_t fresh = TRY(alloc_clusters(1));
    TRY_VOID(check_data_target(fresh));
    // refcount -> table -> L1 entry, with barriers so the order also holds on power loss.
    if (TRY(flush_refblocks())) TRY_VOID(m_file.sync());
    TRY_VOID(write_host(fresh, table));
    TRY_VOID(m_file.sync());
    TRY_VOID(make_room_in_l2_cache());
    m_l2_cache.insert(fresh, std::move(table), false);
    m_l1[l1i] = fresh | k_copied;
    TRY_VOID(write_l1_entry(l1i));
    if (old) m_pending_free.push_back(old >> m_cluster_bits);
    return fresh;
}

Result<void> Qcow2Image::write_cluster_part(uint64_t guest_offset, std::span<const uint8_t> data) {
    const uint64_t gc = guest_offset >> m_cluster_bits, in = guest_offset & (m_cluster_size - 1);
    Mapping m = TRY(lookup(gc));
    if (m.kind == Mapping::Kind::Normal && (m.entry & k_copied) && m.l1_copied) {
        TRY_VOID(check_data_target(m.host));
        return write_host(m.host + in, data);
    }
    const uint64_t l2 = TRY(l2_for_write(gc / m_l2_entries));
    const uint64_t fresh = TRY(alloc_clusters(1));
    TRY_VOID(check_data_target(fresh));
    const bool fresh_is_past_eof = fresh >= m_file_size;
    if (data.size() == m_cluster_size) {
        TRY_VOID(write_host(fresh, data));
    } else {
        bool old_reads_zero = m.kind == Mapping::Kind::Zero || (m.kind == Mapping::Kind::Unallocated && !m_backing);
        if (old_reads_zero && fresh_is_past_eof) {
            // The new cluster lies past the end of the file, so it already reads as zeros.
            TRY_VOID(write_host(fresh + in, data));
            TRY_VOID(ensure_file_size(fresh + m_cluster_size));
        } else {
            std::vector<uint8_t> cluster(m_cluster_size);
            uint64_t base = gc << m_cluster_bits;
            uint64_t valid = std::min<uint64_t>(m_cluster_size, size() - base);
            TRY_VOID(read_cluster_part(base, std::span(cluster).subspan(0, valid), m));
            std::memset(cluster.data() + valid, 0, m_cluster_size - valid);
            std::memcpy(cluster.data() + in, data.data(), data.size());
            TRY_VOID(write_host(fresh, cluster));
        }
    }
    if (m.kind == Mapping::Kind::Compressed) {
        CompressedDescriptor d = decode_compressed(m.entry, m_cluster_bits);
        schedule_free(d.host_offset, d.length);
    } else if (m.host && m.kind != Mapping::Kind::Unallocated) {
        m_pending_free.push_back(m.host >> m_cluster_bits);  // shared or zero-allocated cluster
    }
    return set_l2_entry(l2, gc % m_l2_entries, fresh | k_copied);
}

Result<void> Qcow2Image::write_at(uint64_t offset, std::span<const uint8_t> data) {
    if (m_read_only) return fail(fmt::format("'{}' is open read-only", m_file.path()), EROFS);
    TRY_VOID(check_range("write", offset, data.size()));
    mark_dirty(offset, data.size());
    uint64_t done = 0;
    uint64_t run_host = 0, run_start = 0, run_len = 0;
    auto flush_run = [&]() -> Result<void> {
        if (run_len) TRY_VOID(write_host(run_host, data.subspan(run_start, run_len)));
        run_len = 0;
        return {};
    };
    while (done < data.size()) {
        uint64_t pos = offset + done, in = pos & (m_cluster_size - 1);
        uint64_t n = std::min<uint64_t>(data.size() - done, m_cluster_size - in);
        Mapping m = TRY(lookup(pos >> m_cluster_bits));
        if (m.kind == Mapping::Kind::Normal && (m.entry & k_copied) && m.l1_copied) {
            TRY_VOID(check_data_target(m.host));
            if (run_len && run_host + run_len == m.host + in) {
                run_len += n;
            } else {
                TRY_VOID(flush_run());
                run_host = m.host + in;
                run_start = done;
                run_len = n;
            }
        } else {
            TRY_VOID(flush_run());
            TRY_VOID(write_cluster_part(pos, data.subspan(done, n)));
        }
        done += n;
    }
    TRY_VOID(flush_run());
    if (m_pending_free.size() > k_max_pending_frees) TRY_VOID(flush());
    return {};
}

Result<void> Qcow2Image::zero_clusters(uint64_t offset, uint64_t length) {
    // Whole clusters only. Without a backing file, unallocated reads as zeros; with one, v3 uses
    // the zero flag and v2 has to store zeros.
    const bool need_flag = m_backing != nullptr;
    for (uint64_t pos = offset; pos < offset + length; pos += m_cluster_size) {
        uint64_t gc = pos >> m_cluster_bits;
        Mapping m = TRY(lookup(gc));
        if (need_flag && m_header.version < 3) {
            std::vector<uint8_t> zeros(m_cluster_size, 0);
            TRY_VOID(write_cluster_part(pos, zeros));
            continue;
        }
        if (m.kind == Mapping::Kind::Unallocated && !need_flag) continue;
        if (m.kind == Mapping::Kind::Zero && !m.host) continue;
        if (m.kind == Mapping::Kind::Unallocated && (gc / m_l2_entries) >= m_l1.size()) continue;
        uint64_t l2 = TRY(l2_for_write(gc / m_l2_entries));
        if (m.kind == Mapping::Kind::Compressed) {
            CompressedDescriptor d = decode_compressed(m.entry, m_cluster_bits);
            schedule_free(d.host_offset, d.length);
        } else if (m.host) {
            m_pending_free.push_back(m.host >> m_cluster_bits);
        }
        TRY_VOID(set_l2_entry(l2, gc % m_l2_entries, need_flag ? k_zero : 0));
    }
    if (m_pending_free.size() > k_max_pending_frees) TRY_VOID(flush());
    return {};
}

Result<void> Qcow2Image::write_zeroes(uint64_t offset, uint64_t length) {
    if (m_read_only) return fail(fmt::format("'{}' is open read-only", m_file.path()), EROFS);
    TRY_VOID(check_range("write_zeroes", offset, length));
    mark_dirty(offset, length);
    uint64_t end = offset + length;
    uint64_t first = round_up(offset, m_cluster_size);
    uint64_t last = end == size() ? round_up(end, m_cluster_size) : end & ~(m_cluster_size - 1);
    auto zero_bytes = [&](uint64_t from, uint64_t to) -> Result<void> {
        if (to <= from) return {};
        std::vector<uint8_t> zeros(to - from, 0);
        return write_at(from, zeros);
    };
    if (first >= last) return zero_bytes(offset, end);
    TRY_VOID(zero_bytes(offset, first));
    TRY_VOID(zero_clusters(first, last - first));
    if (last < end) TRY_VOID(zero_bytes(last, end));
    return {};
}

Result<void> Qcow2Image::discard(uint64_t offset, uint64_t length) {
    if (m_read_only) return fail(fmt::format("'{}' is open read-only", m_file.path()), EROFS);
    TRY_VOID(check_range("discard", offset, length));
    mark_dirty(offset, length);
    uint64_t end = offset + length;
    uint64_t first = round_up(offset, m_cluster_size);
    uint64_t last = end == size() ? round_up(end, m_cluster_size) : end & ~(m_cluster_size - 1);
    if (first >= last) return {};  // partial clusters: discard is only a hint
    return zero_clusters(first, last - first);
}

Result<void> Qcow2Image::write_compressed(uint64_t guest_offset, std::span<const uint8_t> data) {
    if (m_read_only) return fail(fmt::format("'{}' is open read-only", m_file.path()), EROFS);
    if (guest_offset % m_cluster_size != 0 || data.size() > m_cluster_size ||
        (data.size() < m_cluster_size && guest_offset + data.size() != size()))
        return fail("write_compressed needs one whole, aligned cluster", EINVAL);
    TRY_VOID(check_range("compressed write", guest_offset, data.size()));
    mark_dirty(guest_offset, data.size());
    std::vector<uint8_t> cluster(m_cluster_size, 0);
    std::memcpy(cluster.data(), data.data(), data.size());
    auto packed = TRY(compress_cluster(m_header.compression_type, cluster, m_cluster_size - 512));
    const uint64_t gc = guest_offset >> m_cluster_bits;
    Mapping m = TRY(lookup(gc));
    if (packed.empty() || m.kind != Mapping::Kind::Unallocated) return write_at(guest_offset, data);
    const uint64_t l2 = TRY(l2_for_write(gc / m_l2_entries));
    uint64_t host;
    uint64_t cursor_in = m_compressed_cursor & (m_cluster_size - 1);
    if (m_compressed_cursor && cursor_in + packed.size() <= m_cluster_size) {
        host = m_compressed_cursor;
        TRY_VOID(adjust_refcount(host >> m_cluster_bits, +1));
    } else {
        host = TRY(alloc_clusters((packed.size() + m_cluster_size - 1) / m_cluster_size));
    }
    TRY_VOID(check_data_target(host & ~(m_cluster_size - 1)));
    TRY_VOID(write_host(host, packed));
    TRY_VOID(ensure_file_size(round_up(host + packed.size(), m_cluster_size)));
    m_compressed_cursor = round_up(host + packed.size(), 512);
    if ((m_compressed_cursor & (m_cluster_size - 1)) == 0) m_compressed_cursor = 0;
    return set_l2_entry(l2, gc % m_l2_entries, encode_compressed(host, packed.size(), m_cluster_bits));
}

Result<void> Qcow2Image::flush() {
    if (m_read_only) return {};
    bool wrote = TRY(flush_refblocks());
    if (wrote) TRY_VOID(m_file.sync());
    TRY_VOID(flush_l2_tables());
    if (!m_pending_free.empty()) {
        TRY_VOID(m_file.sync());  // the references are gone on disk before the refcounts drop
        TRY_VOID(apply_pending_frees());
        TRY_VOID(flush_refblocks());
    }
    TRY_VOID(m_file.sync());
    m_unsynced = false;
    return {};
}

// ---------------------------------------------------------------------------------------------
// Resize

Result<void> Qcow2Image::grow_l1(uint64_t entries) {
    if (entries * 8 > k_max_l1_bytes)
        return fail(fmt::format("'{}': the L1 table would need {} entries (limit {})", m_file.path(), entries,
                                k_max_l1_bytes / 8));
    TRY_VOID(flush());
    uint64_t clusters = (entries * 8 + m_cluster_size - 1) / m_cluster_size;
    uint64_t fresh = TRY(alloc_clusters(clusters));
    if (TRY(flush_refblocks())) TRY_VOID(m_file.sync());
    std::vector<uint64_t> l1 = m_l1;
    l1.resize(entries, 0);
    TRY_VOID(write_table(fresh, l1, clusters));
    TRY_VOID(m_file.sync());
    uint8_t fields[12];
    store_be32(fields, uint32_t(entries));
    store_be64(fields + 4, fresh);
    TRY_VOID(write_header_fields(36, fields));
    uint64_t old = m_header.l1_table_offset, old_clusters = (uint64_t(m_header.l1_size) * 8 + m_cluster_size - 1) / m_cluster_size;
    m_header.l1_table_offset = fresh;
    m_header.l1_size = uint32_t(entries);
    m_l1 = std::move(l1);
    if (old)
        for (uint64_t c = 0; c < old_clusters; ++c) TRY_VOID(adjust_refcount((old >> m_cluster_bits) + c, -1));
    return flush();
}

Result<void> Qcow2Image::resize(uint64_t new_size) {
    if (m_read_only) return fail(fmt::format("'{}' is open read-only", m_file.path()), EROFS);
    if (new_size < size())
        return fail(fmt::format("shrinking '{}' from {} to {} bytes is not supported", m_file.path(), size(),
                                new_size));
    if (new_size > k_max_virtual_size) return fail(fmt::format("size {} is too large", new_size));
    // The bitmaps cover the old size; a writer that resizes keeps none (QEMU resizes them).
    if (new_size != size())
        TRY_VOID(drop_bitmaps());
    uint64_t entries = l1_entries_for(new_size, m_cluster_bits, m_header.extended_l2());
    if (entries > m_l1.size()) TRY_VOID(grow_l1(entries));
    uint8_t raw[8];
    store_be64(raw, new_size);
    TRY_VOID(write_header_fields(24, raw));
    m_header.size = new_size;
    return {};
}

// ---------------------------------------------------------------------------------------------
// Block status

Result<Extent> Qcow2Image::block_status(uint64_t offset, uint64_t max_length) {
    TRY_VOID(check_range("block status", offset, max_length));
    Extent out{.offset = offset, .length = 0};
    uint64_t pos = offset, end = offset + max_length;
    bool first = true;
    while (pos < end) {
        uint64_t in = pos & (m_cluster_size - 1);
        uint64_t n = std::min<uint64_t>(end - pos, m_cluster_size - in);
        Mapping m = TRY(lookup(pos >> m_cluster_bits));
        Extent e{.offset = pos, .length = n};
        switch (m.kind) {
            case Mapping::Kind::Unallocated:
                if (m_backing) {
                    if (pos >= m_backing->size()) {
                        e.kind = ExtentKind::Zero;
                        e.depth = 1;
                    } else {
                        Extent b = TRY(m_backing->block_status(pos, std::min(n, m_backing->size() - pos)));
                        e = b;
                        e.depth = b.depth + 1;
                        if (b.kind == ExtentKind::Unallocated) e.kind = ExtentKind::Zero;
                    }
                } else {
                    e.kind = ExtentKind::Unallocated;
                }
                break;
            case Mapping::Kind::Zero: e.kind = ExtentKind::Zero; break;
            case Mapping::Kind::Normal:
            case Mapping::Kind::Extended:
                e.kind = ExtentKind::Data;
                e.has_host_offset = true;
                e.host_offset = m.host + in;
                break;
            case Mapping::Kind::Compressed:
                e.kind = ExtentKind::Data;
                e.compressed = true;
                break;
        }
        if (first) {
            out = e;
            first = false;
        } else {
            bool same = e.kind == out.kind && e.depth == out.depth && e.compressed == out.compressed &&
                        e.has_host_offset == out.has_host_offset && !e.compressed &&
                        (!e.has_host_offset || e.host_offset == out.host_offset + out.length);
            if (!same) break;
            out.length += e.length;
        }
        pos += e.length;
        if (out.length >= (64u << 20)) break;  // keep each call bounded
    }
    return out;
}

}  // namespace corral::storage::qcow2
