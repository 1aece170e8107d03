#pragma once

// qcow2 on-disk structures (QEMU docs/interop/qcow2.txt): parsing and serialization as pure
// functions over byte spans, so they can be unit-tested and fuzzed without files.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace corral::storage::qcow2 {

constexpr uint32_t k_magic = 0x514649fb;  // "QFI\xfb"
constexpr uint32_t k_v2_header_length = 72;
constexpr uint32_t k_v3_header_length = 104;
constexpr uint32_t k_min_cluster_bits = 9;
constexpr uint32_t k_max_cluster_bits = 21;       // 2 MiB, QEMU's limit
constexpr uint32_t k_max_backing_name = 1023;
constexpr uint64_t k_max_l1_bytes = 32u << 20;    // QEMU's implementation limit
constexpr uint64_t k_max_refcount_table_bytes = 8u << 20;
constexpr uint32_t k_max_snapshots = 65536;
constexpr uint64_t k_max_snapshot_table_bytes = 64u << 20;
constexpr uint32_t k_max_snapshot_extra = 1024;
constexpr uint64_t k_max_virtual_size = 1ull << 61;

// Incompatible feature bits.
constexpr uint64_t k_incompat_dirty = 1ull << 0;
constexpr uint64_t k_incompat_corrupt = 1ull << 1;
constexpr uint64_t k_incompat_data_file = 1ull << 2;
constexpr uint64_t k_incompat_compression = 1ull << 3;
constexpr uint64_t k_incompat_extended_l2 = 1ull << 4;
constexpr uint64_t k_incompat_known = (1ull << 5) - 1;
// Compatible feature bits.
constexpr uint64_t k_compat_lazy_refcounts = 1ull << 0;

// Header extension types.
constexpr uint32_t k_ext_end = 0;
constexpr uint32_t k_ext_backing_format = 0xe2792aca;
constexpr uint32_t k_ext_feature_table = 0x6803f857;
constexpr uint32_t k_ext_bitmaps = 0x23852875;
constexpr uint32_t k_ext_encryption = 0x0537be77;
constexpr uint32_t k_ext_data_file = 0x44415441;

// L1/L2 entry bits.
constexpr uint64_t k_copied = 1ull << 63;
constexpr uint64_t k_compressed = 1ull << 62;
constexpr uint64_t k_zero = 1ull;
constexpr uint64_t k_offset_mask = 0x00fffffffffffe00ull;  // bits 9-55

enum class CompressionType : uint8_t { Zlib = 0, Zstd = 1 };

struct FeatureName {
    uint8_t type = 0;  // 0 incompatible, 1 compatible, 2 autoclear
    uint8_t bit = 0;
    std::string name;
};

struct HeaderExtension {
    uint32_t type = 0;
    std::vector<uint8_t> data;
};

/// The image header plus its extensions, as found in the first cluster.
struct Header {
    uint32_t version = 3;
    uint64_t backing_file_offset = 0;
    uint32_t backing_file_size = 0;
    uint32_t cluster_bits = 16;
    uint64_t size = 0;
    uint32_t crypt_method = 0;
    uint32_t l1_size = 0;
    uint64_t l1_table_offset = 0;
    uint64_t refcount_table_offset = 0;
    uint32_t refcount_table_clusters = 0;
    uint32_t nb_snapshots = 0;
    uint64_t snapshots_offset = 0;
    uint64_t incompatible_features = 0;
    uint64_t compatible_features = 0;
    uint64_t autoclear_features = 0;
    uint32_t refcount_order = 4;
    uint32_t header_length = k_v3_header_length;
    CompressionType compression_type = CompressionType::Zlib;
    /// Header bytes past the fields we know (up to header_length), preserved on rewrite.
    std::vector<uint8_t> unknown_header_fields;

    std::string backing_file;
    std::optional<std::string> backing_format;
    std::vector<FeatureName> feature_names;
    /// Extensions we do not interpret (bitmaps, unknown types), preserved verbatim on rewrite.
    std::vector<HeaderExtension> other_extensions;

    uint64_t cluster_size() const { return 1ull << cluster_bits; }
    bool extended_l2() const { return incompatible_features & k_incompat_extended_l2; }
    /// Name of an incompatible/compatible/autoclear bit, from the feature name table if present.
    std::string feature_name(uint8_t type, uint8_t bit) const;
};

/// Parses and validates the header in `data` (the file's first bytes, at most one cluster is
/// needed). `file_size` bounds every table offset. Fails with a sentence naming the bad field.
Result<Header> parse_header(std::span<const uint8_t> data, uint64_t file_size);

/// Serializes header + extensions + backing file name into one cluster. Fails if it does not fit.
Result<std::vector<uint8_t>> serialize_header(const Header& header);

/// Number of L1 entries needed to map `size` bytes.
uint64_t l1_entries_for(uint64_t size, uint32_t cluster_bits, bool extended_l2);

/// One entry of the snapshot table.
struct Snapshot {
    uint64_t l1_table_offset = 0;
    uint32_t l1_size = 0;
    std::string id;
    std::string name;
    uint32_t date_sec = 0;
    uint32_t date_nsec = 0;
    uint64_t vm_clock_nsec = 0;
    uint64_t vm_state_size = 0;
    std::optional<uint64_t> disk_size;
    std::optional<uint64_t> icount;
    /// Extra data past the fields above, preserved verbatim.
    std::vector<uint8_t> unknown_extra;
};

/// Parses `count` snapshot entries from `data` (the table's bytes, possibly longer).
/// `consumed`, when given, receives the table's size in bytes.
Result<std::vector<Snapshot>> parse_snapshot_table(std::span<const uint8_t> data, uint32_t count,
                                                   size_t* consumed = nullptr);
std::vector<uint8_t> serialize_snapshot_table(const std::vector<Snapshot>& snapshots);

/// A decoded compressed-cluster descriptor.
struct CompressedDescriptor {
    uint64_t host_offset = 0;
    uint64_t length = 0;  ///< bytes to read (sector-granular upper bound)
};
CompressedDescriptor decode_compressed(uint64_t l2_entry, uint32_t cluster_bits);
/// Builds a compressed L2 entry; `length` is the compressed byte count.
uint64_t encode_compressed(uint64_t host_offset, uint64_t length, uint32_t cluster_bits);

}  // namespace corral::storage::qcow2
