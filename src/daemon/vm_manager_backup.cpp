// VmManager's part in backing up a running VM (docs/backup.md "Running VMs"): the instant is an
// internal qcow2 snapshot of every writable disk, taken by the process that has them open; the
// backup reads that snapshot from the files while the guest writes on (the snapshot's clusters
// are shared, so QEMU copies them before writing), then the snapshot goes again.

#include <fcntl.h>

#include <fmt/format.h>

#include "base/log.h"
#include "base/unique_fd.h"
#include "daemon/disk_snapshots.h"
#include "daemon/vm_manager.h"
#include "storage/backup/incremental.h"

namespace corral::daemon {

Result<bool> VmManager::hold_disks_for_backup(const std::string& name) {
    std::lock_guard lock(m_mutex);
    auto vm = TRY(m_inventory.get_vm(name));
    const auto state = parse_vm_state(vm.state).value_or(VmState::Starting);
    const bool live = state == VmState::Running || state == VmState::Paused;
    if (!live && !is_down(state))
        return fail(fmt::format("VM {} is {}: a backup needs it running, paused or stopped; try again when it is", name,
                                vm.state),
                    EBUSY);
    if (live && !m_live.contains(name))
        return fail(fmt::format("VM {} has no running process", name), EBUSY);
    TRY_VOID(begin_snapshot_work(name));
    return live;
}

Result<engine::BitmapNotes> VmManager::take_backup_instant(const std::string& name, const std::string& tag,
                                                           const std::string& bitmap,
                                                           const std::map<size_t, std::filesystem::path>& copy_to) {
    auto vm = TRY(m_inventory.get_vm(name));
    std::shared_ptr<LiveVm> live;
    {
        std::lock_guard lock(m_mutex);
        if (auto it = m_live.find(name); it != m_live.end() && !is_down(vm.state))
            live = it->second;
    }
    if (!live)
        return fail(fmt::format("VM {} stopped before its disks could be captured", name), EBUSY);
    // Indices into vm.disks: the engine names its drives after them.
    std::vector<size_t> writable;
    for (size_t i = 0; i < vm.disks.size(); ++i)
        if (!vm.disks[i].readonly)
            writable.push_back(i);
    if (writable.empty())
        return engine::BitmapNotes{};
    // corrald opens the copies: the VM's uid may open no host file (engine/vm_user.h).
    std::vector<UniqueFd> files;
    engine::DiskBitmap wanted{.name = bitmap, .replaces = std::string(storage::backup::k_generation_prefix)};
    for (const auto& [index, path] : copy_to) {
        UniqueFd file(::open(path.c_str(), O_RDWR | O_CLOEXEC));
        if (!file.valid())
            return fail_errno(fmt::format("opening {}", path.string()));
        wanted.copy_to[index] = file.get();
        files.push_back(std::move(file));
    }
    auto taken = live->instance->save_disk_snapshot(tag, writable, wanted);
    if (!taken && taken.error().errno_value() == ENOTSUP)
        return fail(fmt::format("VM {} runs on the {} engine, which cannot capture the disks of a running VM yet: "
                                "stop it to back it up",
                                name, vm.engine),
                    EBUSY);
    return taken;
}

Result<void> VmManager::drop_backup_instant(const std::string& name, const std::string& tag) {
    auto vm = TRY(m_inventory.get_vm(name));
    std::shared_ptr<LiveVm> live;
    {
        std::lock_guard lock(m_mutex);
        if (auto it = m_live.find(name); it != m_live.end() && !is_down(vm.state))
            live = it->second;
    }
    if (live) {
        auto deleted = live->instance->delete_snapshot(tag);
        if (deleted)
            return {};
        // It may have stopped meanwhile; then the files are nobody's and are changed below.
        auto now = m_inventory.get_vm(name);
        if (!now || !is_down(now->state))
            return deleted;
        log_info("VM {} stopped during its backup: deleting snapshot {} from its disk files", name, tag);
    }
    // Down, and kept down by the hold: nothing else has the files open.
    for (const auto& disk : vm.disks) {
        if (disk.readonly)
            continue;
        auto* pool = TRY(m_storage.pool(disk.pool));
        auto info = TRY(pool->volume_info(disk.volume));
        if (info.format != storage::ImageFormat::Qcow2)
            continue;
        TRY_VOID(delete_disk_snapshot(info.path, tag));
    }
    return {};
}

}  // namespace corral::daemon
