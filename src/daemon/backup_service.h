#pragma once

// Backup repositories known to corrald by name (docs/api.md "Backups"), and the work of backing
// up, verifying and restoring a VM through the repository library (storage/backup/operations.h).
// The names are kept in STATE/backup-repositories.json, written atomically; forgetting a
// repository never touches its folder.

#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "storage/backup/operations.h"

namespace corral::inventory {
class Inventory;
struct VmRecord;
}

namespace corral::daemon {

class StorageService;
class TaskProgress;
class VmManager;

/// A repository known by name: its host folder and, when encrypted, its key file.
struct BackupRepoRecord {
    std::string name;
    std::string path;
    std::string key_file;  ///< "" = not encrypted
    std::string created_at;
};

/// A backup just made: its id (two backups of a VM can share a second, so "the newest" is not
/// a way to find it) and the words that describe it.
struct BackupMade {
    std::string id;
    std::string message;
};

/// What a boot check (`backup verify --boot`) waits for, and how long.
struct BootCheckOptions {
    static constexpr std::chrono::seconds k_default_timeout{120};
    static constexpr std::chrono::seconds k_min_timeout{10};
    static constexpr std::chrono::seconds k_max_timeout{3600};
    std::chrono::seconds timeout = k_default_timeout;
    std::string
        ready;  ///< POSIX extended regular expression matched against each console line ("" = ReadyMarker's default)
};

/// Whether adding a repository makes it (an empty or missing folder) or opens an existing one.
enum class RepoAdd { Create, Existing };

class BackupService {
public:
    BackupService(std::filesystem::path state_dir, inventory::Inventory& inventory, StorageService& storage,
                  VmManager& vms);

    /// Registers a repository (making it first with RepoAdd::Create). EEXIST for a taken name;
    /// a folder that is not a repository, or a wrong key, fails and nothing is registered.
    Result<BackupRepoRecord> add_repo(BackupRepoRecord record, RepoAdd how);
    Result<std::vector<BackupRepoRecord>> list_repos();
    Result<BackupRepoRecord> get_repo(const std::string& name);
    /// Forgets a repository; its folder and backups stay.
    Result<void> forget_repo(const std::string& name);
    /// Opens the repository (its key checked).
    Result<storage::backup::Repository> open(const BackupRepoRecord& record);
    /// The repository named, or when `name` is empty the only one (EINVAL naming `field` when
    /// there are several or none).
    Result<BackupRepoRecord> choose(const std::optional<std::string>& name, const char* field);
    /// The repository holding backup `id` (only `repo` when given): ENOENT naming the id.
    Result<BackupRepoRecord> locate(const std::string& id, const std::optional<std::string>& repo);

    /// Checks that VM `vm` can be backed up now (it exists and is stopped, or it runs or is
    /// paused with qcow2 writable disks on the emulated engine): the message names what is in the
    /// way and what to do.
    Result<void> check_backup(const std::string& vm);
    /// Backs up the disks of VM `vm` into `repo` with its configuration (a task's work). A
    /// stopped VM cannot be started meanwhile; a running or paused one runs on, its writable
    /// disks read from an internal snapshot of one instant (k_backup_snapshot_prefix) that goes
    /// again at the end. Snapshot operations on the VM wait either way.
    Result<BackupMade> run_backup(const BackupRepoRecord& repo, const std::string& vm, TaskProgress& progress);
    /// Re-reads every chunk of backup `id`; fails naming the first problem when it is bad.
    Result<std::string> run_verify(const BackupRepoRecord& repo, const std::string& id, TaskProgress& progress);

    /// Removes the backups `options` does not keep (chunks go at the next gc); nothing with dry_run.
    Result<storage::backup::PruneResult> prune(const BackupRepoRecord& repo, const storage::backup::PruneOptions& options);
    /// Garbage collection (a task's work): chunks no backup references, backups a killed process
    /// left incomplete, temporary files. Busy while a backup, verify or restore holds the repository.
    Result<std::string> run_gc(const BackupRepoRecord& repo);

    /// The names of boot checks' throwaway VMs start with this; users cannot take such a name
    /// (names.h refuse_reserved_vm_name), so a cleanup never removes a VM of theirs.
    static constexpr const char* k_boot_check_prefix = "corral-bootcheck-";
    /// Proves backup `id` boots (a task's work, backup_boot_check.cpp): restores it as a throwaway
    /// VM with no NICs on the host's default engine, starts it, waits for the ready pattern on its
    /// serial console, records the verdict in the repository's catalogue, and removes the VM and
    /// its volumes whatever happened. Fails (naming the reason) when it did not boot; ECANCELED,
    /// recording nothing, when the task was cancelled.
    Result<std::string> run_boot_check(const BackupRepoRecord& repo, const std::string& id,
                                       const BootCheckOptions& options, TaskProgress& progress);
    /// Throwaway VMs and volumes of boot checks that do not run now (a killed corrald left them).
    bool has_boot_leftovers();
    /// Kills and deletes them (a task's work at corrald's start; each boot check also does it first).
    Result<std::string> remove_boot_leftovers();

    /// Where each disk of a backup goes when restored as VM `as`.
    struct RestorePlan {
        std::string backup;
        std::string as;
        struct Disk {
            std::string name;  ///< in the backup
            std::string pool;
            std::string volume;
            std::string path;  ///< the new volume's file
            bool readonly = false;
        };
        std::vector<Disk> disks;
        std::string config_json;
        /// A boot check's VM: the host's default engine, no restart policy, no limits (they
        /// may name CPUs or cgroups this host lacks); what matters is whether the disks boot.
        bool throwaway = false;
    };
    /// Checks that backup `id` can be restored as a new VM `as` (the name free, the backup holds a
    /// Corral VM's configuration, no target volume exists) and says where its disks go.
    Result<RestorePlan> plan_restore(const BackupRepoRecord& repo, const std::string& id, const std::string& as);
    /// Restores the disks, then defines the VM; on any failure removes what it made.
    Result<std::string> run_restore(const BackupRepoRecord& repo, const RestorePlan& plan, TaskProgress& progress);

private:
    /// A running VM's disks can be captured at one instant: not on the native engine yet, and
    /// every writable disk qcow2 (EBUSY saying what to do).
    Result<void> check_live_disks(const inventory::VmRecord& vm);
    /// Deletes the backup snapshots a killed backup or corrald left in the VM's writable disks.
    Result<void> remove_leftover_instants(const inventory::VmRecord& vm, const storage::backup::BackupRequest& request);
    /// Gives every qcow2 disk of `request` the generation bitmap of backup `id` (the disks are
    /// held down); what failed, as notes for the task's message ("" when all went well).
    static std::string start_generation(const storage::backup::BackupRequest& request, const std::string& id);
    /// How the task's progress names the read ("full read, at" or "incremental read, at").
    static const char* read_verb(const storage::backup::BackupRequest& request);
    static std::string describe(const storage::backup::BackupResult& result, const std::string& vm, size_t disks,
                                const std::string& how);
    Result<std::vector<BackupRepoRecord>> load() const;
    Result<void> save(const std::vector<BackupRepoRecord>& repos) const;

    std::filesystem::path m_file;
    inventory::Inventory& m_inventory;
    StorageService& m_storage;
    VmManager& m_vms;
    std::mutex m_mutex;  // guards m_file's read-modify-write
    std::mutex m_boot_mutex;              // guards m_boot_checks
    std::set<std::string> m_boot_checks;  // throwaway VM names of boot checks running now
};

}  // namespace corral::daemon
