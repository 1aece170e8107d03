#include "daemon/vm_manager.h"

#include <sys/types.h>

#include <fmt/format.h>

#include "base/log.h"
#include "base/private_file.h"
#include "daemon/disk_bitmaps.h"
#include "daemon/disk_rules.h"
#include "daemon/vcpu_threads.h"

namespace corral::daemon {
namespace fs = std::filesystem;

namespace {

/// The monitor's rate limits among a VM's limits.
engine::IoLimits io_limits_of(const inventory::VmLimits& limits) {
    return {limits.disk_bytes_per_s, limits.disk_iops, limits.nic_bytes_per_s};
}

}  // namespace
using inventory::VmRecord;

VmManager::VmManager(inventory::Inventory& inventory, StorageService& storage, TaskManager& tasks,
                     EventBus& events, Engines engines, std::string default_engine, fs::path run_root)
    : m_inventory(inventory),
      m_storage(storage),
      m_tasks(tasks),
      m_events(events),
      m_engines(std::move(engines)),
      m_default_engine(std::move(default_engine)),
      m_run_root(std::move(run_root)),
      m_snapshot_root(m_run_root.parent_path() / "snapshots") {}

VmManager::~VmManager() {
    // Stop watching first (the watcher's thread calls into this object), then let consoles go.
    if (m_exit_watcher) m_exit_watcher->stop();
    std::lock_guard lock(m_mutex);
    for (auto& [name, console] : m_consoles) console->detach();
}

void VmManager::set_capacity(CapacityPolicy policy, HostSize host) {
    std::lock_guard lock(m_mutex);
    m_capacity = policy;
    m_host_size = host;
}

std::pair<CapacityPolicy, HostSize> VmManager::capacity() {
    std::lock_guard lock(m_mutex);
    return {m_capacity, m_host_size};
}

Result<engine::Engine*> VmManager::engine_for(const std::string& name) {
    auto it = m_engines.find(name);
    if (it == m_engines.end()) return fail(fmt::format("unknown engine '{}': use native or emulated", name), EINVAL);
    return it->second.get();
}

std::shared_ptr<VmConsole> VmManager::console_for(const std::string& name) {
    std::lock_guard lock(m_mutex);
    auto& console = m_consoles[name];
    if (!console) console = std::make_shared<VmConsole>();
    return console;
}

bool VmManager::set_state(const std::string& name, VmState state, const std::string& reason, int64_t pid) {
    std::lock_guard lock(m_mutex);
    auto vm = m_inventory.get_vm(name);
    if (!vm) return false;
    // A stored word that is no state (an older or damaged inventory) may move anywhere.
    if (auto from = parse_vm_state(vm->state); from && !transition_allowed(*from, state)) {
        log_warning("VM {}: not moving from {} to {} ({}): not an allowed transition", name, vm->state,
                    to_string(state), reason);
        return false;
    }
    // The first crash of a run is the one to remember (a crashed VM that gives up restarting
    // stays crashed with a longer reason).
    if (state == VmState::Crashed && vm->state != to_string(VmState::Crashed)) vm->last_crash = reason;
    vm->state = to_string(state);
    vm->state_reason = reason;
    if (pid >= 0) vm->pid = pid;
    if (auto stored = m_inventory.update_vm(*vm); !stored)
        log_error("VM {}: cannot store state {}: {}", name, to_string(state), stored.error().describe());
    m_events.publish({{"kind", "vm.state"}, {"target", name}, {"state", to_string(state)}, {"reason", reason}});
    log_info("VM {}: {}{}{}", name, to_string(state), reason.empty() ? "" : ": ", reason);
    return true;
}

Result<void> VmManager::check_disks(const VmRecord& vm) {
    if (auto conflict = TRY(find_disk_conflict(m_inventory, m_storage, vm)))
        return fail(fmt::format("{}: {}", conflict->field(), conflict->message), EBUSY);
    return {};
}

std::string default_mac(const std::string& vm, size_t index) {
    auto hash = std::hash<std::string>{}(vm + "/" + std::to_string(index));
    return fmt::format("52:54:00:{:02x}:{:02x}:{:02x}", (hash >> 16) & 0xff, (hash >> 8) & 0xff, hash & 0xff);
}

Result<VmRecord> VmManager::create(VmRecord vm, ImageRoot image_root) {
    if (vm.engine.empty()) vm.engine = m_default_engine;
    TRY(engine_for(vm.engine));
    if (m_inventory.get_vm(vm.name)) return fail(fmt::format("a VM named {} already exists", vm.name), EEXIST);
    TRY_VOID(check_disks(vm));
    std::optional<std::pair<storage::pool::StoragePool*, std::string>> cloned;
    if (!vm.image.empty() && image_root == ImageRoot::Clone) {
        auto image = m_inventory.get_image(vm.image);
        if (!image) return fail(fmt::format("no image named {} (see GET /api/v1/images)", vm.image), ENOENT);
        auto* pool = TRY(m_storage.pool(image->pool));
        std::string root = vm.name + "-root";
        TRY_CONTEXT(pool->clone_volume(image->root_volume, root, storage::pool::CloneMode::Linked, {}),
                    fmt::format("cloning image {}'s root volume", vm.image));
        cloned = {{pool, root}};
        vm.disks.insert(vm.disks.begin(), inventory::DiskRef{image->pool, root, false});
    }
    for (size_t i = 0; i < vm.nics.size(); ++i) {
        if (vm.nics[i].mac.empty())
            vm.nics[i].mac = default_mac(vm.name, i);
    }
    vm.state = to_string(VmState::Stopped);
    vm.state_reason = "created";
    vm.run_dir = (m_run_root / vm.name).string();
    auto stored = m_inventory.create_vm(vm);
    if (!stored) {
        // All or nothing: the clone made for this VM goes again.
        if (cloned)
            ignore_error(cloned->first->delete_volume(cloned->second),
                         "undoing a failed create: the inventory's error is the one to report");
        return fail(stored.error());
    }
    (void)console_for(vm.name);
    m_events.publish({{"kind", "vm.created"}, {"target", vm.name}});
    return stored;
}

Result<void> VmManager::apply_vcpu_pins(pid_t pid, const inventory::VmLimits& limits) {
    std::vector<unsigned> pins;
    if (!limits.vcpu_pins.empty()) pins = TRY(parse_vcpu_pins(limits.vcpu_pins));
    // Unpinned vCPUs may run on every CPU the VM may use.
    const auto online = host_online_cpus();
    const auto allowed = limits.host_cpus.empty() ? online : parse_cpu_list(limits.host_cpus).value_or(online);
    auto warnings = TRY(pin_vcpus(pid, pins, std::vector<unsigned>(allowed.begin(), allowed.end())));
    for (const auto& warning : warnings) log_warning("process {}: {}", pid, warning);
    return {};
}

Result<VmRecord> VmManager::edit(const VmRecord& changed) {
    std::lock_guard lock(m_mutex);
    auto vm = TRY(m_inventory.get_vm(changed.name));
    if (!is_down(vm.state)) {
        // Limits are the kernel's to enforce and change live; everything else needs a new process.
        const std::pair<const char*, bool> fields[] = {
            {"vcpus", vm.vcpus != changed.vcpus},       {"memory_mib", vm.memory_mib != changed.memory_mib},
            {"restart_policy", vm.restart_policy != changed.restart_policy},
            {"cmdline", vm.cmdline != changed.cmdline}, {"nics", vm.nics != changed.nics},
            {"display", vm.display_width != changed.display_width || vm.display_height != changed.display_height}};
        for (const auto& [field, differs] : fields)
            if (differs)
                return fail(fmt::format("{} is {}; stop it before changing {} (only limits change while it runs)",
                                        vm.name, vm.state, field),
                            EBUSY);
        auto live = m_live.find(vm.name);
        const bool io_changed = io_limits_of(vm.limits) != io_limits_of(changed.limits);
        if (io_changed && live != m_live.end())
            TRY_VOID(live->second->instance->set_io_limits(io_limits_of(changed.limits)));
        inventory::VmLimits cgroup_before = vm.limits, cgroup_after = changed.limits;
        for (auto* limits : {&cgroup_before, &cgroup_after})
            limits->disk_bytes_per_s = limits->disk_iops = limits->nic_bytes_per_s = 0;
        if (cgroup_before != cgroup_after && live != m_live.end()) {
            auto applied = apply_cgroup_limits(m_cgroups, vm.name, changed.limits, vm.memory_mib);
            if (!applied) {
                // Back to what the VM had, so that its group matches its record.
                ignore_error(apply_cgroup_limits(m_cgroups, vm.name, vm.limits, vm.memory_mib),
                             "the new limits' error is the one to report");
                return fail(applied.error().describe(), EINVAL);
            }
            for (const auto& warning : *applied) log_warning("VM {}: {}", vm.name, warning);
            // Pins again whenever there are any: rewriting a v1 cpuset resets its threads' affinity.
            if (!changed.limits.vcpu_pins.empty() || changed.limits.vcpu_pins != vm.limits.vcpu_pins ||
                changed.limits.host_cpus != vm.limits.host_cpus)
                if (auto pinned = apply_vcpu_pins(live->second->instance->pid(), changed.limits); !pinned) {
                    ignore_error(apply_cgroup_limits(m_cgroups, vm.name, vm.limits, vm.memory_mib),
                                 "the pinning's error is the one to report");
                    return fail(pinned.error().describe(), EINVAL);
                }
        }
        vm.limits = changed.limits;
        auto stored = TRY(m_inventory.update_vm(vm));
        m_events.publish({{"kind", "vm.updated"}, {"target", vm.name}});
        return stored;
    }
    vm.vcpus = changed.vcpus;
    vm.memory_mib = changed.memory_mib;
    // A kept balloon target of all the new memory or more would keep nothing back: it goes
    // (docs/api.md "Memory balloon").
    if (vm.balloon_target_mib >= vm.memory_mib)
        vm.balloon_target_mib = 0;
    vm.restart_policy = changed.restart_policy;
    vm.cmdline = changed.cmdline;
    vm.nics = changed.nics;
    vm.limits = changed.limits;
    vm.display_width = changed.display_width;
    vm.display_height = changed.display_height;
    auto stored = TRY(m_inventory.update_vm(vm));
    m_events.publish({{"kind", "vm.updated"}, {"target", vm.name}});
    return stored;
}

Result<std::vector<std::string>> VmManager::remove(const std::string& name, bool with_volumes) {
    VmRecord vm;
    {
        std::lock_guard lock(m_mutex);
        vm = TRY(m_inventory.get_vm(name));
        if (!is_down(vm.state))
            return fail(fmt::format("{} is {}; stop it before deleting it", name, vm.state), EBUSY);
        if (m_snapshot_work.contains(name))
            return fail(fmt::format("{} has a snapshot operation or backup in progress; delete it when that ended", name), EBUSY);
        m_snapshot_work.insert(name);
    }
    // Its snapshots go first, each freeing what it holds in the disks and on the host; the
    // records would go with the VM anyway (ON DELETE CASCADE).
    if (auto snapshots = m_inventory.list_snapshots(name); snapshots) {
        for (const auto& snapshot : *snapshots)
            if (auto freed = free_snapshot(snapshot); !freed)
                log_warning("VM {}: snapshot {}: {}", name, snapshot.name, freed.error().describe());
    }
    {
        std::lock_guard lock(m_mutex);
        m_snapshot_work.erase(name);
        TRY_VOID(m_inventory.delete_vm(name));
        if (auto it = m_consoles.find(name); it != m_consoles.end()) {
            it->second->detach();
            m_consoles.erase(it);
        }
        m_restart_budget.forget(name);
    }
    std::vector<std::string> deleted;
    if (with_volumes) {
        for (const auto& disk : vm.disks) {
            auto users = m_inventory.vms_using_volume(disk.pool, disk.volume);
            if (!users || !users->empty()) continue;  // another VM still uses it
            auto pool = m_storage.pool(disk.pool);
            if (!pool) continue;
            if (auto gone = (*pool)->delete_volume(disk.volume); gone)
                deleted.push_back(disk.volume);
            else
                log_warning("VM {}: keeping volume {}/{}: {}", name, disk.pool, disk.volume, gone.error().message());
        }
    }
    std::error_code ignored;
    if (!vm.run_dir.empty()) fs::remove_all(vm.run_dir, ignored);
    m_events.publish({{"kind", "vm.deleted"}, {"target", name}});
    return deleted;
}

/// LiveVm::stop_task while act() is creating the stop task (its id is not known yet).
constexpr const char* k_stop_starting = "(starting)";

Result<inventory::TaskRecord> VmManager::act(const std::string& name, VmAction action, std::chrono::seconds timeout) {
    return act(name, action, timeout, StartedBy::User);
}

Result<inventory::TaskRecord> VmManager::act(const std::string& name, VmAction action, std::chrono::seconds timeout,
                                             StartedBy by) {
    std::shared_ptr<LiveVm> live;
    // `stop` while a stop is in flight answers with that task instead of starting a second one.
    if (action == VmAction::Stop) {
        std::string pending;
        {
            std::lock_guard lock(m_mutex);
            if (auto it = m_live.find(name); it != m_live.end()) pending = it->second->stop_task;
        }
        if (!pending.empty()) {
            auto task = m_tasks.get(pending);
            if (task && task->status != inventory::k_task_succeeded && task->status != inventory::k_task_failed)
                return task;
        }
    }
    {
        std::lock_guard lock(m_mutex);
        auto vm = TRY(m_inventory.get_vm(name));
        auto refuse = [&](std::string_view needs) {
            return fail(fmt::format("{} is {}; {} needs {}", name, vm.state, to_string(action), needs), EBUSY);
        };
        // A stored word that is no state allows no action (as for a VM that is starting).
        if (auto needs = action_needs(parse_vm_state(vm.state).value_or(VmState::Starting), action))
            return refuse(*needs);
        if (action == VmAction::Start && m_snapshot_work.contains(name))
            return refuse("no snapshot operation or backup in progress");
        if (action == VmAction::Start) {
            // Again at start: volumes and other VMs may have changed since this one was defined.
            TRY_VOID(check_disks(vm));
            auto* engine = TRY(engine_for(vm.engine));
            auto available = engine->availability();
            if (!available.available)
                return fail(fmt::format("engine {} is not available on this host: {}", vm.engine, available.reason),
                            ENODEV);
            // Admission: under the same lock as the move to starting, so two starts cannot both
            // take the last free vCPUs.
            if (auto refusal = admission_refusal(m_capacity, m_host_size, allocated(TRY(m_inventory.list_vms()), name), vm))
                return fail(*refusal, EBUSY);
            vm.state = to_string(VmState::Starting);
            vm.state_reason = "";
            vm.restarts = by == StartedBy::User ? 0 : vm.restarts + 1;
            TRY(m_inventory.update_vm(vm));
        }
        if (action == VmAction::Reboot) {
            auto it = m_live.find(name);
            if (it == m_live.end()) return fail(fmt::format("{} has no running process", name), EBUSY);
            live = it->second;
            live->reboot_requested = true;
            // Stopping from here on, so that an end before the task runs is the reboot's too.
            vm.state = to_string(VmState::Stopping);
            vm.state_reason = fmt::format("rebooting: asked the guest to shut down (timeout {} s)", timeout.count());
            if (auto stored = m_inventory.update_vm(vm); !stored) {
                live->reboot_requested = false;
                return fail(stored.error());
            }
            m_events.publish({{"kind", "vm.state"}, {"target", name}, {"state", vm.state}, {"reason", vm.state_reason}});
        }
        if (action == VmAction::Stop || action == VmAction::Kill) {
            auto it = m_live.find(name);
            if (it == m_live.end()) return fail(fmt::format("{} has no running process", name), EBUSY);
            live = it->second;
            // Between this and the task's id being recorded below, a second stop is refused (409).
            if (action == VmAction::Stop && live->stop_requested && live->stop_task == k_stop_starting)
                return refuse("running or paused (a stop was just requested)");
            live->stop_requested = true;
            live->stop_reason = action == VmAction::Kill ? "killed on request" : "stopped on request";
            if (action == VmAction::Stop) live->stop_task = k_stop_starting;
        }
    }
    std::string kind = fmt::format("vm.{}", to_string(action));
    switch (action) {
        case VmAction::Start:
            m_events.publish(
                {{"kind", "vm.state"}, {"target", name}, {"state", to_string(VmState::Starting)}, {"reason", ""}});
            return m_tasks.start(kind, name, [this, name](TaskProgress& progress) { return run_start(name, progress); });
        case VmAction::Stop:
        case VmAction::Kill: {
            auto task = m_tasks.start(kind, name, [this, name, action, timeout](TaskProgress& progress) {
                return run_stop(name, action, timeout, progress);
            });
            if (action == VmAction::Stop) {
                std::lock_guard lock(m_mutex);
                live->stop_task = task ? task->id : std::string();
            }
            return task;
        }
        case VmAction::Reboot: {
            auto task = m_tasks.start(kind, name, [this, name, timeout](TaskProgress& progress) {
                return run_reboot(name, timeout, progress);
            });
            if (!task) {
                // No task to carry it out: the VM runs on as it was.
                {
                    std::lock_guard lock(m_mutex);
                    live->reboot_requested = false;
                }
                set_state(name, VmState::Running, fmt::format("the reboot failed: {}", task.error().message()));
            }
            return task;
        }
        default:
            return m_tasks.start(kind, name, [this, name, action](TaskProgress&) { return run_simple(name, action); });
    }
}

Result<engine::LaunchSpec> VmManager::launch_spec(const VmRecord& vm) {
    engine::LaunchSpec spec;
    spec.name = vm.name;
    spec.vcpus = static_cast<unsigned>(vm.vcpus);
    spec.memory_mib = static_cast<uint64_t>(vm.memory_mib);
    spec.run_dir = vm.run_dir;
    spec.display_width = static_cast<uint32_t>(vm.display_width);
    spec.display_height = static_cast<uint32_t>(vm.display_height);
    spec.io_limits = io_limits_of(vm.limits);
    spec.generation_id = vm.generation_id;
    if (vm.image.empty()) return fail(fmt::format("{} has no image to boot", vm.name), EINVAL);
    auto image = TRY_CONTEXT(m_inventory.get_image(vm.image), fmt::format("{}'s image", vm.name));
    spec.kernel = image.kernel;
    spec.initrd = image.initrd;
    spec.cmdline = image.cmdline;
    if (!vm.cmdline.empty()) spec.cmdline += " " + vm.cmdline;
    for (size_t i = 0; i < vm.disks.size(); ++i) {
        const auto& disk = vm.disks[i];
        auto* pool = TRY(m_storage.pool(disk.pool));
        auto info = TRY_CONTEXT(pool->volume_info(disk.volume), fmt::format("disk {}/{}", disk.pool, disk.volume));
        if (info.path.empty()) return fail(fmt::format("volume {}/{} has no file to attach", disk.pool, disk.volume));
        spec.disks.push_back({info.path, info.format == storage::ImageFormat::Raw ? "raw" : "qcow2", disk.readonly,
                              fmt::format("{}", disk.volume.substr(0, 20))});
    }
    return spec;
}

void VmManager::drop_backup_bitmaps(const engine::LaunchSpec& spec) {
    // QEMU's -loadvm refuses a disk with an active dirty bitmap ("Device has active dirty
    // bitmaps"): a backup's generation bitmap must never keep a VM from starting.
    for (const auto& disk : spec.disks) {
        if (disk.format != "qcow2" || disk.read_only)
            continue;
        auto removed = remove_generation_bitmaps(disk.path);
        if (!removed)
            log_warning("VM {}: cannot remove the backup bitmaps of disk {} before loading snapshot {}: {}", spec.name,
                        disk.path.filename().string(), spec.restore_tag, removed.error().describe());
        else if (*removed)
            log_warning(
                "VM {}: removed the backup bitmap of disk {} to load snapshot {} (QEMU loads no snapshot into "
                "a disk with a dirty bitmap); its next backup reads it in full",
                spec.name, disk.path.filename().string(), spec.restore_tag);
    }
}

Result<std::string> VmManager::run_start(const std::string& name, TaskProgress& progress, const StartFrom& from,
                                         const std::string& running_reason) {
    auto vm_result = m_inventory.get_vm(name);
    if (!vm_result) return fail(vm_result.error());
    auto vm = *vm_result;
    auto* engine = TRY(engine_for(vm.engine));
    progress.report(0.1, "preparing disks and network");
    std::vector<std::string> taps;
    auto fail_start = [&](const Error& error) -> Result<std::string> {
        m_nics.unplug(taps);
        remove_cgroup(m_cgroups, name);
        set_state(name, VmState::Failed, error.message(), 0);
        return fail(error);
    };
    auto spec = launch_spec(vm);
    if (!spec) return fail_start(spec.error());
    if (vm.engine == "emulated") {
        // Every start is a new generation (one from a snapshot is a fork: the guest reseeds its
        // RNG); the record keeps it, so that a live migration hands the same one on.
        spec->generation_id = random_guid();
        auto kept = [&]() -> Result<void> {
            std::lock_guard lock(m_mutex);
            auto stored = TRY(m_inventory.get_vm(name));
            stored.generation_id = spec->generation_id;
            TRY(m_inventory.update_vm(stored));
            return {};
        }();
        if (!kept)
            return fail_start(kept.error());
    }
    spec->restore_tag = from.restore_tag;
    spec->restore_dir = from.restore_dir;
    if (!from.restore_tag.empty())
        drop_backup_bitmaps(*spec);
    spec->start_paused = from.paused;
    auto plugged = m_nics.plug(vm);
    if (!plugged) return fail_start(plugged.error());
    spec->nics = std::move(plugged->nics);
    taps = std::move(plugged->created_taps);
    std::error_code ignored;
    fs::remove_all(vm.run_dir, ignored);
    fs::create_directories(vm.run_dir, ignored);
    // The group and its limits first, so that a limit the host cannot enforce stops the start
    // before any process exists; without cgroups only a VM with no limits runs.
    // A VM without limits still gets a group where the host allows (its counters are the VM's
    // own), but runs without one where it does not (corrald not root, no cgroups).
    // The rate limits are the monitor's, not the group's.
    const bool limited = vm.limits.needs_cgroup();
    bool grouped = false;
    if (m_cgroups.version == CgroupVersion::None) {
        if (limited)
            return fail_start(Error(fmt::format("{} has limits, but this host has no usable cgroups ({})", name,
                                                m_cgroups.note)));
    } else if (auto applied = apply_cgroup_limits(m_cgroups, name, vm.limits, vm.memory_mib); applied) {
        grouped = true;
        for (const auto& warning : *applied) log_warning("VM {}: {}", name, warning);
    } else if (limited) {
        return fail_start(applied.error());
    } else {
        log_warning("VM {}: runs without a cgroup: {}", name, applied.error().describe());
    }
    progress.report(0.3, fmt::format("launching on the {} engine", vm.engine));
    auto instance = engine->launch(*spec);
    if (!instance) return fail_start(instance.error());
    if (grouped) {
        if (auto attached = attach_to_cgroup(m_cgroups, name, (*instance)->pid()); !attached) {
            if (limited) {
                // A VM outside its limits is not what was asked for: it does not run.
                ignore_error((*instance)->kill(), "the cgroup's error is the one to report");
                return fail_start(attached.error().with_context("moving the VM process into its cgroup"));
            }
            log_warning("VM {}: runs without a cgroup: {}", name, attached.error().describe());
        }
    }
    if (!vm.limits.vcpu_pins.empty()) {
        if (auto pinned = apply_vcpu_pins((*instance)->pid(), vm.limits); !pinned) {
            ignore_error((*instance)->kill(), "the pinning's error is the one to report");
            return fail_start(pinned.error());
        }
    }
    apply_kept_balloon(name, **instance);
    auto live = std::make_shared<LiveVm>();
    live->instance = std::move(*instance);
    live->created_taps = std::move(taps);
    pid_t pid = live->instance->pid();
    auto console = console_for(name);
    console->note(fmt::format("{} started on the {} engine (pid {})", name, vm.engine, pid));
    console->attach(live->instance->console_socket(), {}, live->instance->console_log());
    {
        std::lock_guard lock(m_mutex);
        m_live[name] = live;
    }
    set_state(name, VmState::Running,
              running_reason.empty() ? fmt::format("started on the {} engine", vm.engine) : running_reason, pid);
    supervise(name, live);
    if (!from.restore_tag.empty() || !from.restore_dir.empty())
        return fmt::format("{} is running from its snapshot (pid {})", name, pid);
    return fmt::format("{} is running (pid {})", name, pid);
}

Result<std::string> VmManager::run_stop(const std::string& name, VmAction action, std::chrono::seconds timeout,
                                        TaskProgress& progress) {
    std::shared_ptr<LiveVm> live;
    {
        std::lock_guard lock(m_mutex);
        auto it = m_live.find(name);
        if (it == m_live.end()) return std::string(fmt::format("{} was already stopped", name));
        live = it->second;
    }
    auto wait_exit = [&](std::chrono::seconds limit) {
        std::unique_lock lock(m_mutex);
        return m_exited.wait_for(lock, limit, [&] { return live->exited; });
    };
    if (action == VmAction::Stop) {
        set_state(name, VmState::Stopping, fmt::format("asked the guest to shut down (timeout {} s)", timeout.count()));
        // A paused guest cannot react to the request.
        if (auto state = live->instance->query(); state && *state == engine::RunState::Paused)
            ignore_error(live->instance->resume(),
                         "a guest still paused ignores the shutdown request, and the kill after the timeout follows");
        if (auto asked = live->instance->request_shutdown(); !asked)
            log_warning("VM {}: shutdown request failed: {}", name, asked.error().describe());
        progress.report(0.2, "waiting for the guest to shut down");
        if (wait_exit(timeout)) return fmt::format("{} shut down", name);
        {
            std::lock_guard lock(m_mutex);
            live->stop_reason = fmt::format("killed: the guest did not shut down within {} s", timeout.count());
        }
        progress.report(0.8, fmt::format("the guest did not shut down within {} s: killing it", timeout.count()));
    }
    TRY_VOID(live->instance->kill());
    if (!wait_exit(std::chrono::seconds(30))) return fail(fmt::format("{} did not end 30 s after SIGKILL", name));
    return action == VmAction::Kill ? fmt::format("{} killed", name) : fmt::format("{} killed after the timeout", name);
}

Result<std::string> VmManager::run_reboot(const std::string& name, std::chrono::seconds timeout,
                                          TaskProgress& progress) {
    std::shared_ptr<LiveVm> live;
    {
        std::lock_guard lock(m_mutex);
        auto it = m_live.find(name);
        if (it == m_live.end()) return fail(fmt::format("{} has no running process", name), EBUSY);
        live = it->second;
    }
    auto wait_exit = [&](std::chrono::seconds limit) {
        std::unique_lock lock(m_mutex);
        return m_exited.wait_for(lock, limit, [&] { return live->exited; });
    };
    // The guest shut down (or the process ended otherwise): on_exit() moved the VM to starting,
    // unless a stop or kill came meanwhile, which wins.
    auto start_again = [&](const std::string& reason) -> Result<std::string> {
        auto vm = TRY(m_inventory.get_vm(name));
        if (vm.state != to_string(VmState::Starting))
            return fail(fmt::format("{} is {} ({}): the reboot does not start it again", name, vm.state,
                                    vm.state_reason),
                        EBUSY);
        progress.report(0.6, "starting it again");
        TRY(run_start(name, progress, {}, reason));
        m_events.publish({{"kind", "vm.rebooted"}, {"target", name}, {"reason", reason}});
        return fmt::format("{} {}", name, reason);
    };
    const std::string shut_down = "rebooted (the guest shut down)";
    if (auto asked = live->instance->request_shutdown(); !asked)
        log_warning("VM {}: shutdown request failed: {}", name, asked.error().describe());
    progress.report(0.2, "waiting for the guest to shut down");
    if (wait_exit(timeout)) return start_again(shut_down);

    // The guest did not go in time: reset it, as its reset button would.
    const std::string reset_reason = fmt::format("reset (the guest did not shut down in {} s)", timeout.count());
    progress.report(0.8, fmt::format("the guest did not shut down within {} s: resetting it", timeout.count()));
    auto reset = live->instance->reset();
    // A reset that failed because the guest went meanwhile: its shutdown came late, not never.
    if (!reset && wait_exit(std::chrono::seconds(5))) return start_again(shut_down);
    bool exited;
    {
        std::lock_guard lock(m_mutex);
        // An end that came before this point is the guest's shutdown after all (on_exit() saw
        // the reboot request); after it, an end is the VM's own again.
        exited = live->exited;
        if (!exited) live->reboot_requested = false;
    }
    if (exited) return start_again(shut_down);
    if (!reset) {
        // Still running and not resettable (the engine refused): it keeps running as it was.
        set_state(name, VmState::Running, fmt::format("the reboot failed: {}", reset.error().message()));
        return fail(reset.error().with_context(fmt::format("resetting {} after {} s", name, timeout.count())));
    }
    set_state(name, VmState::Running, reset_reason);
    m_events.publish({{"kind", "vm.reset"}, {"target", name}, {"reason", reset_reason}});
    return fmt::format("{} {}", name, reset_reason);
}

Result<std::string> VmManager::run_simple(const std::string& name, VmAction action) {
    std::shared_ptr<LiveVm> live;
    {
        std::lock_guard lock(m_mutex);
        auto it = m_live.find(name);
        if (it == m_live.end()) return fail(fmt::format("{} has no running process", name), EBUSY);
        live = it->second;
    }
    switch (action) {
        case VmAction::Pause:
            TRY_VOID(live->instance->pause());
            set_state(name, VmState::Paused, "paused on request");
            return fmt::format("{} paused", name);
        case VmAction::Resume:
            TRY_VOID(live->instance->resume());
            set_state(name, VmState::Running, "resumed on request");
            return fmt::format("{} resumed", name);
        case VmAction::Reset:
            TRY_VOID(live->instance->reset());
            set_state(name, VmState::Running, "reset on request");
            m_events.publish({{"kind", "vm.reset"}, {"target", name}, {"reason", "reset on request"}});
            return fmt::format("{} reset", name);
        default:
            return fail("not a simple action");
    }
}

Result<std::shared_ptr<VmConsole>> VmManager::console(const std::string& name) {
    TRY(m_inventory.get_vm(name));
    return console_for(name);
}

Result<VmMetrics> VmManager::metrics(const std::string& name) {
    auto vm = TRY(m_inventory.get_vm(name));
    std::shared_ptr<LiveVm> live;
    {
        std::lock_guard lock(m_mutex);
        if (auto it = m_live.find(name); it != m_live.end()) live = it->second;
    }
    if (!live) return VmMetrics{};
    std::vector<std::string> taps;
    for (size_t i = 0; i < vm.nics.size(); ++i) taps.push_back(m_nics.host_tap(vm, i));
    auto metrics = collect_vm_metrics(live->instance->pid(), *live->instance, taps);
    if (auto stats = read_cgroup_stats(m_cgroups, name))
        metrics.cpu_throttled_seconds = static_cast<double>(stats->cpu_throttled_usec) / 1e6;
    return metrics;
}

}  // namespace corral::daemon
