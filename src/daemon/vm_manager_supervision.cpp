#include "daemon/vm_manager.h"

#include <csignal>

#include <fmt/format.h>

#include "base/log.h"
#include "base/utf8.h"
#include "engine/console_log.h"
#include "engine/shim_process.h"

// VmManager's side of supervision: taking VMs back after a corrald restart, and what happens
// when a VM process ends (state, events, the restart policy). Noticing the end is ExitWatcher's.
namespace corral::daemon {

namespace {
/// How much of the console a vm.crashed event carries.
constexpr size_t k_crash_console_lines = 20;
}  // namespace

Result<void> VmManager::start_supervising() {
    m_exit_watcher = TRY(ExitWatcher::start());
    mark_interrupted_snapshots();
    auto vms = TRY(m_inventory.list_vms());
    for (const auto& vm : vms) {
        if (is_down(vm.state)) continue;
        if (vm.state == to_string(VmState::MigratingIn)) {
            // An incoming migration cut by corrald's end: the source runs the VM on (it never
            // saw the switch confirmed), so this half goes.
            auto* engine = m_engines.count(vm.engine) ? m_engines[vm.engine].get() : nullptr;
            if (auto adopted = engine ? engine->adopt(vm.run_dir)
                                      : Result<std::unique_ptr<engine::Instance>>(fail("no engine", ENOENT)))
                ignore_error((*adopted)->kill(), "the VM is discarded either way");
            m_nics.unplug(m_nics.taps_created_for(vm));
            discard_incoming(vm.name, "corrald restarted during the migration");
            continue;
        }
        auto* engine = m_engines.count(vm.engine) ? m_engines[vm.engine].get() : nullptr;
        auto adopted = engine && !vm.run_dir.empty()
                           ? engine->adopt(vm.run_dir)
                           : Result<std::unique_ptr<engine::Instance>>(fail("no engine", ENOENT));
        if (adopted) {
            auto live = std::make_shared<LiveVm>();
            live->instance = std::move(*adopted);
            // The corrald that started it made its bridge NICs' taps; this one removes them when it ends.
            live->created_taps = m_nics.taps_created_for(vm);
            // Only the log's tail: it may be large, and the scroll-back keeps no more anyway.
            const auto log = live->instance->console_log();
            std::string seed = log.empty() ? std::string() : engine::read_console_log_tail(log, VmConsole::k_scrollback_bytes);
            console_for(vm.name)->attach(live->instance->console_socket(), std::move(seed), log);
            auto state = live->instance->query();
            {
                std::lock_guard lock(m_mutex);
                m_live[vm.name] = live;
            }
            set_state(vm.name, state && *state == engine::RunState::Paused ? VmState::Paused : VmState::Running,
                      "adopted after corrald restarted", live->instance->pid());
            supervise(vm.name, live);
            continue;
        }
        // It ended while nobody watched: its shim's exit.json says how (the engine reads it). Its
        // bridge NICs' taps outlived it; left in place they would make its next start fail (EEXIST).
        m_nics.unplug(m_nics.taps_created_for(vm));
        auto exit = engine::read_exit_info(vm.run_dir, {});
        bool clean = exit && exit->exit_code == 0;
        std::string reason = exit ? fmt::format("ended while corrald was not running ({})", exit->reason)
                                  : "ended while corrald was not running";
        set_state(vm.name, clean ? VmState::Stopped : VmState::Crashed, reason, 0);
    }
    return {};
}

void VmManager::supervise(const std::string& name, const std::shared_ptr<LiveVm>& live) {
    auto watched = m_exit_watcher->watch(name, live->instance->exit_fd(), [this, name, live] { on_exit(name, live); });
    if (!watched) log_error("VM {}: cannot supervise: {}", name, watched.error().describe());
}

void VmManager::on_exit(const std::string& name, std::shared_ptr<LiveVm> live) {
    // Wait for the shim to finish writing exit.json (the pidfd fires when it has exited).
    auto info = live->instance->exit_info();
    auto console = console_for(name);
    console->detach();
    m_nics.unplug(live->created_taps);

    std::string why = info ? info->reason : "the VM process ended";
    // Its group's counters tell a memory limit's OOM kill from any other SIGKILL; then it goes.
    if (auto stats = read_cgroup_stats(m_cgroups, name); stats && stats->oom_kills > 0 && info && info->signal == SIGKILL)
        why += "; the kernel's OOM killer ended it at its memory limit (memory_mib + limits.memory_overhead_mib)";
    remove_cgroup(m_cgroups, name);
    bool incoming;
    {
        std::lock_guard lock(m_mutex);
        incoming = live->incoming;
    }
    if (incoming) {
        // An incoming migration that never switched: this host has no VM to keep.
        {
            std::lock_guard lock(m_mutex);
            live->exited = true;
            if (auto it = m_live.find(name); it != m_live.end() && it->second == live)
                m_live.erase(it);
        }
        m_exited.notify_all();
        discard_incoming(name, why);
        return;
    }
    bool rebooting;
    {
        std::lock_guard lock(m_mutex);
        rebooting = live->reboot_requested && !live->stop_requested;
    }
    // A reboot's shutdown: the reboot task starts it again, straight from stopping to starting
    // so that nothing else starts, edits or deletes it in between. Before `exited` is set, so
    // that the task, woken by it, finds the VM starting.
    if (rebooting) set_state(name, VmState::Starting, fmt::format("rebooting: {}", why), 0);
    bool requested;
    std::string stop_reason;
    {
        std::lock_guard lock(m_mutex);
        requested = live->stop_requested;
        stop_reason = live->stop_reason;
    }
    // A requested stop (never a reboot: `rebooting` excludes it) is recorded before `exited` is
    // set, so that whoever waited for it (a stop task, a failed clone removing itself) finds the
    // VM stopped, not still running.
    if (requested) set_state(name, VmState::Stopped, stop_reason.empty() ? why : stop_reason, 0);
    bool requested_since = false;
    {
        std::lock_guard lock(m_mutex);
        requested_since = !requested && live->stop_requested;
        if (requested_since) stop_reason = live->stop_reason;
        live->exited = true;
        if (auto it = m_live.find(name); it != m_live.end() && it->second == live) m_live.erase(it);
    }
    m_exited.notify_all();

    console->note(fmt::format("{} ended: {}", name, why));
    bool clean = info && info->exit_code == 0;
    if (requested) return;
    if (requested_since && !rebooting) {
        // A stop asked for while the VM was ending: a stop, not a crash (no restart).
        set_state(name, VmState::Stopped, stop_reason.empty() ? why : stop_reason, 0);
        return;
    }
    if (rebooting) return;  // the reboot task carries on (see above)
    VmState state = clean ? VmState::Stopped : VmState::Crashed;
    std::string reason = clean ? fmt::format("guest powered off ({})", why) : why;
    set_state(name, state, reason, 0);
    if (!clean) {
        m_events.publish({{"kind", "vm.crashed"},
                          {"target", name},
                          {"reason", reason},
                          {"last_console", sanitize_utf8(console->tail(k_crash_console_lines))}});
    }
    auto vm = m_inventory.get_vm(name);
    if (vm && m_restart_budget.should_restart(name, vm->restart_policy, !clean)) {
        log_info("VM {}: restarting (restart policy {})", name, vm->restart_policy);
        // A restart that cannot begin (the engine went away, a disk is now in use) leaves the VM
        // crashed, which is what it is; act() has logged nothing, so say why.
        if (auto restarted = act(name, VmAction::Start, std::chrono::seconds(0), StartedBy::RestartPolicy); !restarted)
            log_warning("VM {}: cannot restart: {}", name, restarted.error().describe());
    } else if (vm && vm->restart_policy != "no" && !clean) {
        set_state(name, VmState::Crashed,
                  fmt::format("{}; restarted {} times in {} minutes, giving up", reason, RestartBudget::k_limit,
                              RestartBudget::k_window.count()),
                  0);
    }
}

}  // namespace corral::daemon
