#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "daemon/event_bus.h"
#include "daemon/host_capacity.h"
#include "daemon/inventory/inventory.h"
#include "daemon/nic_plumbing.h"
#include "daemon/storage_service.h"
#include "daemon/task_manager.h"
#include "daemon/vm_cgroup.h"
#include "daemon/vm_console.h"
#include "daemon/vm_lifecycle.h"
#include "daemon/vm_metrics.h"
#include "daemon/vm_supervisor.h"
#include "engine/engine.h"

namespace corral::daemon {

/// Owns the lifecycle of every VM: validated records in the inventory, running instances on
/// engines, their consoles, and supervision that sees a VM process end at once (ExitWatcher),
/// records why, and restarts it per its policy (RestartBudget). States move only as
/// vm_lifecycle.h allows; the host side of NICs is NicPlumbing's. Stopping corrald stops
/// supervising but never stops VMs; start_supervising() takes them back after a restart.
///
/// vm_manager.cpp holds definitions and actions; vm_manager_supervision.cpp adoption, exits and
/// restarts.
///
/// Errors carry errnos the API maps: ENOENT (no such VM/volume/image), EEXIST (duplicate),
/// EBUSY (invalid in the current state, volume in use), EINVAL (bad value), ENODEV (engine
/// unavailable).
/// The MAC a NIC defined without one gets: 52:54:00 (QEMU's prefix) and three bytes from the
/// VM's name and the NIC's index, so a clone (another name) never gets its source's.
std::string default_mac(const std::string& vm, size_t index);

/// Whether VmManager::create clones an image's root volume or is given it.
enum class ImageRoot { Clone, Given };

class VmManager {
public:
    using Engines = std::map<std::string, std::unique_ptr<engine::Engine>>;

    VmManager(inventory::Inventory& inventory, StorageService& storage, TaskManager& tasks, EventBus& events,
              Engines engines, std::string default_engine, std::filesystem::path run_root);
    ~VmManager();

    /// Starts the supervisor and re-attaches to VMs a previous corrald left running; VMs that
    /// ended meanwhile are marked stopped or crashed with what their shim recorded.
    Result<void> start_supervising();

    const std::string& default_engine() const { return m_default_engine; }
    const Engines& engines() const { return m_engines; }

    /// Defines a VM. With `vm.image` set, its root disk is a linked clone of the image's root
    /// volume, named "<vm>-root" in the image's pool, prepended to the disks (ImageRoot::Clone),
    /// or it is already the first of `vm.disks` (ImageRoot::Given: a VM restored from a backup).
    /// All or nothing.
    Result<inventory::VmRecord> create(inventory::VmRecord vm, ImageRoot root = ImageRoot::Clone);
    /// Replaces the editable fields of a stopped VM. Of a running or paused VM only its limits
    /// may change: they are written to its cgroup at once (EBUSY for any other field).
    Result<inventory::VmRecord> edit(const inventory::VmRecord& changed);
    /// Deletes a stopped VM; with `with_volumes` also its disks that no other VM uses.
    /// Returns the deleted volume names.
    Result<std::vector<std::string>> remove(const std::string& name, bool with_volumes);
    /// Starts `action` as a task; EBUSY (naming the state) when it is not valid now. `timeout`
    /// is how long stop and reboot wait for the guest to shut down (then it is killed, or reset).
    Result<inventory::TaskRecord> act(const std::string& name, VmAction action, std::chrono::seconds timeout);

