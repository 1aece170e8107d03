#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "storage/block_device.h"
#include "storage/file.h"
#include "storage/qcow2/format.h"
#include "storage/qcow2/qcow2_bitmaps.h"
#include "storage/qcow2/table_cache.h"

namespace corral::storage::qcow2 {

struct KeptBitmaps;

struct CreateOptions {
    uint64_t size = 0;
    uint32_t cluster_bits = 16;
    uint32_t version = 3;
    std::string backing_file;                   ///< stored as given (relative paths stay relative)
    std::optional<std::string> backing_format;  ///< "raw" or "qcow2"
    CompressionType compression = CompressionType::Zlib;
    uint32_t refcount_order = 4;
};

struct OpenOptions {
    Access access = Access::ReadOnly;
    size_t cache_bytes = 32u << 20;  ///< bound on cached L2 tables + refcount blocks
    /// Non-empty: a read-only view of this internal snapshot (name, else id) instead of the
    /// active layer, as `qemu-img convert -l` reads it. A snapshot's tables and clusters are
    /// shared (refcount > 1), so a process writing the active layer copies before it writes and
    /// the view stays what the snapshot holds while the image is in use elsewhere.
    std::string snapshot{};
};

/// Opens the backing file named by a header (the caller resolves paths and bounds depth).
using BackingOpener = std::function<Result<std::unique_ptr<BlockDevice>>(const Header&)>;

enum class Repair { No, Yes };

struct CheckResult {
    uint64_t corruptions = 0;
    uint64_t leaks = 0;
    uint64_t check_errors = 0;
    uint64_t corruptions_fixed = 0;
    uint64_t leaks_fixed = 0;
    uint64_t image_end_offset = 0;
    uint64_t allocated_clusters = 0;
    uint64_t total_clusters = 0;  ///< guest clusters
    std::vector<std::string> messages;
};

/// A qcow2 image (format layer) over a File (I/O engine).
///
/// Persistent dirty bitmaps (qcow2.txt "Bitmaps") are kept as QEMU keeps them: a writable open
/// loads every enabled bitmap that is not in use and marks it in use on disk, every write,
/// write-zeroes and discard sets its granules, and the close stores the bits and clears the
/// in-use flag. Bitmaps added or removed while open (add_bitmap, rotate_bitmaps: a backup's
/// generation change) reach the directory at the close too, as in QEMU. Resizing and reverting
/// to a snapshot keep none: they clear the autoclear bit, which makes every bitmap stale for
/// every reader.
///
/// Crash safety (qcow2.txt "Host cluster management"): refcount increments reach the file before
/// any L2/L1 entry that needs them (dirty refcount blocks are written and synced before dirty L2
/// tables); data clusters are written before the L2 entry pointing at them; refcount decrements
/// (discard, copy-on-write) are applied only after the L2 tables dropping the reference are written
/// and synced. A process killed at any point therefore leaves at worst leaked clusters, and
/// flush() makes every completed write durable.
class Qcow2Image final : public BlockDevice {
public:
    static Result<std::unique_ptr<Qcow2Image>> open(File file, const OpenOptions& options,
                                                    const BackingOpener& open_backing);
    /// Creates a new image at `path` (fails if the file exists).
    static Result<void> create(const std::string& path, const CreateOptions& options);
    ~Qcow2Image() override;

    std::string format_name() const override { return "qcow2"; }
    uint64_t size() const override { return m_header.size; }
    bool read_only() const override { return m_read_only; }
    Result<void> read_at(uint64_t offset, std::span<uint8_t> buffer) override;
    Result<void> write_at(uint64_t offset, std::span<const uint8_t> data) override;
    Result<void> flush() override;
    uint64_t discard_granularity() const override { return m_cluster_size; }
    Result<void> discard(uint64_t offset, uint64_t length) override;
    Result<void> write_zeroes(uint64_t offset, uint64_t length) override;
    Result<void> resize(uint64_t new_size) override;
    Result<Extent> block_status(uint64_t offset, uint64_t max_length) override;

