// VmManager's clones from a snapshot (docs/api.md "Clones from a snapshot"): a new VM that starts where a
// running VM's memory snapshot left it, with its own disks, MACs, generation ID and clock.
//
// Emulated engine only: the snapshot's memory lives inside the source's first qcow2 disk (QEMU
// savevm), so the clone's disks are byte copies of the source's writable volumes (internal
// snapshots and backing file kept; a linked clone over the source would follow its active
// layer, not the snapshot), taken with the source paused and flushed for the copy, and the clone
// starts with `-loadvm SNAPSHOT` from its copies. A restored virtio-net device keeps the MAC in
// its saved state and the guest driver keeps the one it read at probe time, so the clone starts
// paused, its NICs' links go down, and each NIC is replaced by a fresh device with the new MAC
// (Instance::renew_nics()). Every start draws a new VM generation ID (QEMU vmgenid), on which
// the guest kernel reseeds its RNG; the RTC follows the host clock (docs/api.md "Clones from a snapshot").
//
// The native engine's snapshots are refused: corral-vmm cannot yet replace a restored guest's
// NICs, and a clone on the source's MACs would share its addresses.

#include <fmt/format.h>

#include "base/log.h"
#include "base/private_file.h"
#include "daemon/disk_snapshots.h"
#include "daemon/vm_manager.h"

