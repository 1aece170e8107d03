#pragma once

// What a user does with a repository: back up disks, list, verify, restore, prune, collect
// garbage. Each is a plain function over an open Repository; long ones report Progress
// (storage/copy.h) and stop with ECANCELED when it asks to cancel.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "storage/backup/catalogue.h"
#include "storage/backup/repository.h"
#include "storage/copy.h"
#include "storage/dirty_map.h"
#include "storage/image.h"

namespace corral::storage::backup {

/// One disk to back up: its name in the backup and the image it is read from.
struct DiskSource {
    std::string name{};
    std::string path{};
    std::optional<ImageFormat> format{};  ///< probed when empty
    /// Non-empty: back up this internal qcow2 snapshot of the image, not its active layer (a
    /// point-in-time view of a disk that a running VM keeps writing).
    std::string snapshot{};
    /// Set: an incremental read. Chunks `dirty` marks nothing in are not read: their names come
    /// from `base_chunks`. plan_incremental() (incremental.h) fills it, or `full_reason`.
    struct Incremental {
        std::string base{};  ///< the backup `base_chunks` are of (checked still complete under the lock)
        std::vector<std::string> base_chunks{};
        DirtyMap dirty{};  ///< what was written since `base`'s instant
    };
    std::optional<Incremental> incremental{};
    std::string full_reason{};  ///< why there is no `incremental` (recorded on the backup)
};

struct BackupRequest {
    std::string vm{};
    std::string config_json = "{}";  ///< the VM's configuration (a JSON object)
    std::vector<DiskSource> disks{};
    int64_t created = 0;  ///< seconds since the epoch; 0 = now
    /// The backup's id, when the caller had to name it before (a running VM's generation bitmap
    /// is added at the instant, named for the backup); empty = make_backup_id(vm, created).
    std::string id{};
};

/// A new backup id: VM, the UTC time, a random suffix (two backups in one second stay apart).
std::string make_backup_id(const std::string& vm, int64_t created);

/// What a backup did. Bytes read are only those of allocated data (holes and zero clusters are
/// skipped without reading).
struct BackupResult {
    std::string id;
    uint64_t logical_bytes = 0;
    uint64_t read_bytes = 0;
    uint64_t zero_chunks = 0;
    uint64_t chunks = 0;      ///< non-zero chunks in the backup
    uint64_t new_chunks = 0;  ///< of those, stored now (the others were in the store)
    uint64_t new_bytes = 0;   ///< bytes written to the store
    uint64_t reused_chunks = 0;      ///< chunks taken from the base backup unread (incremental)
    std::string read_mode = "full";  ///< "incremental" when some disk was read incrementally
    std::string base{};              ///< the backup an incremental read took chunks from
    std::string full_reason{};       ///< "disk NAME: why" for each disk read in full, "; "-joined
    double seconds = 0;
};

/// Backs up `request.disks` (opened read-only; they must not change meanwhile: a stopped VM, or
/// an internal snapshot named by DiskSource::snapshot). Chunks first, then the index, then the catalogue marks it complete:
/// a backup killed at any point leaves no listed backup that names a missing chunk.
Result<BackupResult> create_backup(Repository& repo, const BackupRequest& request,
                                   const Progress& progress);

/// Complete backups, oldest first (only `vm`'s when given).
Result<std::vector<BackupRecord>> list_backups(Repository& repo, const std::optional<std::string>& vm);
/// The record and index of one complete backup; NotFound naming the id.
Result<std::pair<BackupRecord, BackupIndex>> show_backup(Repository& repo, const std::string& id);
/// Removes one backup from the catalogue and its index (its chunks go at the next gc).
Result<void> delete_backup(Repository& repo, const std::string& id);

/// A damaged or missing chunk, where a backup uses it.
struct VerifyProblem {
    std::string backup{};
    std::string disk{};  ///< empty when the index itself is unreadable
    uint64_t offset = 0;
    std::string chunk{};
    std::string reason{};
    std::string describe() const;
};

struct VerifyResult {
    uint64_t backups = 0;
    uint64_t chunks = 0;  ///< distinct chunks read and re-hashed
    uint64_t bytes = 0;   ///< their decoded bytes
    std::vector<std::string> bad_backups;
    std::vector<VerifyProblem> problems;
    double seconds = 0;
};

/// Re-reads and re-hashes every chunk of the given backups (all when `ids` is empty) and records
/// the verdict on each ("ok", or "bad" with the first problem).
Result<VerifyResult> verify_backups(Repository& repo, const std::vector<std::string>& ids,
                                    const Progress& progress);

struct RestoreRequest {
    std::string backup{};
    std::string disk{};  ///< may be empty when the backup has one disk
    std::string destination{};
    ImageFormat format = ImageFormat::Qcow2;
};

struct RestoreResult {
    uint64_t virtual_size = 0;
    uint64_t written_bytes = 0;
    double seconds = 0;
};

/// Writes one disk of a backup to a new image (refused if `destination` exists; removed again
/// if the restore fails or is cancelled). Zero chunks and zero blocks are not written.
Result<RestoreResult> restore_disk(Repository& repo, const RestoreRequest& request,
                                   const Progress& progress);

struct PruneOptions {
    std::optional<std::string> vm{};  ///< only this VM's backups; all VMs (each on its own) else
    int keep_last = 0;
    int keep_daily = 0;
    int keep_weekly = 0;
    int keep_monthly = 0;
    bool dry_run = false;
};

struct PruneResult {
    std::vector<std::string> kept;
    std::vector<std::string> removed;
};

/// Keeps, per VM, the newest `keep_last` backups and the newest backup of each of the last
/// `keep_daily` days (UTC), `keep_weekly` ISO weeks and `keep_monthly` months that have one;
/// removes the rest (chunks go at the next gc). At least one keep must be positive.
Result<PruneResult> prune_backups(Repository& repo, const PruneOptions& options);

struct GcResult {
    uint64_t removed_chunks = 0;
    uint64_t removed_bytes = 0;
    uint64_t kept_chunks = 0;
    uint64_t kept_bytes = 0;
    uint64_t removed_incomplete = 0;  ///< backups a killed process left in state "writing"
    uint64_t removed_temporaries = 0;
};

/// Removes chunks no backup references (by the catalogue, not by file times), backups left
/// incomplete by a killed process, orphaned indexes and temporary files. Holds the repository
/// lock exclusively: Busy while a backup, verify or restore runs.
Result<GcResult> collect_garbage(Repository& repo);

}  // namespace corral::storage::backup
