#include "daemon/vm_manager.h"

#include <sys/types.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "base/log.h"
#include "daemon/disk_rules.h"
#include "engine/console_log.h"
#include "base/utf8.h"
#include "engine/shim_process.h"
#include "net/persistent_tap.h"

namespace corral::daemon {
namespace fs = std::filesystem;
using inventory::VmRecord;

namespace {

constexpr size_t k_crash_console_lines = 20;
constexpr int k_restart_limit = 5;
constexpr auto k_restart_window = std::chrono::minutes(5);

bool is_down(const std::string& state) { return state == "stopped" || state == "crashed" || state == "failed"; }

/// A tap name for NIC `index` of VM `name`: at most 15 characters (IFNAMSIZ - 1), stable for
/// the VM, and unlikely to collide ("crl" + 8 hex digits of the name's hash + "n" + index).
/// A bridge NIC's tap name, from the VM's name (names are longer than IFNAMSIZ allows). FNV-1a,
/// not std::hash: the name must stay the same across corrald builds, since a new corrald finds
/// (and removes) the taps an older one made.
std::string tap_name_for(const std::string& name, size_t index) {
    uint32_t hash = 2166136261u;
    for (unsigned char c : name) hash = (hash ^ c) * 16777619u;
    return fmt::format("crl{:08x}n{}", hash, index);
}

uint64_t read_counter(const fs::path& path) {
    std::ifstream in(path);
    uint64_t value = 0;
    in >> value;
    return value;
}

}  // namespace

std::optional<VmAction> parse_vm_action(const std::string& word) {
    static const std::map<std::string, VmAction> actions = {
        {"start", VmAction::Start}, {"stop", VmAction::Stop},     {"kill", VmAction::Kill},
        {"pause", VmAction::Pause}, {"resume", VmAction::Resume}, {"reboot", VmAction::Reboot}};
    auto it = actions.find(word);
    if (it == actions.end()) return std::nullopt;
    return it->second;
}

const char* to_string(VmAction action) {
    switch (action) {
        case VmAction::Start: return "start";
        case VmAction::Stop: return "stop";
        case VmAction::Kill: return "kill";
        case VmAction::Pause: return "pause";
        case VmAction::Resume: return "resume";
        case VmAction::Reboot: return "reboot";
    }
    return "?";
}

nlohmann::json vm_json(const VmRecord& vm) {
    nlohmann::json disks = nlohmann::json::array();
    for (const auto& disk : vm.disks)
        disks.push_back({{"pool", disk.pool}, {"volume", disk.volume}, {"readonly", disk.readonly}});
    nlohmann::json nics = nlohmann::json::array();
    for (const auto& nic : vm.nics) {
        nlohmann::json item = {{"mac", nic.mac}};
        if (!nic.bridge.empty()) item["bridge"] = nic.bridge;
        if (!nic.tap.empty()) item["tap"] = nic.tap;
        nics.push_back(item);
    }
    auto null_if_empty = [](const std::string& text) -> nlohmann::json {
        return text.empty() ? nlohmann::json(nullptr) : nlohmann::json(text);
    };
    return {{"name", vm.name},
            {"state", vm.state},
            {"engine", vm.engine},
            {"vcpus", vm.vcpus},
            {"memory_mib", vm.memory_mib},
            {"image", null_if_empty(vm.image)},
            {"disks", disks},
            {"nics", nics},
            {"restart_policy", vm.restart_policy},
            {"cmdline", vm.cmdline},
            {"pid", vm.pid == 0 ? nlohmann::json(nullptr) : nlohmann::json(vm.pid)},
            {"state_reason", vm.state_reason},
            {"created_at", vm.created_at},
            {"updated_at", vm.updated_at}};
}

VmManager::VmManager(inventory::Inventory& inventory, StorageService& storage, TaskManager& tasks,
                     EventBus& events, Engines engines, std::string default_engine, fs::path run_root)
    : m_inventory(inventory),
      m_storage(storage),
      m_tasks(tasks),
      m_events(events),
      m_engines(std::move(engines)),
      m_default_engine(std::move(default_engine)),
      m_run_root(std::move(run_root)) {}

VmManager::~VmManager() {
    // Stop watching first (the loop thread calls into this object), then let consoles go.
    if (m_supervisor) m_supervisor->stop();
    std::lock_guard lock(m_mutex);
    for (auto& [name, console] : m_consoles) console->detach();
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

void VmManager::set_state(const std::string& name, const std::string& state, const std::string& reason, int64_t pid) {
    std::lock_guard lock(m_mutex);
    auto vm = m_inventory.get_vm(name);
    if (!vm) return;
    vm->state = state;
    vm->state_reason = reason;
    if (pid >= 0) vm->pid = pid;
    if (auto stored = m_inventory.update_vm(*vm); !stored)
        log_error("VM {}: cannot store state {}: {}", name, state, stored.error().describe());
    m_events.publish({{"kind", "vm.state"}, {"target", name}, {"state", state}, {"reason", reason}});
    log_info("VM {}: {}{}{}", name, state, reason.empty() ? "" : ": ", reason);
}

Result<void> VmManager::start_supervising() {
    m_supervisor = TRY(EventLoop::start("supervisor"));
    auto vms = TRY(m_inventory.list_vms());
    for (const auto& vm : vms) {
        if (is_down(vm.state)) continue;
        auto* engine = m_engines.count(vm.engine) ? m_engines[vm.engine].get() : nullptr;
        auto adopted = engine && !vm.run_dir.empty()
                           ? engine->adopt(vm.run_dir)
                           : Result<std::unique_ptr<engine::Instance>>(fail("no engine", ENOENT));
        if (adopted) {
            auto live = std::make_shared<LiveVm>();
            live->instance = std::move(*adopted);
            // The corrald that started it made its bridge NICs' taps; this one removes them when it ends.
            for (size_t i = 0; i < vm.nics.size(); ++i)
                if (!vm.nics[i].bridge.empty()) live->created_taps.push_back(tap_name_for(vm.name, i));
            // Only the log's tail: it may be large, and the scroll-back keeps no more anyway.
            const auto log = live->instance->console_log();
            std::string seed = log.empty() ? std::string() : engine::read_console_log_tail(log, VmConsole::k_scrollback_bytes);
            console_for(vm.name)->attach(live->instance->console_socket(), std::move(seed), log);
            auto state = live->instance->query();
            {
                std::lock_guard lock(m_mutex);
                m_live[vm.name] = live;
            }
            set_state(vm.name, state && *state == engine::RunState::Paused ? "paused" : "running",
                      "adopted after corrald restarted", live->instance->pid());
            supervise(vm.name, live);
            continue;
        }
        // It ended while nobody watched: its shim's exit.json says how (the engine reads it). Its
        // bridge NICs' taps outlived it; left in place they would make its next start fail (EEXIST).
        for (size_t i = 0; i < vm.nics.size(); ++i)
            if (!vm.nics[i].bridge.empty()) (void)net::delete_persistent_tap(tap_name_for(vm.name, i));
        auto exit = engine::read_exit_info(vm.run_dir, {});
        bool clean = exit && exit->exit_code == 0;
        std::string reason = exit ? fmt::format("ended while corrald was not running ({})", exit->reason)
                                  : "ended while corrald was not running";
        set_state(vm.name, clean ? "stopped" : "crashed", reason, 0);
    }
    return {};
}

void VmManager::supervise(const std::string& name, const std::shared_ptr<LiveVm>& live) {
    int fd = live->instance->exit_fd();
    auto added = m_supervisor->add(fd, [this, name, live, fd] {
        // remove() drops this very callback: keep what it needs first. Level-triggered, so
        // stop watching before handling (the pidfd stays readable).
        std::string vm_name = name;
        std::shared_ptr<LiveVm> ended = live;
        m_supervisor->remove(fd);
        // The supervisor's loop serves every VM: one VM's failure must not end it (or corrald).
        try {
            on_exit(vm_name, std::move(ended));
        } catch (const std::exception& error) {
            log_error("VM {}: handling its exit failed: {}", vm_name, error.what());
        }
    });
    if (!added) log_error("VM {}: cannot supervise: {}", name, added.error().describe());
}

bool VmManager::should_restart(const std::string& name, const VmRecord& vm, bool crashed) {
    bool wanted = vm.restart_policy == "always" || (vm.restart_policy == "on-failure" && crashed);
    if (!wanted) return false;
    auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(m_mutex);
    auto& times = m_restarts[name];
    while (!times.empty() && now - times.front() > k_restart_window) times.pop_front();
    if (static_cast<int>(times.size()) >= k_restart_limit) return false;
    times.push_back(now);
    return true;
}

void VmManager::on_exit(const std::string& name, std::shared_ptr<LiveVm> live) {
    // Wait for the shim to finish writing exit.json (the pidfd fires when it has exited).
    auto info = live->instance->exit_info();
    auto console = console_for(name);
    console->detach();
    for (const auto& tap : live->created_taps) (void)net::delete_persistent_tap(tap);

    bool requested;
    std::string stop_reason;
    {
        std::lock_guard lock(m_mutex);
        requested = live->stop_requested;
        stop_reason = live->stop_reason;
        live->exited = true;
        if (auto it = m_live.find(name); it != m_live.end() && it->second == live) m_live.erase(it);
    }
    m_exited.notify_all();

    std::string why = info ? info->reason : "the VM process ended";
    console->note(fmt::format("{} ended: {}", name, why));
    bool clean = info && info->exit_code == 0;
    if (requested) {
        set_state(name, "stopped", stop_reason.empty() ? why : stop_reason, 0);
        return;
    }
    std::string state = clean ? "stopped" : "crashed";
    std::string reason = clean ? fmt::format("guest powered off ({})", why) : why;
    set_state(name, state, reason, 0);
    if (!clean) {
        m_events.publish({{"kind", "vm.crashed"},
                          {"target", name},
                          {"reason", reason},
                          {"last_console", sanitize_utf8(console->tail(k_crash_console_lines))}});
    }
    auto vm = m_inventory.get_vm(name);
    if (vm && should_restart(name, *vm, !clean)) {
        log_info("VM {}: restarting (restart policy {})", name, vm->restart_policy);
        (void)act(name, VmAction::Start, std::chrono::seconds(0));
    } else if (vm && vm->restart_policy != "no" && !clean) {
        set_state(name, "crashed", fmt::format("{}; restarted {} times in 5 minutes, giving up", reason, k_restart_limit),
                  0);
    }
}

Result<void> VmManager::check_disks(const VmRecord& vm) {
    if (auto conflict = TRY(find_disk_conflict(m_inventory, m_storage, vm)))
        return fail(fmt::format("{}: {}", conflict->field(), conflict->message), EBUSY);
    return {};
}

Result<VmRecord> VmManager::create(VmRecord vm) {
    if (vm.engine.empty()) vm.engine = m_default_engine;
    TRY(engine_for(vm.engine));
    if (m_inventory.get_vm(vm.name)) return fail(fmt::format("a VM named {} already exists", vm.name), EEXIST);
    TRY_VOID(check_disks(vm));
    std::optional<std::pair<storage::pool::StoragePool*, std::string>> cloned;
    if (!vm.image.empty()) {
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
        if (vm.nics[i].mac.empty()) {
            auto hash = std::hash<std::string>{}(vm.name + "/" + std::to_string(i));
            vm.nics[i].mac = fmt::format("52:54:00:{:02x}:{:02x}:{:02x}", (hash >> 16) & 0xff, (hash >> 8) & 0xff,
                                         hash & 0xff);
        }
    }
    vm.state = "stopped";
    vm.state_reason = "created";
    vm.run_dir = (m_run_root / vm.name).string();
    auto stored = m_inventory.create_vm(vm);
    if (!stored) {
        // All or nothing: the clone made for this VM goes again.
        if (cloned) (void)cloned->first->delete_volume(cloned->second);
        return fail(stored.error());
    }
    (void)console_for(vm.name);
    m_events.publish({{"kind", "vm.created"}, {"target", vm.name}});
    return stored;
}

Result<VmRecord> VmManager::edit(const VmRecord& changed) {
    std::lock_guard lock(m_mutex);
    auto vm = TRY(m_inventory.get_vm(changed.name));
    if (!is_down(vm.state))
        return fail(fmt::format("{} is {}; stop it before editing", vm.name, vm.state), EBUSY);
    vm.vcpus = changed.vcpus;
    vm.memory_mib = changed.memory_mib;
    vm.restart_policy = changed.restart_policy;
    vm.cmdline = changed.cmdline;
    vm.nics = changed.nics;
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
        TRY_VOID(m_inventory.delete_vm(name));
        if (auto it = m_consoles.find(name); it != m_consoles.end()) {
            it->second->detach();
            m_consoles.erase(it);
        }
        m_restarts.erase(name);
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
        const std::string& state = vm.state;
        auto refuse = [&](const char* needs) {
            return fail(fmt::format("{} is {}; {} needs {}", name, state, to_string(action), needs), EBUSY);
        };
        switch (action) {
            case VmAction::Start:
                if (!is_down(state)) return refuse("stopped, crashed or failed");
                break;
            case VmAction::Stop:
            case VmAction::Kill:
                if (state != "running" && state != "paused" && state != "stopping") return refuse("running or paused");
                break;
            case VmAction::Pause:
            case VmAction::Reboot:
                if (state != "running") return refuse("running");
                break;
            case VmAction::Resume:
                if (state != "paused") return refuse("paused");
                break;
        }
        if (action == VmAction::Start) {
            // Again at start: volumes and other VMs may have changed since this one was defined.
            TRY_VOID(check_disks(vm));
            auto* engine = TRY(engine_for(vm.engine));
            auto available = engine->availability();
            if (!available.available)
                return fail(fmt::format("engine {} is not available on this host: {}", vm.engine, available.reason),
                            ENODEV);
            vm.state = "starting";
            vm.state_reason = "";
            TRY(m_inventory.update_vm(vm));
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
            m_events.publish({{"kind", "vm.state"}, {"target", name}, {"state", "starting"}, {"reason", ""}});
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
        default:
            return m_tasks.start(kind, name, [this, name, action](TaskProgress&) { return run_simple(name, action); });
    }
}

Result<engine::LaunchSpec> VmManager::launch_spec(const VmRecord& vm, std::vector<std::string>& created_taps) {
    engine::LaunchSpec spec;
    spec.name = vm.name;
    spec.vcpus = static_cast<unsigned>(vm.vcpus);
    spec.memory_mib = static_cast<uint64_t>(vm.memory_mib);
    spec.run_dir = vm.run_dir;
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
    for (size_t i = 0; i < vm.nics.size(); ++i) {
        const auto& nic = vm.nics[i];
        std::string tap = nic.tap;
        if (!nic.bridge.empty()) {
            tap = tap_name_for(vm.name, i);
            TRY_CONTEXT(net::create_persistent_tap(tap), fmt::format("NIC {} on bridge {}", i, nic.bridge));
            created_taps.push_back(tap);
            TRY_CONTEXT(net::attach_to_bridge(tap, nic.bridge), fmt::format("NIC {}", i));
        }
        spec.nics.push_back({tap, nic.mac});
    }
    return spec;
}

Result<std::string> VmManager::run_start(const std::string& name, TaskProgress& progress) {
    auto vm_result = m_inventory.get_vm(name);
    if (!vm_result) return fail(vm_result.error());
    auto vm = *vm_result;
    auto* engine = TRY(engine_for(vm.engine));
    progress.report(0.1, "preparing disks and network");
    std::vector<std::string> taps;
    auto fail_start = [&](const Error& error) -> Result<std::string> {
        for (const auto& tap : taps) (void)net::delete_persistent_tap(tap);
        set_state(name, "failed", error.message(), 0);
        return fail(error);
    };
    auto spec = launch_spec(vm, taps);
    if (!spec) return fail_start(spec.error());
    std::error_code ignored;
    fs::remove_all(vm.run_dir, ignored);
    fs::create_directories(vm.run_dir, ignored);
    progress.report(0.3, fmt::format("launching on the {} engine", vm.engine));
    auto instance = engine->launch(*spec);
    if (!instance) return fail_start(instance.error());
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
    set_state(name, "running", fmt::format("started on the {} engine", vm.engine), pid);
    supervise(name, live);
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
        set_state(name, "stopping", fmt::format("asked the guest to shut down (timeout {} s)", timeout.count()));
        // A paused guest cannot react to the request.
        if (auto state = live->instance->query(); state && *state == engine::RunState::Paused)
            (void)live->instance->resume();
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
            set_state(name, "paused", "paused on request");
            return fmt::format("{} paused", name);
        case VmAction::Resume:
            TRY_VOID(live->instance->resume());
            set_state(name, "running", "resumed on request");
            return fmt::format("{} resumed", name);
        case VmAction::Reboot:
            TRY_VOID(live->instance->reboot());
            m_events.publish({{"kind", "vm.rebooted"}, {"target", name}});
            return fmt::format("{} rebooted", name);
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
    VmMetrics metrics;
    if (!live) return metrics;
    pid_t pid = live->instance->pid();
    // /proc/PID/stat: fields 14 and 15 are utime and stime in clock ticks; the command name
    // (field 2) may hold spaces, so parse after its closing parenthesis.
    std::ifstream stat_file(fmt::format("/proc/{}/stat", pid));
    std::string stat((std::istreambuf_iterator<char>(stat_file)), {});
    if (auto paren = stat.rfind(')'); paren != std::string::npos) {
        std::istringstream fields(stat.substr(paren + 2));
        std::string field;
        uint64_t utime = 0, stime = 0;
        for (int index = 3; fields >> field; ++index) {
            if (index == 14) utime = std::stoull(field);
            if (index == 15) {
                stime = std::stoull(field);
                break;
            }
        }
        metrics.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
    std::ifstream status(fmt::format("/proc/{}/status", pid));
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("VmRSS:", 0) == 0) metrics.memory_bytes = std::stoull(line.substr(6)) * 1024;
    }
    if (auto disks = live->instance->counters(); disks) metrics.disks = std::move(*disks);
    for (size_t i = 0; i < vm.nics.size(); ++i) {
        std::string tap = vm.nics[i].tap.empty() ? tap_name_for(vm.name, i) : vm.nics[i].tap;
        fs::path stats = fs::path("/sys/class/net") / tap / "statistics";
        // The tap's receive side is what the guest sent, and the other way round.
        metrics.nics.push_back({tap, read_counter(stats / "tx_bytes"), read_counter(stats / "rx_bytes"),
                                read_counter(stats / "tx_packets"), read_counter(stats / "rx_packets")});
    }
    return metrics;
}

}  // namespace corral::daemon