    /// Takes snapshot `snapshot` of VM `name` as a task (vm_manager_snapshots.cpp, docs/api.md
    /// "Snapshots"): of a running or paused VM its memory, devices and disks at one instant (only
    /// its disks with `disk_only`), of a stopped one its disks. Its parent is the VM's current
    /// snapshot, and it becomes the current one when complete. The record exists (status
    /// "creating") when this returns. EEXIST for a taken name, EBUSY while the VM is
    /// starting/stopping or another snapshot operation runs on it or a writable disk cannot keep
    /// a snapshot (raw).
    Result<std::pair<inventory::TaskRecord, inventory::SnapshotRecord>> snapshot(const std::string& name,
                                                                                 const std::string& snapshot,
                                                                                 const std::string& description,
                                                                                 bool disk_only = false);
    /// Brings a stopped VM back to the snapshot as a task: disk snapshots revert its disks (it
    /// stays stopped); memory snapshots also start it from the saved state. The snapshot is the
    /// VM's current one afterwards. EBUSY while it runs.
    Result<inventory::TaskRecord> restore_snapshot(const std::string& name, const std::string& snapshot);
    /// Defines `clone` and starts it from memory snapshot `snapshot` of VM `vm` as a task
    /// (vm_manager_clone.cpp, docs/api.md "Clones from a snapshot"): its shape (vCPUs, memory) is the
    /// snapshot's, its image, command line and display `vm`'s, its writable disks copies of
    /// `vm`'s as of the snapshot (readonly ones shared), its NICs `clone.nics` (new MACs, given
    /// or made from the new name). The record exists (starting) when this returns; a clone
    /// that cannot start goes again with its copies. ENOENT (no such VM/snapshot), EEXIST (the
    /// name or a copy's volume name is taken), EBUSY (a disk-only, incomplete or native
    /// snapshot, a snapshot operation on `vm` in flight).
    Result<std::pair<inventory::TaskRecord, inventory::VmRecord>> clone_from_snapshot(const std::string& vm,
                                                                                      const std::string& snapshot,
                                                                                      inventory::VmRecord clone);
    /// Deletes a snapshot and frees what it holds (its folder, its internal qcow2 snapshots); its
    /// children hang from its parent from now on.
    Result<void> delete_snapshot(const std::string& name, const std::string& snapshot);
    /// Keeps a stopped (crashed, failed) VM down while something reads its disks (a backup):
    /// starts and snapshot operations are refused until release_disks(). EBUSY naming the state
    /// when it is not down, or when a snapshot operation runs on it.
    Result<void> hold_disks(const std::string& name);
    void release_disks(const std::string& name);
    /// For a backup (vm_manager_backup.cpp): holds the VM's disks as hold_disks() does when it
    /// is down, and when it is running or paused keeps snapshot operations off it (it runs on)
    /// until release_disks(). True when it is live.
    Result<bool> hold_disks_for_backup(const std::string& name);
    /// Takes the internal snapshot `tag` of the live VM's writable disks, all at one instant,
    /// the guest running on (Instance::save_disk_snapshot), and gives each the dirty bitmap
    /// `bitmap` (replacing the older generations) at that instant. The older generations of
    /// the disks in `copy_to` (disk index -> an empty qcow2 image of the disk's size) are copied
    /// into those images first, as they were at the instant; returns why one could not be.
    /// Needs hold_disks_for_backup().
    Result<engine::BitmapNotes> take_backup_instant(const std::string& name, const std::string& tag,
                                                    const std::string& bitmap,
                                                    const std::map<size_t, std::filesystem::path>& copy_to);
    /// Deletes the internal snapshot `tag` from the VM's writable qcow2 disks: through its
    /// process while it runs, in the files once it is down. Needs hold_disks_for_backup().
    Result<void> drop_backup_instant(const std::string& name, const std::string& tag);
    /// The overcommit policy a start must keep within (host_capacity.h), and the host it applies to.
    void set_capacity(CapacityPolicy policy, HostSize host);
    std::pair<CapacityPolicy, HostSize> capacity();
    /// Where VM cgroups are made (CgroupLayout::detect() in corrald; none by default).
    void set_cgroups(CgroupLayout layout) { m_cgroups = std::move(layout); }
    const CgroupLayout& cgroups() const { return m_cgroups; }
    /// Where the snapshot folders are (default: beside the run folder, RUN_ROOT/../snapshots).
    void set_snapshot_root(std::filesystem::path root) { m_snapshot_root = std::move(root); }

    // Live migration between two corralds (vm_manager_migration.cpp; docs/migration.md "corrald").

    /// Source: reserves the running VM `name` for a migration out (no snapshot, backup, delete or
    /// second migration until end_migration_out()) and returns its record. EBUSY when it is not
    /// running, has snapshots (they do not move yet) or another operation holds it.
    Result<inventory::VmRecord> begin_migration_out(const std::string& name);
    /// What the destination said at the switch (migrate_out()'s `confirm`).
    struct SwitchAnswer {
        enum class Then {
            EndHere,     ///< the guest runs there: the copy here ends
            ResumeHere,  ///< it does not run there (or QEMU's disk locks decide): `cont` here
            StayPaused,  ///< nobody can tell whether it runs there: the copy here waits, paused
        } then = Then::EndHere;
        std::string why;  ///< unless EndHere: what went wrong
    };
    /// Source: moves the reserved VM live to `request.to` (an incoming instance, or a relay to
    /// one); at the switch, with the guest paused here, `confirm` has the destination run it and
    /// says what came of it. EndHere: its process here ends, its taps and cgroup go and its
    /// record is removed, its disks kept. Any failure before: it runs on here as before;
    /// ResumeHere: it runs on here unless its `cont` fails (then it stays paused, state paused);
    /// StayPaused: it stays paused here (state paused), for the user to decide.
    Result<engine::MigrationReport> migrate_out(const std::string& name, engine::MigrationRequest request,
                                                const std::function<SwitchAnswer()>& confirm);
    void end_migration_out(const std::string& name);
    /// Destination: creates `vm`'s record in state migrating-in (reason: from `origin`), plugs its
    /// NICs and launches its instance waiting for the stream on a unix socket in its run folder,
    /// whose path it returns. The disks `copied_disks` (indices in vm.disks) are served for the
    /// source's disk copy on the socket migrate_disks_socket(returned path). All or nothing.
    /// EEXIST: the name is taken; EBUSY: no room (capacity).
    Result<std::filesystem::path> prepare_incoming(inventory::VmRecord vm, const std::string& origin,
                                                   const std::vector<size_t>& copied_disks = {});
    /// Where an incoming instance whose stream socket is `stream_socket` serves its copied disks.
    static std::filesystem::path migrate_disks_socket(const std::filesystem::path& stream_socket);
    /// Destination: the source switched; once the instance runs (within `wait`), so does the VM here.
    Result<void> finish_incoming(const std::string& name, const std::string& origin, std::chrono::seconds wait);
    /// Destination: ends an incoming VM that did not switch; its record, taps and run folder go.
    void abort_incoming(const std::string& name);

