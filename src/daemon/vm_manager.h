#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/result.h"
#include "daemon/event_bus.h"
#include "daemon/inventory/inventory.h"
#include "daemon/nic_plumbing.h"
#include "daemon/storage_service.h"
#include "daemon/task_manager.h"
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
    /// volume, named "<vm>-root" in the image's pool, prepended to the disks. All or nothing.
    Result<inventory::VmRecord> create(inventory::VmRecord vm);
    /// Replaces the editable fields of a stopped VM.
    Result<inventory::VmRecord> edit(const inventory::VmRecord& changed);
    /// Deletes a stopped VM; with `with_volumes` also its disks that no other VM uses.
    /// Returns the deleted volume names.
    Result<std::vector<std::string>> remove(const std::string& name, bool with_volumes);
    /// Starts `action` as a task; EBUSY (naming the state) when it is not valid now. `timeout`
    /// is how long stop and reboot wait for the guest to shut down (then it is killed, or reset).
    Result<inventory::TaskRecord> act(const std::string& name, VmAction action, std::chrono::seconds timeout);

    /// The VM's console (it exists for every defined VM; it is attached while the VM runs).
    Result<std::shared_ptr<VmConsole>> console(const std::string& name);
    Result<VmMetrics> metrics(const std::string& name);

private:
    struct LiveVm {
        std::unique_ptr<engine::Instance> instance;
        std::vector<std::string> created_taps;  // NicPlumbing made them; unplugged when the VM ends
        bool stop_requested = false;            // a stop/kill: the end is not a crash
        std::string stop_reason;
        bool reboot_requested = false;          // a reboot waits for the guest: its end starts it again
        bool exited = false;
        std::string stop_task;  // the `stop` task in flight ("" = none yet); a second stop answers with it
    };

    /// Who asked for a start: a start by hand counts the automatic restarts from 0 again.
    enum class StartedBy { User, RestartPolicy };
    Result<inventory::TaskRecord> act(const std::string& name, VmAction action, std::chrono::seconds timeout,
                                      StartedBy by);
    /// Launches the VM (its state is starting); `running_reason` is its reason once it runs.
    Result<std::string> run_start(const std::string& name, TaskProgress& progress, const std::string& running_reason = {});
    /// Asks the guest to shut down and starts the VM again once it did; resets it after `timeout`.
    Result<std::string> run_reboot(const std::string& name, std::chrono::seconds timeout, TaskProgress& progress);
    Result<std::string> run_stop(const std::string& name, VmAction action, std::chrono::seconds timeout,
                                 TaskProgress& progress);
    Result<std::string> run_simple(const std::string& name, VmAction action);
    /// EBUSY naming disks[i].volume when a disk breaks the sharing rules (daemon/disk_rules.h).
    Result<void> check_disks(const inventory::VmRecord& vm);
    /// The engine's spec for `vm` without its NICs (NicPlumbing::plug makes those).
    Result<engine::LaunchSpec> launch_spec(const inventory::VmRecord& vm);
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
};

}  // namespace corral::daemon