    /// Stores one guest cluster compressed (the cluster must be unallocated; convert -c uses it).
    /// `data` is one cluster, or the tail of the disk when the disk ends inside the cluster.
    Result<void> write_compressed(uint64_t guest_offset, std::span<const uint8_t> data);

    const Header& header() const { return m_header; }
    uint64_t cluster_size() const { return m_cluster_size; }
    BlockDevice* backing() const { return m_backing.get(); }
    const File& file() const { return m_file; }

    const std::vector<Snapshot>& snapshots() const { return m_snapshots; }
    Result<void> create_snapshot(const std::string& name);
    Result<void> revert_snapshot(const std::string& name_or_id);
    Result<void> delete_snapshot(const std::string& name_or_id);

    /// Recomputes every reference and compares with the refcounts (like `qemu-img check`).
    /// With Repair::Yes, rebuilds the refcount structures and fixes copied flags.
    Result<CheckResult> check(Repair repair);

    /// True while this open image keeps the persistent bitmaps it found (see above).
    bool keeps_bitmaps() const { return m_bitmaps != nullptr; }
    /// Adds the enabled persistent bitmap `name` holding `bits` (which must cover this image's
    /// size), kept from now on and stored at the close, as QEMU stores a bitmap added while it
    /// runs: a crash before the close leaves no trace of it. Adds the bitmaps header extension
    /// when the image has none. Fails, changing nothing, naming what is wrong: a version 2
    /// image, a bad or duplicate name, a size mismatch, QEMU's limits, no room in the header.
    Result<void> add_bitmap(const std::string& name, DirtyMap bits);
    /// A backup's generation change at one instant (the caller stops every write around it):
    /// removes every bitmap whose name starts with `replaces` (none when empty), handing back
    /// the bits of those kept up to date, and adds the new, empty, enabled bitmap `name` with
    /// the removed kept one's granularity, else 64 KiB. Stale bitmaps (autoclear bit clear) are
    /// dropped, as QEMU drops them. Checks everything add_bitmap checks before changing anything.
    Result<BitmapRotation> rotate_bitmaps(const std::string& name, const std::string& replaces);
    /// Stores the kept bitmaps now, as the close would (which can only log a failure); the
    /// image keeps none afterwards. For a writer that must know its bitmaps reached the file.
    Result<void> store_bitmaps();
    /// Stops keeping the bitmaps without storing them: they stay in use on disk, as after a
    /// crash, and nothing of them is written at the close. For a process that hands the disk to
    /// another while it still has it open (a migration's source): two writers must never both
    /// rewrite the image's metadata, and the other one leaves a bitmap in use alone.
    void abandon_bitmaps();

private:
    struct Mapping;
    Qcow2Image(File file, Header header, std::unique_ptr<BlockDevice> backing, bool read_only,
               size_t cache_bytes);

    Result<void> load_tables();
    /// Replaces the active L1 table and size with those of an internal snapshot (read-only).
    Result<void> view_snapshot(const std::string& name_or_id);
    Result<Mapping> lookup(uint64_t guest_cluster);
    Result<void> read_cluster_part(uint64_t guest_offset, std::span<uint8_t> out, const Mapping& m);
    Result<void> read_backing(uint64_t guest_offset, std::span<uint8_t> out);
    Result<void> write_cluster_part(uint64_t guest_offset, std::span<const uint8_t> data);
    Result<void> zero_clusters(uint64_t offset, uint64_t length);
    Result<uint64_t> l2_for_write(uint64_t l1_index);
    Result<uint8_t*> load_l2(uint64_t offset);
    Result<void> make_room_in_l2_cache();
    Result<void> set_l2_entry(uint64_t l2_offset, uint64_t index, uint64_t value);
    Result<void> write_l1_entry(uint64_t index);
    Result<void> flush_l2_tables();