    /// The VM's console (it exists for every defined VM; it is attached while the VM runs).
    Result<std::shared_ptr<VmConsole>> console(const std::string& name);
    Result<VmMetrics> metrics(const std::string& name);
    /// A PNG of the running VM's screen (vm_manager_display.cpp). ENOENT: no such VM; EBUSY: it
    /// has no display, or it does not run.
    Result<std::string> screenshot(const std::string& name);
    /// A new connection to the running VM's RFB server (engine::Instance::connect_vnc()), errors
    /// as screenshot().
    Result<UniqueFd> connect_vnc(const std::string& name);
    /// A VM's balloon: the target kept with it and, while it runs, the live balloon.
    struct BalloonView {
        inventory::VmRecord vm;                   ///< balloon_target_mib: the kept target (0 = none)
        std::optional<engine::BalloonInfo> live;  ///< nullopt unless the VM runs or is paused
    };
    /// Keeps `target_mib` (1 to its memory_mib, checked by the caller; 0 or memory_mib: none, the
    /// balloon deflated) as the VM's balloon target, applied at every start, and asks a running or
    /// paused guest to keep that much of its memory now (vm_manager_balloon.cpp). ENOENT: no such
    /// VM; EBUSY: it is between states (starting, stopping, migrating), or its process has no balloon.
    Result<BalloonView> set_balloon(const std::string& name, uint64_t target_mib);
    /// The VM's kept target, and its live balloon with the guest's memory statistics while it
    /// runs; EBUSY when its process has no balloon.
    Result<BalloonView> balloon(const std::string& name);

private:
    struct LiveVm {
        std::unique_ptr<engine::Instance> instance;
        std::vector<std::string> created_taps;  // NicPlumbing made them; unplugged when the VM ends
        bool stop_requested = false;            // a stop/kill: the end is not a crash
        std::string stop_reason;
        bool reboot_requested = false;          // a reboot waits for the guest: its end starts it again
        bool exited = false;
        std::string stop_task;  // the `stop` task in flight ("" = none yet); a second stop answers with it
        bool incoming = false;  // a migration arriving: its end before the switch discards the VM
    };
    /// Deletes the volumes listed in `list` (an incoming VM's copies; see vm_manager_migration.cpp).
    void delete_incoming_copies(const std::filesystem::path& list);
    /// Removes an incoming VM that ended before its switch: its record, console and run folder,
    /// and the volumes made for its copied disks.
    void discard_incoming(const std::string& name, const std::string& why);

