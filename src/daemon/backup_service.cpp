#include "daemon/backup_service.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "base/log.h"
#include "base/private_file.h"
#include "daemon/disk_bitmaps.h"
#include "daemon/disk_snapshots.h"
#include "daemon/event_bus.h"
#include "daemon/inventory/inventory.h"
#include "daemon/inventory/vm_limits_json.h"
#include "daemon/storage_service.h"
#include "daemon/task_manager.h"
#include "daemon/vm_lifecycle.h"
#include "daemon/vm_manager.h"
#include "storage/backup/incremental.h"
#include "storage/image.h"
#include "storage/qcow2/qcow2_image.h"

namespace corral::daemon {

using nlohmann::json;
namespace backup = storage::backup;

namespace {

constexpr const char* k_registry = "backup-repositories.json";
/// Marks a backup's configuration as a Corral VM's (corral-backup's own backups hold "{}").
constexpr const char* k_config_kind = "corral-vm";

/// Under corrald's state folder: the bitmap copies of running VMs' disks during their backups.
constexpr const char* k_scratch_folder = "backup-scratch";

/// Empty qcow2 images, one per disk, for the engine to copy a running VM's bitmaps into; removed
/// with this object (after a crash, the next backup of that VM replaces them: same names, and
/// one backup of a VM runs at a time).
class ScratchImages {
public:
    explicit ScratchImages(std::filesystem::path folder) : m_folder(std::move(folder)) {}
    ScratchImages(const ScratchImages&) = delete;
    ScratchImages& operator=(const ScratchImages&) = delete;
    ~ScratchImages() {
        for (const auto& [index, path] : m_paths) {
            std::error_code ec;
            std::filesystem::remove(path, ec);
        }
    }

    /// An image of `disk`'s virtual size for disk `index`; none for a raw disk.
    Result<void> add(size_t index, const backup::DiskSource& disk, const std::string& vm) {
        if (disk.format != storage::ImageFormat::Qcow2)
            return {};
        uint64_t size = 0;
        {
            auto image = TRY(storage::open_image(
                disk.path, {.access = storage::Access::ReadOnly, .format = disk.format, .cache_bytes = 1u << 20}));
            size = image->size();
        }
        std::error_code ec;
        std::filesystem::create_directories(m_folder, ec);
        if (ec)
            return fail(fmt::format("creating {}: {}", m_folder.string(), ec.message()), ec.value());
        auto path = m_folder / fmt::format("{}-disk{}.qcow2", vm, index);
        std::filesystem::remove(path, ec);
        storage::ImageCreateOptions options;
        options.size = size;
        TRY_VOID(storage::create_image(path.string(), options));
        m_paths[index] = path;
        return {};
    }

