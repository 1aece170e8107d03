#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/event_loop.h"
#include "base/result.h"
#include "daemon/event_bus.h"
#include "daemon/inventory/inventory.h"
#include "daemon/storage_service.h"
#include "daemon/task_manager.h"
#include "daemon/vm_console.h"
#include "engine/engine.h"

namespace corral::daemon {

/// What a VM action asks for (PUT /vms/{name}/state).
enum class VmAction { Start, Stop, Kill, Pause, Resume, Reboot };
/// "start" -> Start, ...; nullopt for an unknown word.
std::optional<VmAction> parse_vm_action(const std::string& word);
const char* to_string(VmAction action);

/// Live numbers of one running VM (GET /vms/{name}/metrics, /metrics).
struct VmMetrics {
    double cpu_seconds = 0;
    uint64_t memory_bytes = 0;  // resident set of the VM process
    std::vector<engine::DiskCounters> disks;
    struct Nic {
        std::string tap;
        uint64_t rx_bytes = 0, tx_bytes = 0, rx_packets = 0, tx_packets = 0;  // as the guest sees them
    };
    std::vector<Nic> nics;
};

/// Owns the lifecycle of every VM: validated records in the inventory, running instances on
/// engines, their consoles, and a supervisor that sees a VM process end at once (a pidfd on an
/// EventLoop), records why, and restarts it per its policy. Stopping corrald stops supervising
/// but never stops VMs; adopt_all() takes them back after a restart.
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
    /// Starts `action` as a task; EBUSY (naming the state) when it is not valid now.
    Result<inventory::TaskRecord> act(const std::string& name, VmAction action, std::chrono::seconds timeout);

    /// The VM's console (it exists for every defined VM; it is attached while the VM runs).
    Result<std::shared_ptr<VmConsole>> console(const std::string& name);
    Result<VmMetrics> metrics(const std::string& name);

private:
    struct LiveVm {
        std::unique_ptr<engine::Instance> instance;
        std::vector<std::string> created_taps;  // made for bridge NICs; removed when the VM ends
        bool stop_requested = false;            // a stop/kill: the end is not a crash
        std::string stop_reason;
        bool exited = false;
        std::string stop_task;  // the `stop` task in flight ("" = none yet); a second stop answers with it
    };

    Result<std::string> run_start(const std::string& name, TaskProgress& progress);
    Result<std::string> run_stop(const std::string& name, VmAction action, std::chrono::seconds timeout,
                                 TaskProgress& progress);
    Result<std::string> run_simple(const std::string& name, VmAction action);
    /// EBUSY naming disks[i].volume when a disk breaks the sharing rules (daemon/disk_rules.h).
    Result<void> check_disks(const inventory::VmRecord& vm);
    Result<engine::LaunchSpec> launch_spec(const inventory::VmRecord& vm, std::vector<std::string>& created_taps);
    Result<engine::Engine*> engine_for(const std::string& name);
    void supervise(const std::string& name, const std::shared_ptr<LiveVm>& live);
    void on_exit(const std::string& name, std::shared_ptr<LiveVm> live);
    /// Sets state and reason in the inventory and publishes a vm.state event.
    void set_state(const std::string& name, const std::string& state, const std::string& reason, int64_t pid = -1);
    std::shared_ptr<VmConsole> console_for(const std::string& name);
    bool should_restart(const std::string& name, const inventory::VmRecord& vm, bool crashed);

    inventory::Inventory& m_inventory;
    StorageService& m_storage;
    TaskManager& m_tasks;
    EventBus& m_events;
    Engines m_engines;
    std::string m_default_engine;
    std::filesystem::path m_run_root;
    std::unique_ptr<EventLoop> m_supervisor;

    std::mutex m_mutex;  // guards the maps below and read-modify-write of VM state
    std::condition_variable m_exited;
    std::map<std::string, std::shared_ptr<LiveVm>> m_live;
    std::map<std::string, std::shared_ptr<VmConsole>> m_consoles;
    std::map<std::string, std::deque<std::chrono::steady_clock::time_point>> m_restarts;
};

/// The API's JSON for a VM (docs/api.md "VMs").
nlohmann::json vm_json(const inventory::VmRecord& vm);

}  // namespace corral::daemon
