// VmManager's snapshots (docs/api.md "Snapshots"). Where each part of a snapshot lives:
//
// | VM when taken | engine   | memory + devices                      | disks                                     |
// |---------------|----------|---------------------------------------|-------------------------------------------|
// | stopped       | both     | none (kind "disk")                    | internal qcow2 snapshot NAME of each disk |
// | running/paused| emulated | QEMU savevm: in the first qcow2 disk  | internal qcow2 snapshot NAME (same savevm) |
// | running/paused| native   | corral-vmm `snapshot`: SNAPSHOTS/VM/NAME/state | copies SNAPSHOTS/VM/NAME/diskN   |
// | --disk-only   | emulated | none (kind "disk")                    | internal qcow2 snapshot NAME (one QMP transaction) |
// | --disk-only   | native   | none: the state written to pause the VM is deleted | copies SNAPSHOTS/VM/NAME/diskN |
//
// Snapshots form a tree per VM: each one's parent is the snapshot that was current when it was
// taken, and a snapshot becomes current when it is complete or reverted to. The tree is only a
// record: every snapshot holds its whole state, so deleting one in the middle frees only its own.
//
// The native engine copies because corral-vmm keeps its disks open with cached qcow2 metadata:
// an internal snapshot written beside it would be overwritten in place. The copy is taken while
// corral-vmm holds the VM paused right after writing its state, with the disks flushed, so both
// are of one instant. Read-only disks never change and are not part of any snapshot.

#include <fmt/format.h>

#include "base/log.h"
#include "daemon/disk_snapshots.h"
#include "daemon/vm_manager.h"