    const std::map<size_t, std::filesystem::path>& paths() const { return m_paths; }

private:
    std::filesystem::path m_folder;
    std::map<size_t, std::filesystem::path> m_paths;
};

std::string mib(uint64_t bytes) {
    return fmt::format("{} MiB", bytes >> 20);
}

/// A Progress that reports bytes done of total through the task, and stops when it is cancelled.
storage::Progress task_progress(TaskProgress& progress, const char* verb) {
    return [&progress, verb](uint64_t done, uint64_t total) {
        if (progress.cancelled())
            return storage::Proceed::Cancel;
        progress.report(total ? double(done) / double(total) : 1.0,
                        fmt::format("{} {} of {}", verb, mib(done), mib(total)));
        return storage::Proceed::Continue;
    };
}

/// What a restore needs of a VM, kept in each backup's index.
json vm_config(const inventory::VmRecord& vm, const std::vector<std::pair<std::string, inventory::DiskRef>>& disks) {
    json out = {{"kind", k_config_kind},
                {"name", vm.name},
                {"engine", vm.engine},
                {"vcpus", vm.vcpus},
                {"memory_mib", vm.memory_mib},
                {"image", vm.image},
                {"cmdline", vm.cmdline},
                {"restart_policy", vm.restart_policy},
                {"display_width", vm.display_width},
                {"display_height", vm.display_height},
                {"limits", inventory::vm_limits_json(vm.limits)},
                {"disks", json::array()},
                {"nics", json::array()}};
    for (const auto& [name, disk] : disks)
        out["disks"].push_back(
            {{"name", name}, {"pool", disk.pool}, {"volume", disk.volume}, {"readonly", disk.readonly}});
    // Kept to show what the VM had; a restored VM gets no NICs (their MACs and addresses are the
    // original VM's).
    for (const auto& nic : vm.nics)
        out["nics"].push_back({{"network", nic.network}, {"bridge", nic.bridge}, {"tap", nic.tap}, {"mac", nic.mac}});
    return out;
}

Result<json> parse_vm_config(const std::string& id, const std::string& text) {
    auto config = json::parse(text, nullptr, false);
    if (!config.is_object() || config.value("kind", "") != k_config_kind || !config.contains("disks") ||
        !config["disks"].is_array())
        return fail(fmt::format("backup {} holds no Corral VM configuration (was it made by corral-backup?): "
                                "restore its disks with corral-backup restore",
                                id),
                    EINVAL);
    return config;
}

}  // namespace

BackupService::BackupService(std::filesystem::path state_dir, inventory::Inventory& inventory, StorageService& storage,
                             VmManager& vms)
    : m_file(state_dir / k_registry), m_inventory(inventory), m_storage(storage), m_vms(vms) {}

Result<std::vector<BackupRepoRecord>> BackupService::load() const {
    std::vector<BackupRepoRecord> repos;
    std::ifstream in(m_file);
    if (!in) {
        if (errno == ENOENT || !std::filesystem::exists(m_file))
            return repos;
        return fail_errno(fmt::format("reading {}", m_file.string()));
    }
    std::stringstream text;
    text << in.rdbuf();
    auto list = json::parse(text.str(), nullptr, false);
    if (!list.is_array())
        return fail(fmt::format("{} is not a JSON array of repositories", m_file.string()));
    for (const auto& item : list) {
        if (!item.is_object())
            continue;
        repos.push_back(
            {item.value("name", ""), item.value("path", ""), item.value("key_file", ""), item.value("created_at", "")});
    }
    return repos;
}

Result<void> BackupService::save(const std::vector<BackupRepoRecord>& repos) const {
    json list = json::array();
    for (const auto& r : repos)
        list.push_back({{"name", r.name}, {"path", r.path}, {"key_file", r.key_file}, {"created_at", r.created_at}});
    return write_file_atomically(m_file.string(), list.dump(2) + "\n", 0600);
}

Result<BackupRepoRecord> BackupService::add_repo(BackupRepoRecord record, RepoAdd how) {
    std::lock_guard lock(m_mutex);
    auto repos = TRY(load());
    for (const auto& r : repos)
        if (r.name == record.name)
            return fail(fmt::format("a backup repository named {} already exists", r.name), EEXIST);
    std::optional<std::string> key;
    if (!record.key_file.empty())
        key = record.key_file;
    if (how == RepoAdd::Create) {
        // The repository's own folder is made by Repository::create; the folders above it here.
        std::error_code ec;
        std::filesystem::create_directories(std::filesystem::path(record.path).parent_path(), ec);
        if (ec)
            return fail(fmt::format("creating the folders above '{}': {}", record.path, ec.message()), ec.value());
        TRY_VOID(backup::Repository::create(record.path, {.key_file = key}));
    }
    // Opening checks that it is a repository and that the key is the right one.
    TRY(backup::Repository::open(record.path, key));
    record.created_at = utc_now();
    repos.push_back(record);
    TRY_VOID(save(repos));
    return record;
}

Result<std::vector<BackupRepoRecord>> BackupService::list_repos() {
    std::lock_guard lock(m_mutex);
    return load();
}

Result<BackupRepoRecord> BackupService::get_repo(const std::string& name) {
    std::lock_guard lock(m_mutex);
    for (auto& r : TRY(load()))
        if (r.name == name)
            return r;
    return fail(fmt::format("no backup repository named {} (see corral backup repo list)", name), ENOENT);
}

Result<void> BackupService::forget_repo(const std::string& name) {
    std::lock_guard lock(m_mutex);
    auto repos = TRY(load());
    auto it = std::find_if(repos.begin(), repos.end(), [&](const auto& r) { return r.name == name; });
    if (it == repos.end())
        return fail(fmt::format("no backup repository named {} (see corral backup repo list)", name), ENOENT);
    repos.erase(it);
    return save(repos);
}

Result<backup::Repository> BackupService::open(const BackupRepoRecord& record) {
    std::optional<std::string> key;
    if (!record.key_file.empty())
        key = record.key_file;
    return TRY_CONTEXT(backup::Repository::open(record.path, key), fmt::format("backup repository {}", record.name));
}

Result<BackupRepoRecord> BackupService::choose(const std::optional<std::string>& name, const char* field) {
    if (name)
        return get_repo(*name);
    auto repos = TRY(list_repos());
    if (repos.size() == 1)
        return repos.front();
    if (repos.empty())
        return fail(
            fmt::format("{}: there is no backup repository yet (make one with corral backup repo create)", field),
            EINVAL);
    return fail(
        fmt::format("{} is required: there are {} backup repositories (corral backup repo list)", field, repos.size()),
        EINVAL);
}

Result<BackupRepoRecord> BackupService::locate(const std::string& id, const std::optional<std::string>& repo) {
    TRY_VOID(backup::validate_backup_id(id));
    std::vector<BackupRepoRecord> candidates;
    if (repo)
        candidates.push_back(TRY(get_repo(*repo)));
    else
        candidates = TRY(list_repos());
    for (const auto& r : candidates) {
        auto opened = open(r);
        if (!opened)
            continue;  // a repository that cannot be opened now does not hide the others
        auto found = opened->catalogue().find(id);
        if (found && *found && (*found)->state == "complete")
            return r;
    }
    return fail(fmt::format("no backup {}{}", id, repo ? " in repository " + *repo : ""), ENOENT);
}

Result<void> BackupService::check_backup(const std::string& vm) {
    auto record = TRY(m_inventory.get_vm(vm));
    const auto state = parse_vm_state(record.state).value_or(VmState::Starting);
    if (state == VmState::Running || state == VmState::Paused)
        return check_live_disks(record);
    if (!is_down(state))
        return fail(fmt::format("VM {} is {}: a backup needs it running, paused or stopped; try again when it is", vm,
                                record.state),
                    EBUSY);
    return {};
}

Result<void> BackupService::check_live_disks(const inventory::VmRecord& vm) {
    for (size_t i = 0; i < vm.disks.size(); ++i) {
        const auto& disk = vm.disks[i];
        if (disk.readonly)
            continue;  // nothing writes it: read as it is
        auto* pool = TRY(m_storage.pool(disk.pool));
        auto info = TRY_CONTEXT(pool->volume_info(disk.volume), fmt::format("disk {}/{}", disk.pool, disk.volume));
        if (info.format != storage::ImageFormat::Qcow2)
            return fail(fmt::format("VM {} is {} and its writable disk {}/{} is raw, which cannot hold the snapshot a "
                                    "backup of a running VM reads: stop the VM first (corral vm stop {}), or give it "
                                    "qcow2 disks",
                                    vm.name, vm.state, disk.pool, disk.volume, vm.name),
                        EBUSY);
    }
    return {};
}

Result<BackupMade> BackupService::run_backup(const BackupRepoRecord& repo_record, const std::string& vm_name,
                                              TaskProgress& progress) {
    // Snapshot operations wait until the backup is done; a stopped VM stays down meanwhile.
    const bool live = TRY(m_vms.hold_disks_for_backup(vm_name));
    struct Release {
        VmManager& vms;
        const std::string& name;
        ~Release() { vms.release_disks(name); }
    } release{m_vms, vm_name};
    auto vm = TRY(m_inventory.get_vm(vm_name));
    if (live)
        TRY_VOID(check_live_disks(vm));  // its disks may have changed since the request was checked
    backup::BackupRequest request{.vm = vm.name, .config_json = "{}", .disks = {}, .created = 0};
    std::vector<std::pair<std::string, inventory::DiskRef>> named;
    std::set<std::string> names;
    for (const auto& disk : vm.disks) {
        auto* pool = TRY(m_storage.pool(disk.pool));
        auto info = TRY_CONTEXT(pool->volume_info(disk.volume), fmt::format("disk {}/{}", disk.pool, disk.volume));
        // Volume names are unique within a pool; two pools may both hold one of the same name.
        std::string name = disk.volume;
        for (int n = 2; names.contains(name); ++n)
            name = fmt::format("{}-{}", disk.volume, n);
        names.insert(name);
        request.disks.push_back({.name = name, .path = info.path, .format = info.format});
        named.emplace_back(name, disk);
    }
    auto config = vm_config(vm, named);
    auto repo = TRY(open(repo_record));
    if (!live) {
        config["taken"] = {{"vm_state", vm.state}, {"live", false}};
        request.config_json = config.dump();
        progress.report(0, "reading the disks' dirty bitmaps");
        for (auto& disk : request.disks)
            TRY_VOID(backup::plan_incremental(repo, vm.name, disk));
        auto result = TRY(backup::create_backup(repo, request, task_progress(progress, read_verb(request))));
        // The VM stayed down (the hold): the new generation starts at the instant just read.
        const std::string notes = start_generation(request, result.id);
        return BackupMade{.id = result.id, .message = describe(result, vm_name, request.disks.size(), "") + notes};
    }

    // Running or paused: the writable disks are read from an internal snapshot taken at one
    // instant by the VM's own process; the guest writes on meanwhile.
    const std::string tag = fmt::format("{}{}", k_backup_snapshot_prefix, random_hex(4));
    progress.report(0, "removing what an interrupted backup left");
    TRY_VOID(remove_leftover_instants(vm, request));
    progress.report(0, fmt::format("capturing the disks of {} at one instant", vm_name));
    // Named before the instant: the disks' new generation bitmap (added with the snapshot, in
    // one transaction) carries the backup's id.
    const int64_t instant = static_cast<int64_t>(::time(nullptr));
    request.id = backup::make_backup_id(vm.name, instant);
    // QEMU and corral-vmm keep a running VM's bitmaps in their memory (the file's copy is
    // flagged in use until they close the disk): at the instant the old generation of each
    // writable disk is copied into a scratch qcow2 image, which is read like a stopped VM's disk.
    ScratchImages copies(m_file.parent_path() / k_scratch_folder);
    for (size_t i = 0; i < vm.disks.size(); ++i)
        if (!vm.disks[i].readonly)
            if (auto made = copies.add(i, request.disks[i], vm.name); !made)
                log_warning("backup of {}: disk {} is read in full: {}", vm_name, request.disks[i].name,
                            made.error().describe());
    const auto notes =
        TRY(m_vms.take_backup_instant(vm_name, tag, backup::generation_bitmap(request.id), copies.paths()));
    const std::string instant_text = utc_now();
    progress.report(0, "reading the disks' dirty bitmaps");
    for (size_t i = 0; i < vm.disks.size(); ++i) {
        auto& disk = request.disks[i];
        if (vm.disks[i].readonly) {
            // The VM opened it read-only, so its bitmap cannot be renewed while the VM runs.
            disk.full_reason = "a read-only disk of a running VM gets no new generation bitmap";
            continue;
        }
        disk.snapshot = tag;
        auto copy = copies.paths().find(i);
        if (copy == copies.paths().end()) {
            disk.full_reason = disk.format == storage::ImageFormat::Qcow2
                                   ? "its bitmap could not be copied out of the VM (see corrald's log)"
                                   : "a raw disk keeps no bitmap";
            continue;
        }
        TRY_VOID(backup::plan_incremental(repo, vm.name, disk, copy->second.string()));
        // The engine's word on why there is no copy is better than "no bitmap".
        if (auto note = notes.find(i); note != notes.end() && !disk.incremental)
            disk.full_reason = note->second;
    }
    config["taken"] = {{"vm_state", vm.state}, {"live", true}, {"at", instant_text}};
    request.config_json = config.dump();
    request.created = instant;
    const char* verb = read_verb(request);
    auto result = backup::create_backup(repo, request, [&progress, &instant_text, verb](uint64_t done, uint64_t total) {
        if (progress.cancelled())
            return storage::Proceed::Cancel;
        progress.report(
            total ? double(done) / double(total) : 1.0,
            fmt::format("{} {} of {} as of {} (the VM runs on)", verb, mib(done), mib(total), instant_text));
        return storage::Proceed::Continue;
    });
    // The snapshot goes whatever happened; one that cannot go now goes at the next backup.
    if (auto dropped = m_vms.drop_backup_instant(vm_name, tag); !dropped)
        log_warning("VM {}: cannot delete backup snapshot {} (the next backup removes it): {}", vm_name, tag,
                    dropped.error().describe());
    if (!result)
        return fail(result.error());
    return BackupMade{
        .id = result->id,
        .message = describe(
            *result, vm_name, request.disks.size(),
            fmt::format(", taken while it {}, as of {}", vm.state == "paused" ? "was paused" : "ran", instant_text))};
}

std::string BackupService::start_generation(const backup::BackupRequest& request, const std::string& id) {
    std::string notes;
    for (const auto& disk : request.disks) {
        if (disk.format != storage::ImageFormat::Qcow2)
            continue;
        if (auto set = set_generation_bitmap(disk.path, backup::generation_bitmap(id)); !set) {
            log_warning("backup {}: disk {} gets no bitmap, so its next backup reads it in full: {}", id, disk.name,
                        set.error().describe());
            notes += fmt::format("; disk {} got no bitmap (its next backup reads it in full): {}", disk.name,
                                 set.error().describe());
        }
    }
    return notes;
}

const char* BackupService::read_verb(const backup::BackupRequest& request) {
    for (const auto& disk : request.disks)
        if (disk.incremental)
            return "incremental read, at";
    return "full read, at";
}

Result<void> BackupService::remove_leftover_instants(const inventory::VmRecord& vm,
                                                     const backup::BackupRequest& request) {
    std::set<std::string> tags;
    for (size_t i = 0; i < vm.disks.size(); ++i) {
        if (vm.disks[i].readonly)
            continue;
        // Only the snapshot table is read: the VM's process writes nothing else that it names,
        // and no snapshot is taken or deleted meanwhile (the hold).
        auto image = TRY(storage::open_image(
            request.disks[i].path,
            {.access = storage::Access::ReadOnly, .format = request.disks[i].format, .cache_bytes = 1u << 20}));
        if (auto* q = dynamic_cast<storage::qcow2::Qcow2Image*>(image.get()))
            for (const auto& snapshot : q->snapshots())
                if (snapshot.name.starts_with(k_backup_snapshot_prefix))
                    tags.insert(snapshot.name);
    }
    for (const auto& tag : tags) {
        log_warning("VM {}: deleting snapshot {} that an interrupted backup left", vm.name, tag);
        if (auto dropped = m_vms.drop_backup_instant(vm.name, tag); !dropped)
            return fail(dropped.error().with_context(
                fmt::format("deleting snapshot {} that an interrupted backup left", tag)));
    }
    return {};
}

std::string BackupService::describe(const backup::BackupResult& result, const std::string& vm, size_t disks,
                                    const std::string& how) {
    const std::string mode =
        result.read_mode == "incremental"
            ? fmt::format("incremental since {} ({} unchanged chunks not read{})", result.base, result.reused_chunks,
                          result.full_reason.empty() ? "" : "; read in full: " + result.full_reason)
            : fmt::format("full read ({})", result.full_reason);
    return fmt::format("backup {} of {}{}: {} in {} disk(s), {}, read {}, {} chunks ({} new, {} written) in {:.1f} s",
                       result.id, vm, how, mib(result.logical_bytes), disks, mode, mib(result.read_bytes),
                       result.chunks, result.new_chunks, mib(result.new_bytes), result.seconds);
}

Result<std::string> BackupService::run_verify(const BackupRepoRecord& repo_record, const std::string& id,
                                              TaskProgress& progress) {
    auto repo = TRY(open(repo_record));
    auto result = TRY(backup::verify_backups(repo, {id}, task_progress(progress, "verified")));
    if (!result.bad_backups.empty())
        return fail(
            fmt::format("backup {} is bad: {}", id,
                        result.problems.empty() ? "see corral backup show" : result.problems.front().describe()));
    return fmt::format("backup {} is good: {} chunks ({}) read and re-hashed", id, result.chunks, mib(result.bytes));
}

Result<backup::PruneResult> BackupService::prune(const BackupRepoRecord& repo_record,
                                                  const backup::PruneOptions& options) {
    auto repo = TRY(open(repo_record));
    return backup::prune_backups(repo, options);
}

Result<std::string> BackupService::run_gc(const BackupRepoRecord& repo_record) {
    auto repo = TRY(open(repo_record));
    auto result = TRY(backup::collect_garbage(repo));
    return fmt::format("removed {} chunks ({}), {} incomplete backups and {} temporary files; kept {} chunks ({})",
                       result.removed_chunks, mib(result.removed_bytes), result.removed_incomplete,
                       result.removed_temporaries, result.kept_chunks, mib(result.kept_bytes));
}

Result<BackupService::RestorePlan> BackupService::plan_restore(const BackupRepoRecord& repo_record,
                                                               const std::string& id, const std::string& as) {
    if (m_inventory.get_vm(as))
        return fail(fmt::format("a VM named {} already exists", as), EEXIST);
    auto repo = TRY(open(repo_record));
    auto [record, index] = TRY(backup::show_backup(repo, id));
    auto config = TRY(parse_vm_config(id, index.config_json));
    const std::string old_name = config.value("name", record.vm);
    RestorePlan plan{.backup = id, .as = as, .disks = {}, .config_json = index.config_json};
    for (const auto& disk : config["disks"]) {
        if (!disk.is_object())
            return fail(fmt::format("backup {}: a disk of its configuration is not an object", id), EINVAL);
        RestorePlan::Disk d{.name = disk.value("name", ""),
                            .pool = disk.value("pool", ""),
                            .volume = disk.value("volume", ""),
                            .path = {},
                            .readonly = disk.value("readonly", false)};
        // Into the disk's own pool when it is still there, else the default pool.
        if (!m_inventory.get_pool(d.pool))
            d.pool = StorageService::k_default_pool;
        // "web-root" of VM web becomes "copy-root" of VM copy; other volumes are prefixed.
        d.volume = d.volume.starts_with(old_name + "-") ? as + d.volume.substr(old_name.size())
                                                        : fmt::format("{}-{}", as, d.volume);
        auto pool_record = TRY(m_inventory.get_pool(d.pool));
        auto* pool = TRY(m_storage.pool(d.pool));
        if (pool->volume_info(d.volume))
            return fail(
                fmt::format("volume {} already exists in pool {}: choose another name for the VM", d.volume, d.pool),
                EEXIST);
        d.path = pool_record.path + "/" + d.volume + ".qcow2";
        plan.disks.push_back(std::move(d));
    }
    return plan;
}

Result<std::string> BackupService::run_restore(const BackupRepoRecord& repo_record, const RestorePlan& plan,
                                               TaskProgress& progress) {
    auto config = TRY(parse_vm_config(plan.backup, plan.config_json));
    auto repo = TRY(open(repo_record));
    // All or nothing: every volume made so far goes again when a later step fails.
    std::vector<const RestorePlan::Disk*> made;
    auto undo = [&] {
        for (const auto* d : made)
            if (auto pool = m_storage.pool(d->pool))
                ignore_error((*pool)->delete_volume(d->volume),
                             "undoing a failed restore: its error is the one to report");
    };
    uint64_t done_disks = 0;
    for (const auto& d : plan.disks) {
        auto restored = backup::restore_disk(
            repo, {.backup = plan.backup, .disk = d.name, .destination = d.path, .format = storage::ImageFormat::Qcow2},
            [&](uint64_t done, uint64_t total) {
                if (progress.cancelled())
                    return storage::Proceed::Cancel;
                const double share = total ? double(done) / double(total) : 1.0;
                progress.report((double(done_disks) + share) / double(plan.disks.size()),
                                fmt::format("disk {} of {}: wrote {} of {}", done_disks + 1, plan.disks.size(),
                                            mib(done), mib(total)));
                return storage::Proceed::Continue;
            });
        if (!restored) {
            undo();
            return fail(restored.error().with_context(fmt::format("restoring disk {}", d.name)));
        }
        made.push_back(&d);
        ++done_disks;
    }
    inventory::VmRecord vm;
    vm.name = plan.as;
    vm.engine = plan.throwaway ? std::string() : config.value("engine", "");
    vm.vcpus = config.value("vcpus", 1);
    vm.memory_mib = config.value("memory_mib", int64_t{512});
    vm.image = config.value("image", "");
    if (!vm.image.empty() && !m_inventory.get_image(vm.image))
        vm.image.clear();
    vm.cmdline = config.value("cmdline", "");
    vm.restart_policy = plan.throwaway ? "no" : config.value("restart_policy", "no");
    vm.display_width = config.value("display_width", 0);
    vm.display_height = config.value("display_height", 0);
    if (auto limits = config.find("limits"); !plan.throwaway && limits != config.end() && limits->is_object())
        vm.limits = inventory::vm_limits_from_json(*limits);
    for (const auto& d : plan.disks)
        vm.disks.push_back({d.pool, d.volume, d.readonly});
    auto created = m_vms.create(vm, ImageRoot::Given);
    if (!created) {
        undo();
        return fail(created.error().with_context(fmt::format("defining VM {}", plan.as)));
    }
    const size_t nics = config.contains("nics") && config["nics"].is_array() ? config["nics"].size() : 0;
    return fmt::format(
        "restored backup {} as VM {} ({} disk(s)){}", plan.backup, plan.as, plan.disks.size(),
        nics ? fmt::format("; its {} NIC(s) were not restored (add them with corral vm edit)", nics) : "");
}

}  // namespace corral::daemon