    /// Who asked for a start: a start by hand counts the automatic restarts from 0 again.
    enum class StartedBy { User, RestartPolicy };
    Result<inventory::TaskRecord> act(const std::string& name, VmAction action, std::chrono::seconds timeout,
                                      StartedBy by);
    /// Asks the guest to shut down and starts the VM again once it did; resets it after `timeout`.
    Result<std::string> run_reboot(const std::string& name, std::chrono::seconds timeout, TaskProgress& progress);
    /// What a start begins from: a boot, or a snapshot with memory (LaunchSpec::restore_*).
    struct StartFrom {
        std::string restore_tag;
        std::filesystem::path restore_dir;
        // vCPUs stopped until resumed (a clone renews its NICs first). No default member
        // initialiser (GCC 12 rejects `= {}` as run_start's default argument then): callers
        // value-initialise, StartFrom from{}.
        bool paused;
    };
    /// Launches the VM (its state is starting); `running_reason` is its reason once it runs.
    Result<std::string> run_start(const std::string& name, TaskProgress& progress, const StartFrom& from = {},
                                  const std::string& running_reason = {});
    Result<std::string> run_snapshot(inventory::SnapshotRecord record, TaskProgress& progress);
    Result<std::string> run_restore(const inventory::SnapshotRecord& record, TaskProgress& progress);
    /// The clone task: copies the disks (the source paused meanwhile), starts the clone from the
    /// snapshot, renews its NICs; undoes the clone when any step fails.
    Result<std::string> run_clone(const inventory::SnapshotRecord& record, const std::string& clone,
                                  TaskProgress& progress);
    /// A failed clone's process, if it has one, ends as a stop (no restart policy applies): killed,
    /// and waited for until on_exit() has seen it go. False when it did not end.
    bool end_clone_process(const std::string& clone, const std::string& why);
    /// Frees the snapshot's internal qcow2 snapshots and folder (the VM must be down, or an
    /// emulated VM that deletes them itself), then its record.
    Result<void> free_snapshot(const inventory::SnapshotRecord& record);
    /// Marks/unmarks a VM as having a snapshot operation in flight (EBUSY if it already has one).
    Result<void> begin_snapshot_work(const std::string& name);
    void end_snapshot_work(const std::string& name);
    /// Snapshots left "creating" by a corrald that ended meanwhile become "incomplete".
    void mark_interrupted_snapshots();
    Result<std::string> run_stop(const std::string& name, VmAction action, std::chrono::seconds timeout,
                                 TaskProgress& progress);
    Result<std::string> run_simple(const std::string& name, VmAction action);
    /// Pins the vCPU threads of `pid` as `limits.vcpu_pins` says (none: to the VM's CPUs).
    /// The running VM `name` that has a display; errors as screenshot().
    Result<std::shared_ptr<LiveVm>> live_display(const std::string& name);
    /// The running or paused VM `name` (vm_manager_balloon.cpp); EBUSY naming its state otherwise.
    Result<std::shared_ptr<LiveVm>> live_vm(const std::string& name);
    /// Asks the just launched `instance` of `name` for the balloon target kept with the VM; a
    /// failure is logged and the VM runs on with its whole memory.
    void apply_kept_balloon(const std::string& name, engine::Instance& instance);
    Result<void> apply_vcpu_pins(pid_t pid, const inventory::VmLimits& limits);
    /// EBUSY naming disks[i].volume when a disk breaks the sharing rules (daemon/disk_rules.h).
    Result<void> check_disks(const inventory::VmRecord& vm);
    /// The engine's spec for `vm` without its NICs (NicPlumbing::plug makes those).
    Result<engine::LaunchSpec> launch_spec(const inventory::VmRecord& vm);
    /// Removes the backup generation bitmaps of the disks a start from snapshot `spec.restore_tag`
    /// loads into (QEMU refuses them); logs what it removed or could not.
    static void drop_backup_bitmaps(const engine::LaunchSpec& spec);
    Result<engine::Engine*> engine_for(const std::string& name);
    void supervise(const std::string& name, const std::shared_ptr<LiveVm>& live);
    void on_exit(const std::string& name, std::shared_ptr<LiveVm> live);
    /// Sets state and reason in the inventory and publishes a vm.state event, when the move is
    /// one transition_allowed() permits; otherwise logs it, changes nothing and returns false
    /// (a late action that raced with the VM's end).
    bool set_state(const std::string& name, VmState state, const std::string& reason, int64_t pid = -1);
    std::shared_ptr<VmConsole> console_for(const std::string& name);

    inventory::Inventory& m_inventory;
    StorageService& m_storage;
    TaskManager& m_tasks;
    EventBus& m_events;
    Engines m_engines;
    std::string m_default_engine;
    std::filesystem::path m_run_root;
    NicPlumbing m_nics;
    RestartBudget m_restart_budget;
    std::unique_ptr<ExitWatcher> m_exit_watcher;

    std::mutex m_mutex;  // guards the maps below and read-modify-write of VM state
    std::condition_variable m_exited;
    std::map<std::string, std::shared_ptr<LiveVm>> m_live;
    std::map<std::string, std::shared_ptr<VmConsole>> m_consoles;
    std::set<std::string> m_snapshot_work;  // VMs with a snapshot, restore, snapshot delete or backup in flight
    std::filesystem::path m_snapshot_root;
    CgroupLayout m_cgroups;
    CapacityPolicy m_capacity;  // guarded by m_mutex (a start checks it with the VM states)
    HostSize m_host_size;
};

}  // namespace corral::daemon
