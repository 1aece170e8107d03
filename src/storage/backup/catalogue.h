#pragma once

// The repository's catalogue in SQLite: which backups exist (and whether they are complete) and
// which chunks each one references, so garbage collection never guesses from file times.

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "base/result.h"
#include "daemon/inventory/sqlite_connection.h"

namespace corral::storage::backup {

/// A backup as the catalogue lists it. A backup is in state "writing" from its start until its
/// index is durable; only "complete" backups are listed, restored or kept by gc.
struct BackupRecord {
    std::string id;
    std::string vm;
    int64_t created = 0;
    std::string state;
    uint64_t disks = 0;
    uint64_t logical_bytes = 0;  ///< sum of the disks' virtual sizes
    uint64_t chunks = 0;         ///< distinct chunks referenced
    uint64_t new_chunks = 0;     ///< chunks this backup added to the store
    uint64_t new_bytes = 0;      ///< bytes (on disk) this backup added
    std::string verify_state;    ///< "", "ok" or "bad"
    int64_t verified_at = 0;
    std::string verify_error;
    std::string boot_state;   ///< "", "passed" or "failed" (backup verify --boot)
    int64_t booted_at = 0;    ///< when the last boot check ended
    double boot_seconds = 0;  ///< from the start of the throwaway VM to its ready marker
    std::string boot_error;   ///< why the last boot check failed
    std::string read_mode;    ///< "full" or "incremental" ("" for backups made before incrementals)
    uint64_t read_bytes = 0;  ///< bytes read from the disks
    std::string base;         ///< incremental: the backup whose unchanged chunks it took
    std::string full_reason;  ///< why disks were read in full ("" when none was)
};

/// The verdict of a boot check (a throwaway VM restored from the backup and booted).
struct BootVerdict {
    bool passed = false;
    int64_t at = 0;
    double seconds = 0;
    std::string error;
};

/// What a finished backup records in the catalogue.
struct BackupTotals {
    uint64_t disks = 0;
    uint64_t logical_bytes = 0;
    uint64_t new_chunks = 0;
    uint64_t new_bytes = 0;
    std::string read_mode;
    uint64_t read_bytes = 0;
    std::string base;
    std::string full_reason;
};

/// The SQLite catalogue (FILE catalogue.sqlite in the repository). Not thread-safe: one per user.
class Catalogue {
public:
    /// Opens the catalogue, creating its tables when missing and adding the columns a catalogue
    /// made by an older version lacks (PRAGMA user_version 3: the boot check's and the read mode's columns).
    static Result<Catalogue> open(const std::string& path);

    /// Records a backup that has started (state "writing").
    Result<void> begin_backup(const std::string& id, const std::string& vm, int64_t created);
    /// In one transaction: the backup's chunk references, its totals, state "complete".
    Result<void> complete_backup(const std::string& id, const std::unordered_set<std::string>& chunks,
                                 const BackupTotals& totals);
    /// Complete backups, oldest first; only `vm`'s when given.
    Result<std::vector<BackupRecord>> list(const std::optional<std::string>& vm) const;
    /// Backups still in state "writing" (a backup running now, or one that was killed).
    Result<std::vector<std::string>> incomplete() const;
    Result<std::optional<BackupRecord>> find(const std::string& id) const;
    /// Removes a backup and its references (whatever its state).
    Result<void> remove(const std::string& id);
    Result<void> set_verified(const std::string& id, bool ok, int64_t at, const std::string& error);
    /// Records the verdict of the backup's last boot check (ENOENT when there is no such backup).
    Result<void> set_boot_verdict(const std::string& id, const BootVerdict& verdict);
    /// Every chunk any backup (complete or not) references.
    Result<std::unordered_set<std::string>> referenced_chunks() const;

private:
    explicit Catalogue(inventory::Connection db) : m_db(std::move(db)) {}
    mutable inventory::Connection m_db;
};

}  // namespace corral::storage::backup