    Result<uint64_t> refcount(uint64_t cluster);
    Result<void> set_refcount(uint64_t cluster, uint64_t value);
    Result<void> adjust_refcount(uint64_t cluster, int64_t delta);
    Result<uint8_t*> load_refblock(uint64_t offset, bool for_write);
    Result<void> allocate_refblock(uint64_t table_index);
    Result<void> grow_refcount_table(uint64_t needed_index);
    Result<bool> flush_refblocks();
    Result<uint64_t> alloc_clusters(uint64_t count);
    void schedule_free(uint64_t host_offset, uint64_t length);
    Result<void> apply_pending_frees();
    Result<void> write_host(uint64_t offset, std::span<const uint8_t> data);
    Result<void> ensure_file_size(uint64_t size);
    Result<void> check_data_target(uint64_t host_offset) const;

    Result<void> grow_l1(uint64_t entries);
    Result<void> write_header_fields(uint64_t offset, std::span<const uint8_t> bytes);
    Result<std::vector<uint64_t>> read_l1(uint64_t offset, uint32_t entries);
    Result<void> write_table(uint64_t offset, const std::vector<uint64_t>& entries, uint64_t clusters);
    Result<void> adjust_tree(const std::vector<uint64_t>& l1, int64_t delta);
    Result<void> refresh_copied_flags();
    Result<void> write_snapshot_table(std::vector<Snapshot> snapshots);
    Result<size_t> find_snapshot(const std::string& name_or_id) const;
    Result<void> rebuild_refcounts(const std::vector<uint32_t>& refs);
    Result<void> set_incompatible(uint64_t bits);

    // Persistent dirty bitmaps (qcow2_bitmap_store.cpp).
    /// At a writable open: keep the bitmaps if they are consistent, else clear the autoclear bit.
    Result<void> open_bitmaps();
    Result<void> load_bitmaps();
    void mark_dirty(uint64_t offset, uint64_t length);
    /// For writers that change the disk behind the bitmaps' back (resize, revert): stop keeping
    /// them and clear the autoclear bit, so every reader knows they are stale.
    Result<void> drop_bitmaps();
    /// Checks that bitmap `name` with `bits` can be added once the bitmaps named with
    /// `replaces` are gone (add_bitmap, rotate_bitmaps).
    Result<void> check_new_bitmap(const std::string& name, const DirtyMap& bits, const std::string& replaces);
    /// The bitmaps this open image will store (a new, empty set when it keeps none).
    KeptBitmaps& bitmaps_for_change();
    /// Points the header at a directory of `count` bitmaps (count 0: removes the extension).
    Result<void> write_bitmaps_extension(uint32_t count, uint64_t directory_size, uint64_t directory_offset);
    /// The header cluster as on disk with its bitmaps extension replaced by `data` (none when
    /// empty); fails when it does not fit in the cluster.
    Result<std::vector<uint8_t>> header_with_bitmaps_extension(std::span<const uint8_t> data);
    /// The table and data clusters of a bitmap as the file holds it (empty when unreadable: they leak).
    std::vector<uint64_t> bitmap_clusters(const BitmapEntry& entry);

    File m_file;
    Header m_header;
    std::unique_ptr<BlockDevice> m_backing;
    bool m_read_only;
    uint32_t m_cluster_bits;
    uint64_t m_cluster_size;
    uint64_t m_l2_entries;
    uint32_t m_l2_entry_bytes;
    uint64_t m_refblock_entries;
    std::vector<uint64_t> m_l1;
    std::vector<uint64_t> m_refcount_table;
    TableCache m_l2_cache;
    TableCache m_refblock_cache;
    std::vector<uint64_t> m_pending_free;  ///< host clusters to decrement after the next L2 flush
    uint64_t m_file_size = 0;
    uint64_t m_end_cluster = 0;            ///< first host cluster past everything allocated
    uint64_t m_free_hint = 0;
    uint64_t m_compressed_cursor = 0;      ///< next byte for packing compressed clusters (0: none)
    uint64_t m_snapshot_table_bytes = 0;
    bool m_unsynced = false;
    std::vector<Snapshot> m_snapshots;
    uint64_t m_decompressed_entry = 0;
    std::vector<uint8_t> m_decompressed;
    std::unique_ptr<KeptBitmaps> m_bitmaps;  ///< null: this open image keeps no bitmaps
    bool m_bitmaps_abandoned = false;        ///< abandon_bitmaps(): another process owns them now
};

}  // namespace corral::storage::qcow2