namespace corral::daemon {
namespace fs = std::filesystem;
using inventory::SnapshotRecord;
using inventory::VmRecord;

namespace {

constexpr const char* k_kind_disk = "disk";
constexpr const char* k_kind_memory = "memory";

/// The native snapshot's copy of writable disk `index`.
fs::path disk_copy(const fs::path& dir, size_t index) { return dir / fmt::format("disk{}", index); }

/// The name of `vm`'s current snapshot, "" when none is.
std::string current_snapshot(inventory::Inventory& inventory, const std::string& vm) {
    auto snapshots = inventory.list_snapshots(vm);
    if (!snapshots) return "";
    for (const auto& snapshot : *snapshots)
        if (snapshot.current) return snapshot.name;
    return "";
}

}  // namespace

Result<void> VmManager::begin_snapshot_work(const std::string& name) {
    // Needs m_mutex.
    if (m_snapshot_work.contains(name))
        return fail(fmt::format("{} already has a snapshot operation in progress; try again when it ended", name),
                    EBUSY);
    m_snapshot_work.insert(name);
    return {};
}

void VmManager::end_snapshot_work(const std::string& name) {
    std::lock_guard lock(m_mutex);
    m_snapshot_work.erase(name);
}

Result<void> VmManager::hold_disks(const std::string& name) {
    // The same set as snapshot work: a start checks it under m_mutex, so a start either came
    // first (the state is not down any more) or is refused until release_disks().
    std::lock_guard lock(m_mutex);
    auto vm = TRY(m_inventory.get_vm(name));
    if (!is_down(vm.state))
        return fail(fmt::format("VM {} is {}: backups are taken of a stopped VM; stop it first (corral vm stop {})",
                                name, vm.state, name),
                    EBUSY);
    return begin_snapshot_work(name);
}

void VmManager::release_disks(const std::string& name) { end_snapshot_work(name); }

void VmManager::mark_interrupted_snapshots() {
    auto snapshots = m_inventory.list_snapshots("");
    if (!snapshots) {
        log_warning("cannot list snapshots: {}", snapshots.error().describe());
        return;
    }
    for (auto snapshot : *snapshots) {
        if (snapshot.status != inventory::k_snapshot_creating) continue;
        // Its task's thread is gone with the corrald that ran it: what it wrote may be partial,
        // so it is never offered for restore; deleting it frees what there is.
        snapshot.status = inventory::k_snapshot_incomplete;
        if (auto stored = m_inventory.update_snapshot(snapshot); !stored)
            log_warning("VM {}: cannot mark snapshot {} incomplete: {}", snapshot.vm, snapshot.name,
                        stored.error().describe());
        else
            log_warning("VM {}: snapshot {} was being taken when corrald ended: marked incomplete", snapshot.vm,
                        snapshot.name);
    }
}

Result<std::pair<inventory::TaskRecord, SnapshotRecord>> VmManager::snapshot(const std::string& name,
                                                                            const std::string& snapshot,
                                                                            const std::string& description,
                                                                            bool disk_only) {
    SnapshotRecord record;
    if (snapshot.starts_with(k_backup_snapshot_prefix))
        return fail(fmt::format("snapshot names starting with {} are reserved for backups of running VMs",
                                k_backup_snapshot_prefix),
                    EINVAL);
    {
        std::lock_guard lock(m_mutex);
        auto vm = TRY(m_inventory.get_vm(name));
        auto state = parse_vm_state(vm.state).value_or(VmState::Starting);
        const bool live = state == VmState::Running || state == VmState::Paused;
        if (!live && !is_down(state))
            return fail(fmt::format("{} is {}; a snapshot needs it running, paused or stopped", name, vm.state), EBUSY);
        if (live && !m_live.contains(name)) return fail(fmt::format("{} has no running process", name), EBUSY);
        if (m_inventory.get_snapshot(name, snapshot))
            return fail(fmt::format("VM {} already has a snapshot named {}", name, snapshot), EEXIST);
        record.vm = name;
        record.name = snapshot;
        record.description = description;
        record.engine = vm.engine;
        record.kind = live && !disk_only ? k_kind_memory : k_kind_disk;
        record.parent = current_snapshot(m_inventory, name);
        record.vcpus = vm.vcpus;
        record.memory_mib = vm.memory_mib;
        const bool copies = live && vm.engine == "native";
        // Internal snapshots need qcow2 (raw has nowhere to keep them); checked before anything is made.
        for (size_t i = 0; i < vm.disks.size() && !copies; ++i) {
            const auto& disk = vm.disks[i];
            if (disk.readonly) continue;
            auto* pool = TRY(m_storage.pool(disk.pool));
            auto info = TRY(pool->volume_info(disk.volume));
            if (info.format != storage::ImageFormat::Qcow2)
                return fail(fmt::format("disks[{}]: volume {}/{} is raw; snapshots need qcow2 volumes (or the disk "
                                        "read-only)",
                                        i, disk.pool, disk.volume),
                            EBUSY);
        }
        if (copies) record.dir = (m_snapshot_root / name / snapshot).string();
        TRY_VOID(begin_snapshot_work(name));
        auto created = m_inventory.create_snapshot(record);
        if (!created) {
            m_snapshot_work.erase(name);
            return fail(created.error());
        }
        record = *created;
    }
    auto task = m_tasks.start("vm.snapshot", name,
                              [this, record](TaskProgress& progress) { return run_snapshot(record, progress); });
    if (!task) {
        (void)m_inventory.delete_snapshot(name, snapshot);
        end_snapshot_work(name);
        return fail(task.error());
    }
    m_events.publish({{"kind", "vm.snapshot.creating"}, {"target", name}, {"snapshot", snapshot}});
    return std::pair{*task, record};
}

Result<std::string> VmManager::run_snapshot(SnapshotRecord record, TaskProgress& progress) {
    const std::string& name = record.vm;
    auto taken = [&]() -> Result<std::string> {
        auto vm = TRY(m_inventory.get_vm(name));
        std::vector<fs::path> writable;  // the writable disks' files, in disks order
        for (const auto& disk : vm.disks) {
            if (disk.readonly) continue;
            auto* pool = TRY(m_storage.pool(disk.pool));
            writable.push_back(TRY(pool->volume_info(disk.volume)).path);
        }
        std::shared_ptr<LiveVm> live;
        {
            std::lock_guard lock(m_mutex);
            if (auto it = m_live.find(name); it != m_live.end() && !is_down(vm.state)) live = it->second;
        }
        if (record.kind == k_kind_disk && live && record.dir.empty()) {
            // Running on an engine that snapshots its own open disks (emulated), in one step.
            std::vector<size_t> indices;
            for (size_t i = 0; i < vm.disks.size(); ++i)
                if (!vm.disks[i].readonly) indices.push_back(i);
            progress.report(0.2, fmt::format("snapshot of {} disk(s)", indices.size()));
            TRY_VOID(live->instance->save_disk_snapshot(record.name, indices, {}));
            return fmt::format("snapshot {} of {}'s {} disk(s) taken while it ran", record.name, name, indices.size());
        }
        if (record.kind == k_kind_disk && !live) {
            if (!record.dir.empty())  // meant to be copied from a running native VM
                return fail(fmt::format("{} stopped before its snapshot could be taken", name), EBUSY);
            // Stopped: nothing else has the files open.
            for (size_t i = 0; i < writable.size(); ++i) {
                progress.report(0.1 + 0.8 * static_cast<double>(i) / static_cast<double>(writable.size()),
                                fmt::format("snapshot of disk {}", writable[i].filename().string()));
                if (auto made = create_disk_snapshot(writable[i], record.name); !made) {
                    // Nothing half-made: the disks that got it lose it again.
                    for (size_t j = 0; j < i; ++j) (void)delete_disk_snapshot(writable[j], record.name);
                    return fail(made.error());
                }
            }
            return fmt::format("snapshot {} of {}'s {} disk(s) taken", record.name, name, writable.size());
        }
        if (!live) return fail(fmt::format("{} stopped before its snapshot could be taken", name), EBUSY);
        auto before = live->instance->query();
        const bool was_running = before && *before == engine::RunState::Running;
        progress.report(0.1, "saving memory and device state");
        if (!record.dir.empty()) {
            std::error_code ec;
            fs::create_directories(fs::path(record.dir).parent_path(), ec);
            if (ec) return fail(fmt::format("cannot create {}: {}", record.dir, ec.message()), ec.value());
        }
        auto disks = live->instance->save_snapshot(record.name, record.dir.empty() ? fs::path() : fs::path(record.dir) / "state");
        if (!disks) {
            // corral-vmm resumes the VM itself when it fails (a VM that was running keeps running).
            return fail(disks.error());
        }
        if (*disks == engine::SnapshotDisks::CallerCopies) {
            // The VM is paused, its disks flushed: copy them now, then let it run as it did.
            auto copied = [&]() -> Result<void> {
                for (size_t i = 0; i < writable.size(); ++i) {
                    progress.report(0.5 + 0.4 * static_cast<double>(i) / static_cast<double>(writable.size()),
                                    fmt::format("copying disk {}", writable[i].filename().string()));
                    TRY_VOID(copy_file_sparse(writable[i], disk_copy(record.dir, i)));
                }
                return {};
            }();
            if (was_running) {
                if (auto resumed = live->instance->resume(); !resumed)
                    log_error("VM {}: cannot resume after snapshot {}: {}", name, record.name,
                              resumed.error().describe());
            }
            TRY_VOID(copied);
            if (record.kind == k_kind_disk) {
                // Disks only: the state was written to hold the VM still while they were copied.
                std::error_code ec;
                fs::remove_all(fs::path(record.dir) / "state", ec);
                if (ec) return fail(fmt::format("cannot remove {}/state: {}", record.dir, ec.message()), ec.value());
            }
            record.size_bytes = static_cast<int64_t>(allocated_bytes(record.dir));
        } else if (!writable.empty()) {
            auto state_bytes = disk_snapshot_state_bytes(writable.front(), record.name);
            // The file is QEMU's while it runs; a reader only sees the snapshot table it flushed.
            record.size_bytes = state_bytes ? static_cast<int64_t>(*state_bytes) : 0;
        }
        if (record.kind == k_kind_disk)
            return fmt::format("snapshot {} of {}'s {} disk(s) taken while it ran ({} MiB)", record.name, name,
                               writable.size(), record.size_bytes >> 20);
        return fmt::format("snapshot {} of {} taken with its memory ({} MiB)", record.name, name,
                           record.size_bytes >> 20);
    }();
    if (!taken) {
        // Nothing partial is listed: the record and whatever was written go.
        if (!record.dir.empty()) {
            std::error_code ignored;
            fs::remove_all(record.dir, ignored);
        }
        (void)m_inventory.delete_snapshot(name, record.name);
        end_snapshot_work(name);
        m_events.publish({{"kind", "vm.snapshot.failed"}, {"target", name}, {"snapshot", record.name}});
        return fail(taken.error().with_context(fmt::format("snapshot {} of {}", record.name, name)));
    }
    record.status = inventory::k_snapshot_ready;
    auto stored = m_inventory.update_snapshot(record);
    if (stored) {
        // The VM's present state now descends from it.
        if (auto current = m_inventory.set_current_snapshot(name, record.name); !current)
            log_warning("VM {}: cannot make snapshot {} the current one: {}", name, record.name,
                        current.error().describe());
    }
    end_snapshot_work(name);
    if (!stored) return fail(stored.error());
    m_events.publish({{"kind", "vm.snapshot.created"}, {"target", name}, {"snapshot", record.name}});
    return taken;
}

Result<inventory::TaskRecord> VmManager::restore_snapshot(const std::string& name, const std::string& snapshot) {
    SnapshotRecord record;
    {
        std::lock_guard lock(m_mutex);
        auto vm = TRY(m_inventory.get_vm(name));
        record = TRY(m_inventory.get_snapshot(name, snapshot));
        if (!is_down(vm.state))
            return fail(fmt::format("{} is {}; stop it before restoring a snapshot (its current state would be lost)",
                                    name, vm.state),
                        EBUSY);
        if (record.status != inventory::k_snapshot_ready)
            return fail(fmt::format("snapshot {} of {} is {}; only a complete snapshot can be restored (delete it)",
                                    snapshot, name, record.status),
                        EBUSY);
        if (record.engine != vm.engine)
            return fail(fmt::format("snapshot {} was taken on the {} engine; {} now runs on the {} engine", snapshot,
                                    record.engine, name, vm.engine),
                        EBUSY);
        if (record.kind == k_kind_memory && (record.vcpus != vm.vcpus || record.memory_mib != vm.memory_mib))
            return fail(fmt::format("snapshot {} holds a VM with {} vCPU(s) and {} MiB; {} now has {} and {} MiB "
                                    "(edit it back to restore it)",
                                    snapshot, record.vcpus, record.memory_mib, name, vm.vcpus, vm.memory_mib),
                        EBUSY);
        TRY_VOID(begin_snapshot_work(name));
        if (record.kind == k_kind_memory) {
            // It starts from the snapshot: the same path as a start, so other actions wait.
            vm.state = to_string(VmState::Starting);
            vm.state_reason = fmt::format("restoring snapshot {}", snapshot);
            if (auto stored = m_inventory.update_vm(vm); !stored) {
                m_snapshot_work.erase(name);
                return fail(stored.error());
            }
        }
    }
    auto task = m_tasks.start("vm.restore", name,
                              [this, record](TaskProgress& progress) { return run_restore(record, progress); });
    if (!task) {
        end_snapshot_work(name);
        if (record.kind == k_kind_memory) set_state(name, VmState::Stopped, "restore could not start");
    }
    return task;
}

Result<std::string> VmManager::run_restore(const SnapshotRecord& record, TaskProgress& progress) {
    const std::string& name = record.vm;
    auto restored = [&]() -> Result<std::string> {
        auto vm = TRY(m_inventory.get_vm(name));
        std::vector<fs::path> writable;
        for (const auto& disk : vm.disks) {
            if (disk.readonly) continue;
            auto* pool = TRY(m_storage.pool(disk.pool));
            writable.push_back(TRY(pool->volume_info(disk.volume)).path);
        }
        // Native snapshots of a running VM keep copies: they go back over the volumes.
        auto copy_back = [&](double from_progress, double span) -> Result<void> {
            for (size_t i = 0; i < writable.size(); ++i) {
                progress.report(from_progress + span * static_cast<double>(i) / static_cast<double>(writable.size()),
                                fmt::format("copying back disk {}", writable[i].filename().string()));
                const fs::path copy = disk_copy(record.dir, i);
                if (!fs::exists(copy))
                    return fail(fmt::format("snapshot {} has no copy of disk {} (the VM's disks changed since?)",
                                            record.name, i),
                                EBUSY);
                TRY_VOID(copy_file_sparse(copy, writable[i]));
            }
            return {};
        };
        if (record.kind == k_kind_disk) {
            if (!record.dir.empty()) {
                TRY_VOID(copy_back(0.1, 0.8));
            } else {
                for (size_t i = 0; i < writable.size(); ++i) {
                    progress.report(0.1 + 0.8 * static_cast<double>(i) / static_cast<double>(writable.size()),
                                    fmt::format("reverting disk {}", writable[i].filename().string()));
                    TRY_VOID(revert_disk_snapshot(writable[i], record.name));
                }
            }
            return fmt::format("{}'s disks are back at snapshot {} (the VM stays stopped)", name, record.name);
        }
        StartFrom from{};
        if (!record.dir.empty()) {
            // Native: the copies go back, then corral-vmm starts from the state.
            TRY_VOID(copy_back(0.05, 0.2));
            from.restore_dir = fs::path(record.dir) / "state";
        } else {
            // Emulated: QEMU's -loadvm reverts the disks and loads the state in one step.
            from.restore_tag = record.name;
        }
        return run_start(name, progress, from);
    }();
    end_snapshot_work(name);
    if (!restored) {
        // run_start marks the VM failed itself; a failure before it leaves the VM stopped.
        if (record.kind == k_kind_memory) {
            auto vm = m_inventory.get_vm(name);
            if (vm && vm->state == to_string(VmState::Starting))
                set_state(name, VmState::Failed, restored.error().message());
        }
        return fail(restored.error().with_context(fmt::format("restoring snapshot {} of {}", record.name, name)));
    }
    if (auto current = m_inventory.set_current_snapshot(name, record.name); !current)
        log_warning("VM {}: cannot make snapshot {} the current one: {}", name, record.name,
                    current.error().describe());
    m_events.publish({{"kind", "vm.snapshot.restored"}, {"target", name}, {"snapshot", record.name}});
    return restored;
}

Result<void> VmManager::delete_snapshot(const std::string& name, const std::string& snapshot) {
    SnapshotRecord record;
    {
        std::lock_guard lock(m_mutex);
        TRY(m_inventory.get_vm(name));
        record = TRY(m_inventory.get_snapshot(name, snapshot));
        TRY_VOID(begin_snapshot_work(name));
    }
    auto freed = free_snapshot(record);
    end_snapshot_work(name);
    if (freed) m_events.publish({{"kind", "vm.snapshot.deleted"}, {"target", name}, {"snapshot", snapshot}});
    return freed;
}

Result<void> VmManager::free_snapshot(const SnapshotRecord& record) {
    const std::string& name = record.vm;
    auto vm = TRY(m_inventory.get_vm(name));
    // Internal qcow2 snapshots: every disk-only snapshot, and the emulated engine's memory ones.
    const bool internal = record.dir.empty();
    if (internal) {
        std::shared_ptr<LiveVm> live;
        {
            std::lock_guard lock(m_mutex);
            if (auto it = m_live.find(name); it != m_live.end() && !is_down(vm.state)) live = it->second;
        }
        if (live) {
            // The process that has the disks open must change them.
            auto deleted = live->instance->delete_snapshot(record.name);
            if (!deleted && deleted.error().errno_value() == ENOTSUP)
                return fail(fmt::format("{} runs on the native engine, which has its disks open: stop it to delete "
                                        "disk snapshot {}",
                                        name, record.name),
                            EBUSY);
            TRY_VOID(deleted);
        } else {
            for (const auto& disk : vm.disks) {
                if (disk.readonly) continue;
                auto pool = m_storage.pool(disk.pool);
                if (!pool) continue;
                auto info = (*pool)->volume_info(disk.volume);
                // A volume that went took its snapshots along; raw ones never had any.
                if (!info || info->format != storage::ImageFormat::Qcow2) continue;
                TRY_VOID(delete_disk_snapshot(info->path, record.name));
            }
        }
    } else {
        std::error_code ec;
        fs::remove_all(record.dir, ec);
        if (ec) return fail(fmt::format("cannot remove {}: {}", record.dir, ec.message()), ec.value());
    }
    return m_inventory.delete_snapshot(name, record.name);
}

}  // namespace corral::daemon