namespace corral::daemon {
namespace fs = std::filesystem;
using inventory::SnapshotRecord;
using inventory::VmRecord;
using namespace std::chrono_literals;

namespace {

/// How long the guest may take to let go of a NIC being replaced (ACPI hot-unplug under TCG on
/// a loaded host).
constexpr auto k_nic_release_timeout = 60s;
/// How long a failed clone's process may take to end after SIGKILL (as run_stop() waits).
constexpr auto k_clone_exit_wait = 30s;

/// The clone's copy of the source's writable disk `index`: "<clone>-root" for an image's root
/// (as a VM created from the image names it), "<clone>-disk<index>" otherwise.
std::string copy_name(const VmRecord& source, const std::string& clone, size_t index) {
    if (index == 0 && !source.image.empty() && source.disks[0].volume == source.name + "-root")
        return clone + "-root";
    return fmt::format("{}-disk{}", clone, index);
}

}  // namespace

Result<std::pair<inventory::TaskRecord, VmRecord>> VmManager::clone_from_snapshot(const std::string& name,
                                                                                  const std::string& snapshot,
                                                                                  VmRecord clone) {
    SnapshotRecord record;
    {
        std::lock_guard lock(m_mutex);
        auto source = TRY(m_inventory.get_vm(name));
        record = TRY(m_inventory.get_snapshot(name, snapshot));
        if (record.status != inventory::k_snapshot_ready)
            return fail(fmt::format("snapshot {} of {} is {}; only a complete snapshot can be cloned", snapshot, name,
                                    record.status),
                        EBUSY);
        if (record.kind != "memory")
            return fail(fmt::format("snapshot {} of {} holds its disks only: there is no memory state to clone from "
                                    "(take one of the running VM: corral vm snapshot create {} NAME)",
                                    snapshot, name, name),
                        EBUSY);
        if (record.engine != "emulated" || !record.dir.empty() || source.engine != "emulated")
            return fail(fmt::format("snapshot {} of {} was taken on the {} engine: clones from snapshots run on the "
                                    "emulated engine today (corral-vmm cannot yet give a restored guest new NICs); "
                                    "revert it (corral vm snapshot revert) or clone the VM's disks (corral volume "
                                    "clone)",
                                    snapshot, name, record.engine),
                        EBUSY);
        if (m_inventory.get_vm(clone.name))
            return fail(fmt::format("a VM named {} already exists", clone.name), EEXIST);
        clone.engine = source.engine;
        clone.vcpus = record.vcpus;
        clone.memory_mib = record.memory_mib;
        clone.image = source.image;
        clone.cmdline = source.cmdline;
        clone.restart_policy = source.restart_policy;
        clone.limits = source.limits;
        clone.display_width = source.display_width;
        clone.display_height = source.display_height;
        // The source's kept balloon target, when the snapshot's memory leaves it something to keep back.
        clone.balloon_target_mib = source.balloon_target_mib < clone.memory_mib ? source.balloon_target_mib : 0;
        clone.disks.clear();
        for (size_t i = 0; i < source.disks.size(); ++i) {
            auto disk = source.disks[i];
            if (!disk.readonly) {
                disk.volume = copy_name(source, clone.name, i);
                auto* pool = TRY(m_storage.pool(disk.pool));
                if (pool->volume_info(disk.volume))
                    return fail(fmt::format("disks[{}]: the copy's volume {}/{} already exists (choose another name "
                                            "for the clone, or delete that volume)",
                                            i, disk.pool, disk.volume),
                                EEXIST);
            }
            clone.disks.push_back(disk);
        }
        for (size_t i = 0; i < clone.nics.size(); ++i) {
            auto& mac = clone.nics[i].mac;
            if (mac.empty())
                mac = default_mac(clone.name, i);
            for (const auto& theirs : source.nics)
                if (mac == theirs.mac) {
                    // 24 bits from a name can meet the source's: the clone gets random ones then.
                    auto bytes = random_hex(3);
                    mac = fmt::format("52:54:00:{}:{}:{}", bytes.substr(0, 2), bytes.substr(2, 2), bytes.substr(4, 2));
                }
        }
        clone.state = to_string(VmState::Starting);
        clone.state_reason = fmt::format("cloning from snapshot {} of {}", snapshot, name);
        clone.run_dir = (m_run_root / clone.name).string();
        // The source's snapshots stay put (the one cloned is read), and nothing acts on the clone.
        TRY_VOID(begin_snapshot_work(name));
        if (auto held = begin_snapshot_work(clone.name); !held) {
            m_snapshot_work.erase(name);
            return fail(held.error());
        }
        auto created = m_inventory.create_vm(clone);
        if (!created) {
            m_snapshot_work.erase(name);
            m_snapshot_work.erase(clone.name);
            return fail(created.error());
        }
        clone = *created;
    }
    (void)console_for(clone.name);
    m_events.publish({{"kind", "vm.created"}, {"target", clone.name}});
    const std::string clone_name = clone.name;
    auto task = m_tasks.start("vm.clone", clone_name, [this, record, clone_name](TaskProgress& progress) {
        return run_clone(record, clone_name, progress);
    });
    if (!task) {
        end_snapshot_work(name);
        end_snapshot_work(clone_name);
        ignore_error(remove(clone_name, false), "the task's error is the one to report");
        return fail(task.error());
    }
    return std::pair{*task, clone};
}

Result<std::string> VmManager::run_clone(const SnapshotRecord& record, const std::string& clone_name,
                                         TaskProgress& progress) {
    const std::string& name = record.vm;
    auto cloned = [&]() -> Result<std::string> {
        auto source = TRY(m_inventory.get_vm(name));
        auto clone = TRY(m_inventory.get_vm(clone_name));
        std::shared_ptr<LiveVm> live;
        {
            std::lock_guard lock(m_mutex);
            if (auto it = m_live.find(name); it != m_live.end() && !is_down(source.state))
                live = it->second;
        }
        // A running source stands still while its files are copied: QEMU's stop drains and
        // flushes the disks (qcow2 metadata included), so each copy is a whole image.
        bool resume = false;
        if (live) {
            auto state = TRY(live->instance->query());
            if (state == engine::RunState::Running) {
                TRY_VOID(live->instance->pause());
                resume = true;
            }
        }
        auto copied = [&]() -> Result<std::vector<fs::path>> {
            std::vector<fs::path> copies;
            size_t writable = 0;
            for (const auto& disk : source.disks)
                writable += disk.readonly ? 0 : 1;
            for (size_t i = 0; i < source.disks.size(); ++i) {
                if (source.disks[i].readonly)
                    continue;
                auto* pool = TRY(m_storage.pool(source.disks[i].pool));
                progress.report(0.05 + 0.45 * static_cast<double>(copies.size()) / static_cast<double>(writable),
                                fmt::format("copying disk {} to {}", source.disks[i].volume, clone.disks[i].volume));
                copies.push_back(TRY(pool->copy_volume_file(source.disks[i].volume, clone.disks[i].volume)).path);
            }
            return copies;
        }();
        if (resume)
            if (auto resumed = live->instance->resume(); !resumed)
                log_error("VM {}: cannot resume after copying its disks for clone {}: {}", name, clone_name,
                          resumed.error().describe());
        // Not TRY(std::move(copied)): GCC 12 -O2 warns -Wmaybe-uninitialized about the vector
        // moved out of the temporary (a false positive that CI's -Werror build would refuse).
        if (!copied)
            return fail(copied.error());
        const std::vector<std::filesystem::path>& copies = *copied;
        // The copies hold every internal snapshot of the source; the clone's starting point is
        // the only one it needs (and it goes too once loaded, below).
        if (auto snapshots = m_inventory.list_snapshots(name); snapshots)
            for (const auto& other : *snapshots)
                if (other.name != record.name && other.dir.empty())
                    for (const auto& copy : copies)
                        if (auto deleted = delete_disk_snapshot(copy, other.name); !deleted)
                            log_warning("clone {}: cannot drop {}'s snapshot {} from its copy: {}", clone_name, name,
                                        other.name, deleted.error().describe());
        progress.report(0.55, fmt::format("starting from snapshot {}", record.name));
        StartFrom from{};
        from.restore_tag = record.name;
        from.paused = true;
        TRY(run_start(clone_name, progress, from, fmt::format("cloned from snapshot {} of {}", record.name, name)));
        std::shared_ptr<LiveVm> started;
        {
            std::lock_guard lock(m_mutex);
            if (auto it = m_live.find(clone_name); it != m_live.end())
                started = it->second;
        }
        if (!started)
            return fail(fmt::format("{} ended right after its start", clone_name), ECHILD);
        if (!clone.nics.empty()) {
            progress.report(
                0.8, fmt::format("replacing {} NIC(s) with new ones ({})", clone.nics.size(), clone.nics.front().mac));
            std::vector<std::string> macs;
            for (const auto& nic : clone.nics)
                macs.push_back(nic.mac);
            TRY_VOID(started->instance->renew_nics(macs, k_nic_release_timeout));
        } else {
            TRY_VOID(started->instance->resume());
        }
        // The snapshot is the source's: the clone's tree starts empty.
        if (auto deleted = started->instance->delete_snapshot(record.name); !deleted)
            log_warning("clone {}: cannot drop snapshot {} from its disks: {}", clone_name, record.name,
                        deleted.error().describe());
        return fmt::format("{} is running, cloned from snapshot {} of {} ({} disk(s) copied, {} new MAC(s))",
                           clone_name, record.name, name, copies.size(), clone.nics.size());
    }();
    end_snapshot_work(name);
    if (!cloned) {
        // Nothing half made: a clone that does not run as asked goes, with its process, run folder
        // and copies. Its snapshot work is held until its process ended, so that nothing (a user's
        // start, its restart policy) starts it again in between.
        const bool ended = end_clone_process(clone_name, cloned.error().message());
        end_snapshot_work(clone_name);
        // A clone whose process never ran is still starting; one that would not end stays listed.
        if (auto vm = m_inventory.get_vm(clone_name); ended && vm && !is_down(vm->state))
            set_state(clone_name, VmState::Failed, cloned.error().message(), 0);
        if (auto removed = remove(clone_name, true); !removed)
            log_warning("clone {}: cannot remove it after its failure: {}", clone_name, removed.error().describe());
        m_events.publish({{"kind", "vm.clone.failed"}, {"target", clone_name}, {"snapshot", record.name}});
        return fail(cloned.error().with_context(
            fmt::format("cloning {} from snapshot {} of {}", clone_name, record.name, name)));
    }
    end_snapshot_work(clone_name);
    m_events.publish({{"kind", "vm.cloned"}, {"target", clone_name}, {"vm", name}, {"snapshot", record.name}});
    return cloned;
}

bool VmManager::end_clone_process(const std::string& clone_name, const std::string& why) {
    std::shared_ptr<LiveVm> live;
    {
        std::lock_guard lock(m_mutex);
        auto it = m_live.find(clone_name);
        if (it == m_live.end())
            return true;
        live = it->second;
        // A stop, not a crash: the restart policy (the source's, copied) must not start it again.
        live->stop_requested = true;
        live->stop_reason = fmt::format("the clone failed: {}", why);
    }
    // Killed even when it seems to have ended (kill() then fails): the wait below is what counts.
    ignore_error(live->instance->kill(), "the clone's error is the one to report");
    std::unique_lock lock(m_mutex);
    if (m_exited.wait_for(lock, k_clone_exit_wait, [&] { return live->exited; }))
        return true;
    log_error("clone {}: its process (pid {}) did not end {} s after SIGKILL", clone_name, live->instance->pid(),
              k_clone_exit_wait.count());
    return false;
}

}  // namespace corral::daemon
