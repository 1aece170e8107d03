#include "storage/qcow2/format.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "storage/endian.h"

namespace corral::storage::qcow2 {

namespace {

struct Range {
    const char* name;
    uint64_t start;
    uint64_t length;
};

bool overlaps(const Range& a, const Range& b) {
    return a.length && b.length && a.start < b.start + b.length && b.start < a.start + a.length;
}

}  // namespace

std::string Header::feature_name(uint8_t type, uint8_t bit) const {
    for (const auto& f : feature_names)
        if (f.type == type && f.bit == bit) return f.name;
    if (type == 0) {
        static const char* names[] = {"dirty bit", "corrupt bit", "external data file", "compression type",
                                      "extended L2 entries"};
        if (bit < 5) return names[bit];
    }
    return fmt::format("bit {}", bit);
}

uint64_t l1_entries_for(uint64_t size, uint32_t cluster_bits, bool extended_l2) {
    uint64_t cluster_size = 1ull << cluster_bits;
    uint64_t l2_entries = cluster_size / (extended_l2 ? 16 : 8);
    uint64_t clusters = (size + cluster_size - 1) >> cluster_bits;
    return (clusters + l2_entries - 1) / l2_entries;
}

Result<Header> parse_header(std::span<const uint8_t> data, uint64_t file_size) {
    if (data.size() < k_v2_header_length)
        return fail(fmt::format("file is too small to be a qcow2 image ({} bytes, the header needs {})",
                                data.size(), k_v2_header_length));
    const uint8_t* p = data.data();
    if (load_be32(p) != k_magic) return fail("not a qcow2 image (bad magic)");
    Header h;
    h.version = load_be32(p + 4);
    if (h.version != 2 && h.version != 3)
        return fail(fmt::format("unsupported qcow2 version {} (supported: 2, 3)", h.version));
    h.backing_file_offset = load_be64(p + 8);
    h.backing_file_size = load_be32(p + 16);
    h.cluster_bits = load_be32(p + 20);
    h.size = load_be64(p + 24);
    h.crypt_method = load_be32(p + 32);
    h.l1_size = load_be32(p + 36);
    h.l1_table_offset = load_be64(p + 40);
    h.refcount_table_offset = load_be64(p + 48);
    h.refcount_table_clusters = load_be32(p + 56);
    h.nb_snapshots = load_be32(p + 60);
    h.snapshots_offset = load_be64(p + 64);

    if (h.cluster_bits < k_min_cluster_bits || h.cluster_bits > k_max_cluster_bits)
        return fail(fmt::format("cluster_bits {} is out of range (allowed: {}..{})", h.cluster_bits,
                                k_min_cluster_bits, k_max_cluster_bits));
    const uint64_t cs = h.cluster_size();
    // Everything we parse lives in the first cluster (or the file, if shorter).
    const size_t limit = size_t(std::min<uint64_t>(cs, data.size()));

    if (h.version == 2) {
        h.header_length = k_v2_header_length;
        h.refcount_order = 4;
    } else {
        if (data.size() < k_v3_header_length)
            return fail(fmt::format("file is too small for a version 3 header ({} bytes, needs {})", data.size(),
                                    k_v3_header_length));
        h.incompatible_features = load_be64(p + 72);
        h.compatible_features = load_be64(p + 80);
        h.autoclear_features = load_be64(p + 88);
        h.refcount_order = load_be32(p + 96);
        h.header_length = load_be32(p + 100);
        if (h.header_length < k_v3_header_length || h.header_length % 8 != 0 || h.header_length > limit)
            return fail(fmt::format("header_length {} is invalid (must be a multiple of 8, at least {}, and "
                                    "inside the first cluster)", h.header_length, k_v3_header_length));
        if (h.header_length > 104) {
            uint8_t type = p[104];
            if (type > 1)
                return fail(fmt::format("unknown compression type {} (known: 0 zlib, 1 zstd)", type));
            h.compression_type = CompressionType(type);
            h.unknown_header_fields.assign(p + 105, p + h.header_length);
        }
        if ((h.incompatible_features & k_incompat_compression) && h.compression_type == CompressionType::Zlib)
            return fail("the compression type feature bit is set but compression_type is zlib (0)");
        if (!(h.incompatible_features & k_incompat_compression) && h.compression_type != CompressionType::Zlib)
            return fail("compression_type is not zlib but the compression type feature bit is clear");
    }
    if (h.refcount_order > 6)
        return fail(fmt::format("refcount_order {} is out of range (allowed: 0..6)", h.refcount_order));
    if (h.crypt_method != 0)
        return fail(fmt::format("encrypted images (crypt_method {}) are not supported", h.crypt_method));
    if (h.size > k_max_virtual_size)
        return fail(fmt::format("virtual size {} is absurd (limit {})", h.size, k_max_virtual_size));
    if (uint64_t(h.l1_size) * 8 > k_max_l1_bytes)
        return fail(fmt::format("l1_size {} exceeds the limit of {} entries", h.l1_size, k_max_l1_bytes / 8));
    uint64_t needed = l1_entries_for(h.size, h.cluster_bits, h.extended_l2());
    if (h.l1_size < needed)
        return fail(fmt::format("l1_size {} is too small for virtual size {} (needs {} entries)", h.l1_size,
                                h.size, needed));
    if (h.extended_l2() && h.cluster_bits < 14)
        return fail(fmt::format("extended L2 entries need cluster_bits >= 14, got {}", h.cluster_bits));

    auto check_table = [&](const char* name, uint64_t offset, uint64_t bytes) -> Result<void> {
        if (bytes == 0) return {};
        if (offset % cs != 0)
            return fail(fmt::format("{} offset {:#x} is not aligned to the cluster size {}", name, offset, cs));
        if (offset == 0) return fail(fmt::format("{} is at offset 0, inside the header", name));
        if (offset > file_size || bytes > file_size - offset)
            return fail(fmt::format("{} ({} bytes at offset {:#x}) lies outside the {}-byte file", name, bytes,
                                    offset, file_size));
        return {};
    };
    TRY_VOID(check_table("L1 table", h.l1_table_offset, uint64_t(h.l1_size) * 8));
    if (h.refcount_table_clusters == 0) return fail("refcount_table_clusters is 0");
    if (uint64_t(h.refcount_table_clusters) * cs > k_max_refcount_table_bytes)
        return fail(fmt::format("refcount table of {} clusters exceeds the limit of {} bytes",
                                h.refcount_table_clusters, k_max_refcount_table_bytes));
    TRY_VOID(check_table("refcount table", h.refcount_table_offset, uint64_t(h.refcount_table_clusters) * cs));
    if (h.nb_snapshots > k_max_snapshots)
        return fail(fmt::format("nb_snapshots {} exceeds the limit of {}", h.nb_snapshots, k_max_snapshots));
    if (h.nb_snapshots) TRY_VOID(check_table("snapshot table", h.snapshots_offset, 40));

    Range ranges[] = {{"header", 0, cs},
                      {"L1 table", h.l1_table_offset, uint64_t(h.l1_size) * 8},
                      {"refcount table", h.refcount_table_offset, uint64_t(h.refcount_table_clusters) * cs},
                      {"snapshot table", h.snapshots_offset, h.nb_snapshots ? 40u : 0u}};
    for (size_t i = 0; i < std::size(ranges); ++i)
        for (size_t j = i + 1; j < std::size(ranges); ++j)
            if (overlaps(ranges[i], ranges[j]))
                return fail(fmt::format("{} (offset {:#x}) overlaps the {} (offset {:#x})", ranges[j].name,
                                        ranges[j].start, ranges[i].name, ranges[i].start));

    // Header extensions, up to the end marker, all inside the first cluster.
    size_t at = h.header_length;
    bool seen_backing_format = false, seen_features = false;
    while (true) {
        if (at + 8 > limit) {
            if (h.version == 2 && at >= limit) break;  // a v2 header may end without a marker
            return fail(fmt::format("header extension at offset {} runs past the first cluster", at));
        }
        uint32_t type = load_be32(p + at);
        uint32_t length = load_be32(p + at + 4);
        if (type == k_ext_end) break;
        if (length > limit - at - 8)
            return fail(fmt::format("header extension {:#x} at offset {} has length {}, past the first cluster",
                                    type, at, length));
        const uint8_t* body = p + at + 8;
        if (type == k_ext_backing_format) {
            if (seen_backing_format) return fail("duplicate backing file format header extension");
            seen_backing_format = true;
            h.backing_format = std::string(reinterpret_cast<const char*>(body), length);
        } else if (type == k_ext_feature_table) {
            if (seen_features) return fail("duplicate feature name table header extension");
            seen_features = true;
            for (uint32_t e = 0; e + 48 <= length; e += 48) {
                FeatureName f;
                f.type = body[e];
                f.bit = body[e + 1];
                const char* name = reinterpret_cast<const char*>(body + e + 2);
                f.name.assign(name, strnlen(name, 46));
                h.feature_names.push_back(std::move(f));
            }
        } else {
            h.other_extensions.push_back({type, std::vector<uint8_t>(body, body + length)});
        }
        at += 8 + ((uint64_t(length) + 7) & ~7ull);
    }

    uint64_t unknown = h.incompatible_features & ~k_incompat_known;
    if (unknown) {
        std::string names;
        for (uint8_t bit = 0; bit < 64; ++bit)
            if (unknown & (1ull << bit)) names += (names.empty() ? "" : ", ") + h.feature_name(0, bit);
        return fail(fmt::format("image uses unsupported incompatible features: {}", names));
    }

    if (h.backing_file_offset) {
        if (h.backing_file_size > k_max_backing_name)
            return fail(fmt::format("backing file name length {} exceeds {}", h.backing_file_size,
                                    k_max_backing_name));
        if (h.backing_file_offset > limit || h.backing_file_size > limit - h.backing_file_offset)
            return fail(fmt::format("backing file name ({} bytes at offset {}) lies outside the first cluster",
                                    h.backing_file_size, h.backing_file_offset));
        h.backing_file.assign(reinterpret_cast<const char*>(p + h.backing_file_offset), h.backing_file_size);
        if (h.backing_file.empty()) return fail("backing file name is empty");
        if (h.backing_file.find('\0') != std::string::npos) return fail("backing file name contains a NUL byte");
    }
    return h;
}

Result<std::vector<uint8_t>> serialize_header(const Header& h) {
    const uint64_t cs = h.cluster_size();
    std::vector<uint8_t> out(cs, 0);
    uint8_t* p = out.data();
    uint32_t header_length = k_v2_header_length;
    if (h.version >= 3) {
        header_length = uint32_t((105 + h.unknown_header_fields.size() + 7) & ~size_t(7));
        header_length = std::max<uint32_t>(header_length, 112);
    }
    store_be32(p, k_magic);
    store_be32(p + 4, h.version);
    store_be32(p + 20, h.cluster_bits);
    store_be64(p + 24, h.size);
    store_be32(p + 32, h.crypt_method);
    store_be32(p + 36, h.l1_size);
    store_be64(p + 40, h.l1_table_offset);
    store_be64(p + 48, h.refcount_table_offset);
    store_be32(p + 56, h.refcount_table_clusters);
    store_be32(p + 60, h.nb_snapshots);
    store_be64(p + 64, h.snapshots_offset);
    if (h.version >= 3) {
        store_be64(p + 72, h.incompatible_features);
        store_be64(p + 80, h.compatible_features);
        store_be64(p + 88, h.autoclear_features);
        store_be32(p + 96, h.refcount_order);
        store_be32(p + 100, header_length);
        p[104] = uint8_t(h.compression_type);
        std::copy(h.unknown_header_fields.begin(), h.unknown_header_fields.end(), p + 105);
    }
    size_t at = header_length;
    auto put_ext = [&](uint32_t type, std::span<const uint8_t> body) -> Result<void> {
        size_t padded = (body.size() + 7) & ~size_t(7);
        if (at + 8 + padded + 8 > cs)
            return fail(fmt::format("header extensions do not fit in one {}-byte cluster", cs));
        store_be32(p + at, type);
        store_be32(p + at + 4, uint32_t(body.size()));
        std::copy(body.begin(), body.end(), p + at + 8);
        at += 8 + padded;
        return {};
    };
    if (h.backing_format) {
        auto& f = *h.backing_format;
        TRY_VOID(put_ext(k_ext_backing_format, std::span(reinterpret_cast<const uint8_t*>(f.data()), f.size())));
    }
    if (!h.feature_names.empty() && h.version >= 3) {
        std::vector<uint8_t> table(h.feature_names.size() * 48, 0);
        for (size_t i = 0; i < h.feature_names.size(); ++i) {
            table[i * 48] = h.feature_names[i].type;
            table[i * 48 + 1] = h.feature_names[i].bit;
            std::memcpy(&table[i * 48 + 2], h.feature_names[i].name.data(),
                        std::min<size_t>(46, h.feature_names[i].name.size()));
        }
        TRY_VOID(put_ext(k_ext_feature_table, table));
    }
    for (const auto& ext : h.other_extensions) TRY_VOID(put_ext(ext.type, ext.data));
    at += 8;  // end marker (zeros)
    if (!h.backing_file.empty()) {
        if (h.backing_file.size() > k_max_backing_name)
            return fail(fmt::format("backing file name is longer than {} bytes", k_max_backing_name));
        if (at + h.backing_file.size() > cs)
            return fail(fmt::format("backing file name does not fit in the {}-byte header cluster", cs));
        store_be64(p + 8, at);
        store_be32(p + 16, uint32_t(h.backing_file.size()));
        std::memcpy(p + at, h.backing_file.data(), h.backing_file.size());
    }
    return out;
}

Result<std::vector<Snapshot>> parse_snapshot_table(std::span<const uint8_t> data, uint32_t count,
                                                   size_t* consumed) {
    if (count > k_max_snapshots)
        return fail(fmt::format("{} snapshots exceed the limit of {}", count, k_max_snapshots));
    std::vector<Snapshot> out;
    size_t at = 0;
    for (uint32_t i = 0; i < count; ++i) {
        if (data.size() < 40 || at > data.size() - 40)
            return fail(fmt::format("snapshot table is truncated at entry {} (offset {})", i, at));
        const uint8_t* e = data.data() + at;
        Snapshot s;
        s.l1_table_offset = load_be64(e);
        s.l1_size = load_be32(e + 8);
        uint16_t id_len = load_be16(e + 12);
        uint16_t name_len = load_be16(e + 14);
        s.date_sec = load_be32(e + 16);
        s.date_nsec = load_be32(e + 20);
        s.vm_clock_nsec = load_be64(e + 24);
        s.vm_state_size = load_be32(e + 32);
        uint32_t extra = load_be32(e + 36);
        if (extra > k_max_snapshot_extra)
            return fail(fmt::format("snapshot {} has {} bytes of extra data (limit {})", i, extra,
                                    k_max_snapshot_extra));
        size_t entry = 40 + size_t(extra) + id_len + name_len;
        if (entry > data.size() - at)
            return fail(fmt::format("snapshot table is truncated in entry {} (needs {} bytes at offset {})", i,
                                    entry, at));
        const uint8_t* x = e + 40;
        if (extra >= 8) s.vm_state_size = load_be64(x);
        if (extra >= 16) s.disk_size = load_be64(x + 8);
        if (extra >= 24) s.icount = load_be64(x + 16);
        if (extra > 24) s.unknown_extra.assign(x + 24, x + extra);
        s.id.assign(reinterpret_cast<const char*>(x + extra), id_len);
        s.name.assign(reinterpret_cast<const char*>(x + extra + id_len), name_len);
        if (uint64_t(s.l1_size) * 8 > k_max_l1_bytes)
            return fail(fmt::format("snapshot '{}' has l1_size {} (limit {} entries)", s.name, s.l1_size,
                                    k_max_l1_bytes / 8));
        if (s.l1_table_offset % 512 != 0)
            return fail(fmt::format("snapshot '{}' L1 table offset {:#x} is not aligned", s.name,
                                    s.l1_table_offset));
        out.push_back(std::move(s));
        at += (entry + 7) & ~size_t(7);
    }
    if (consumed) *consumed = at;
    return out;
}

std::vector<uint8_t> serialize_snapshot_table(const std::vector<Snapshot>& snapshots) {
    std::vector<uint8_t> out;
    for (const auto& s : snapshots) {
        size_t extra = 16 + (s.icount || !s.unknown_extra.empty() ? 8 + s.unknown_extra.size() : 0);
        size_t entry = 40 + extra + s.id.size() + s.name.size();
        size_t base = out.size();
        out.resize(base + ((entry + 7) & ~size_t(7)), 0);
        uint8_t* e = out.data() + base;
        store_be64(e, s.l1_table_offset);
        store_be32(e + 8, s.l1_size);
        store_be16(e + 12, uint16_t(s.id.size()));
        store_be16(e + 14, uint16_t(s.name.size()));
        store_be32(e + 16, s.date_sec);
        store_be32(e + 20, s.date_nsec);
        store_be64(e + 24, s.vm_clock_nsec);
        store_be32(e + 32, uint32_t(std::min<uint64_t>(s.vm_state_size, UINT32_MAX)));
        store_be32(e + 36, uint32_t(extra));
        uint8_t* x = e + 40;
        store_be64(x, s.vm_state_size);
        store_be64(x + 8, s.disk_size.value_or(0));
        if (extra > 16) {
            store_be64(x + 16, s.icount.value_or(UINT64_MAX));
            std::copy(s.unknown_extra.begin(), s.unknown_extra.end(), x + 24);
        }
        std::memcpy(x + extra, s.id.data(), s.id.size());
        std::memcpy(x + extra + s.id.size(), s.name.data(), s.name.size());
    }
    return out;
}

CompressedDescriptor decode_compressed(uint64_t entry, uint32_t cluster_bits) {
    const uint32_t x = 62 - (cluster_bits - 8);
    CompressedDescriptor d;
    d.host_offset = entry & ((1ull << x) - 1);
    uint64_t sectors = ((entry >> x) & ((1ull << (cluster_bits - 8)) - 1)) + 1;
    d.length = sectors * 512 - (d.host_offset & 511);
    return d;
}

uint64_t encode_compressed(uint64_t host_offset, uint64_t length, uint32_t cluster_bits) {
    const uint32_t x = 62 - (cluster_bits - 8);
    uint64_t extra_sectors = ((host_offset + length - 1) >> 9) - (host_offset >> 9);
    return k_compressed | (extra_sectors << x) | host_offset;
}

}  // namespace corral::storage::qcow2
