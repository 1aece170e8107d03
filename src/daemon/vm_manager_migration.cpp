// VmManager's side of a live migration between two corralds (docs/migration.md "corrald"): the
// source's instance moves out, the destination's instance waits for it. The channel between
// the two daemons is MigrationService's; here are the records, instances, taps and folders.

#include <fmt/format.h>

#include <fstream>
#include <thread>

#include "base/private_file.h"

#include "base/log.h"
#include "daemon/vm_manager.h"

namespace corral::daemon {

namespace fs = std::filesystem;
using inventory::VmRecord;
using namespace std::chrono_literals;

namespace {
/// The incoming instance's stream socket, in its run folder (only root can reach it).
constexpr const char* k_incoming_socket = "migrate-in.sock";
/// The volumes made here for an incoming VM's copied disks, one "pool/volume" a line, in its run
/// folder: whatever ends an incoming VM that did not switch (its process ending, a corrald
/// restart, a refusal) deletes them, also after a corrald that was killed.
constexpr const char* k_copies_file = "migrate-copies";
/// How long the source waits for its process to end once QEMU reported the switch.
constexpr auto k_source_exit_wait = 30s;
}  // namespace

Result<VmRecord> VmManager::begin_migration_out(const std::string& name) {
    std::lock_guard lock(m_mutex);
    auto vm = TRY(m_inventory.get_vm(name));
    if (vm.state != to_string(VmState::Running))
        return fail(fmt::format("{} is {}; a live migration needs it running", name, vm.state), EBUSY);
    if (!m_live.contains(name))
        return fail(fmt::format("{} has no running process", name), EBUSY);
    if (auto snapshots = m_inventory.list_snapshots(name); snapshots && !snapshots->empty())
        return fail(fmt::format("{} has {} snapshot(s), which do not move with it yet; delete them first "
                                "(corral snapshot list {})",
                                name, snapshots->size(), name),
                    EBUSY);
    if (m_snapshot_work.contains(name))
        return fail(fmt::format("{} has a snapshot operation, backup or migration in progress", name), EBUSY);
    m_snapshot_work.insert(name);
    return vm;
}

void VmManager::end_migration_out(const std::string& name) {
    end_snapshot_work(name);
}

Result<engine::MigrationReport> VmManager::migrate_out(const std::string& name, engine::MigrationRequest request,
                                                       const std::function<SwitchAnswer()>& confirm) {
    std::shared_ptr<LiveVm> live;
    {
        std::lock_guard lock(m_mutex);
        auto it = m_live.find(name);
        if (it == m_live.end())
            return fail(fmt::format("{} has no running process", name), EBUSY);
        live = it->second;
        // The source QEMU quits at the switch: that end is a stop, not a crash to restart.
        live->stop_requested = true;
        live->stop_reason = fmt::format("migrated to {}", request.to);
    }
    auto runs_on_here = [&] {
        std::lock_guard lock(m_mutex);
        live->stop_requested = false;
        live->stop_reason.clear();
    };
    // QEMU's "completed" means the stream left this process, not that the destination has it,
    // nor that the guest runs there: the guest stays here, paused, until `confirm` says it runs
    // there. Paused after a completed migration, QEMU has let go of the disks (it inactivates
    // them before the stream's end: no write lock held), so the destination's `cont` can take them.
    request.stay_paused_at_switch = true;
    auto report = live->instance->migrate(request);
    if (!report) {
        runs_on_here();
        return fail(report.error());
    }
    const SwitchAnswer answer = confirm();
    // corral-vmm (the native engine) hands over by itself: it ends once the destination loaded
    // the guest and was told to run it, so its copy here may be gone whatever `confirm` says.
    auto ended_here = [&] {
        return fail(fmt::format("{}; {}'s process here ended at the switch (its engine hands the guest over by "
                                "itself): it does not run here",
                                answer.why, name),
                    EIO);
    };
    if (answer.then != SwitchAnswer::Then::EndHere) {
        if (live->instance->exited())
            return ended_here();
        runs_on_here();
        if (answer.then == SwitchAnswer::Then::StayPaused) {
            set_state(name, VmState::Paused, "its migration was left in doubt: " + answer.why);
            log_warning("VM {}: the switch was left in doubt ({}); it stays paused here", name, answer.why);
            return fail(answer.why, EIO);
        }
        // `cont` after a completed migration takes the disks back (QEMU reactivates them); it
        // fails while the destination's QEMU holds them (it ran the guest there after all).
        if (auto resumed = live->instance->resume(); !resumed) {
            if (live->instance->exited()) {
                std::lock_guard lock(m_mutex);
                live->stop_requested = true;  // a stop, not a crash to restart
                return ended_here();
            }
            set_state(name, VmState::Paused, "its migration failed and it cannot resume: " + resumed.error().message());
            log_warning("VM {}: the switch failed ({}) and it cannot resume here: {}", name, answer.why,
                        resumed.error().message());
            return fail(fmt::format("{}; and {} cannot resume here: {}; it stays paused here (if it does not run "
                                    "there, `corral vm resume {}` here)",
                                    answer.why, name, resumed.error().message(), name),
                        EIO);
        }
        log_warning("VM {}: the switch was not confirmed ({}); it runs on here", name, answer.why);
        return fail(fmt::format("{}; {} runs on here", answer.why, name), EIO);
    }
    // The stopped copy here goes (a paused QEMU after a completed migration writes nothing).
    ignore_error(live->instance->kill(), "the process may have ended already");
    // The VM runs at the destination now. on_exit() unplugs the taps and removes the cgroup
    // when the process ends; then the record goes (the disks stay: the destination uses them).
    {
        std::unique_lock lock(m_mutex);
        if (!m_exited.wait_for(lock, k_source_exit_wait, [&] { return live->exited; })) {
            lock.unlock();
            log_warning("VM {}: its process did not end after the migration; killing it", name);
            ignore_error(live->instance->kill(), "the migration succeeded; a lingering copy must go");
            lock.lock();
            m_exited.wait_for(lock, 5s, [&] { return live->exited; });
        }
        m_snapshot_work.erase(name);
        if (auto deleted = m_inventory.delete_vm(name); !deleted)
            log_error("VM {}: migrated, but its record stays: {}", name, deleted.error().describe());
        if (auto it = m_consoles.find(name); it != m_consoles.end()) {
            it->second->detach();
            m_consoles.erase(it);
        }
        m_restart_budget.forget(name);
    }
    std::error_code ignored;
    fs::remove_all(live->instance->run_dir(), ignored);
    m_events.publish({{"kind", "vm.deleted"}, {"target", name}, {"reason", live->stop_reason}});
    return report;
}

fs::path VmManager::migrate_disks_socket(const fs::path& stream_socket) {
    return stream_socket.parent_path() / "migrate-disks.sock";
}

Result<fs::path> VmManager::prepare_incoming(VmRecord vm, const std::string& origin,
                                             const std::vector<size_t>& copied_disks) {
    auto* engine = TRY(engine_for(vm.engine));
    if (auto available = engine->availability(); !available.available)
        return fail(fmt::format("engine {} is not available on this host: {}", vm.engine, available.reason), ENODEV);
    vm.state = to_string(VmState::MigratingIn);
    vm.state_reason = fmt::format("arriving from {}", origin);
    vm.run_dir = (m_run_root / vm.name).string();
    vm.pid = 0;
    vm.restarts = 0;
    {
        std::lock_guard lock(m_mutex);
        if (m_inventory.get_vm(vm.name))
            return fail(fmt::format("a VM named {} already exists", vm.name), EEXIST);
        TRY_VOID(check_disks(vm));
        // Admission as for a start, under the same lock, so that the record claims its share.
        if (auto refusal =
                admission_refusal(m_capacity, m_host_size, allocated(TRY(m_inventory.list_vms()), vm.name), vm))
            return fail(*refusal, EBUSY);
        TRY(m_inventory.create_vm(vm));
    }
    (void)console_for(vm.name);
    std::vector<std::string> taps;
    auto undo = [&](const Error& error) -> Result<fs::path> {
        m_nics.unplug(taps);
        discard_incoming(vm.name, error.message());
        return fail(error);
    };
    auto spec = launch_spec(vm);
    if (!spec)
        return undo(spec.error());
    auto plugged = m_nics.plug(vm);
    if (!plugged)
        return undo(plugged.error());
    spec->nics = std::move(plugged->nics);
    taps = std::move(plugged->created_taps);
    std::error_code ignored;
    fs::remove_all(vm.run_dir, ignored);
    fs::create_directories(vm.run_dir, ignored);
    const fs::path socket = fs::path(vm.run_dir) / k_incoming_socket;
    spec->migrate_listen = "unix:" + socket.string();
    if (!copied_disks.empty()) {
        std::string copies;
        for (size_t index : copied_disks)
            copies += fmt::format("{}/{}\n", vm.disks.at(index).pool, vm.disks.at(index).volume);
        if (auto written = write_file_atomically((fs::path(vm.run_dir) / k_copies_file).string(), copies, 0600);
            !written)
            return undo(written.error());
        spec->copied_disks = copied_disks;
        spec->disks_listen = "unix:" + migrate_disks_socket(socket).string();
    }
    auto instance = engine->launch(*spec);
    if (!instance)
        return undo(instance.error());
    auto live = std::make_shared<LiveVm>();
    live->instance = std::move(*instance);
    live->created_taps = std::move(taps);
    live->incoming = true;
    auto console = console_for(vm.name);
    console->note(fmt::format("{} arriving from {} on the {} engine (pid {})", vm.name, origin, vm.engine,
                              live->instance->pid()));
    console->attach(live->instance->console_socket(), {}, live->instance->console_log());
    {
        std::lock_guard lock(m_mutex);
        m_live[vm.name] = live;
        // The record names its process while it waits, like any VM that has one.
        if (auto stored = m_inventory.get_vm(vm.name)) {
            stored->pid = live->instance->pid();
            ignore_error(m_inventory.update_vm(*stored), "the pid is for display; the instance is supervised");
        }
    }
    m_events.publish({{"kind", "vm.created"}, {"target", vm.name}});
    supervise(vm.name, live);
    return socket;
}

Result<void> VmManager::finish_incoming(const std::string& name, const std::string& origin, std::chrono::seconds wait) {
    std::shared_ptr<LiveVm> live;
    {
        std::lock_guard lock(m_mutex);
        auto it = m_live.find(name);
        if (it == m_live.end() || !it->second->incoming)
            return fail(fmt::format("{} is not arriving by migration here", name), ENOENT);
        live = it->second;
    }
    // A failed switch ends the instance here before it answers: the source resumes its copy on
    // the answer, and its `cont` needs the disks' locks, which this process holds until it ended.
    auto end_instance = [&] {
        ignore_error(live->instance->kill(), "the switch's failure is the error to report");
        std::unique_lock lock(m_mutex);
        m_exited.wait_for(lock, 10s, [&] { return live->exited; });
    };
    // The copied disks are complete (the source ended its mirrors before it confirmed): nothing
    // outside may write them once the guest runs.
    if (auto stopped = live->instance->stop_disk_server(); !stopped) {
        end_instance();
        return fail(fmt::format("{} cannot run here: {}", name, stopped.error().message()), EIO);
    }
    // The instance waits paused (-S) once loaded, its disks not yet taken (late-block-activate):
    // the source, paused with its disks let go, asks it to run here now (a `cont` while QEMU
    // still loads runs it at the end of the load). Its `cont` takes the disks' write locks, and
    // fails while the source holds them (its copy resumed there): then it must not run here.
    // (corral-vmm runs the guest itself once the stream ended: its `resume` may refuse, running.)
    if (auto resumed = live->instance->resume();
        !resumed && !(live->instance->query() && *live->instance->query() == engine::RunState::Running)) {
        end_instance();
        return fail(fmt::format("{} cannot run here: {}", name, resumed.error().message()), EIO);
    }
    auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
        auto state = live->instance->query();
        if (state && *state == engine::RunState::Running)
            break;
        if (live->instance->exited() || std::chrono::steady_clock::now() > deadline) {
            end_instance();
            return fail(fmt::format("{} did not start running here after the switch{}", name,
                                    state ? "" : ": " + state.error().message()),
                        EIO);
        }
        std::this_thread::sleep_for(50ms);
    }
    {
        std::lock_guard lock(m_mutex);
        live->incoming = false;
    }
    std::error_code ignored;
    fs::remove(fs::path(live->instance->run_dir()) / k_copies_file, ignored);  // the copies are the VM's now
    if (auto pinned = m_inventory.get_vm(name); pinned && !pinned->limits.vcpu_pins.empty())
        ignore_error(apply_vcpu_pins(live->instance->pid(), pinned->limits), "pinning is best effort after a switch");
    // The balloon's size came with the device's state; the target kept with the VM (which came
    // with its record) is told to this instance too, so that it reports and keeps it.
    apply_kept_balloon(name, *live->instance);
    set_state(name, VmState::Running, fmt::format("migrated in from {}", origin), live->instance->pid());
    return {};
}

void VmManager::abort_incoming(const std::string& name) {
    std::shared_ptr<LiveVm> live;
    {
        std::lock_guard lock(m_mutex);
        auto it = m_live.find(name);
        if (it == m_live.end() || !it->second->incoming)
            return;
        live = it->second;
    }
    // on_exit() discards the record once the process ended.
    ignore_error(live->instance->kill(), "a process that already ended is fine");
    std::unique_lock lock(m_mutex);
    m_exited.wait_for(lock, 10s, [&] { return live->exited; });
}

void VmManager::delete_incoming_copies(const fs::path& list) {
    std::ifstream file(list);
    std::string line;
    while (std::getline(file, line)) {
        const auto slash = line.find('/');
        if (slash == std::string::npos)
            continue;
        const std::string pool_name = line.substr(0, slash), volume = line.substr(slash + 1);
        auto pool = m_storage.pool(pool_name);
        auto deleted = pool ? (*pool)->delete_volume(volume) : Result<void>(fail(pool.error()));
        if (deleted)
            log_info("deleted {}, the copy made for an incoming migration that did not switch", line);
        else if (deleted.error().errno_value() != ENOENT)
            log_warning("cannot delete {}, the copy made for an incoming migration that did not switch: {}", line,
                        deleted.error().message());
    }
}

void VmManager::discard_incoming(const std::string& name, const std::string& why) {
    VmRecord vm;
    {
        std::lock_guard lock(m_mutex);
        auto found = m_inventory.get_vm(name);
        if (!found || found->state != to_string(VmState::MigratingIn))
            return;
        vm = *found;
        if (auto deleted = m_inventory.delete_vm(name); !deleted)
            log_error("VM {}: cannot remove the record of a failed incoming migration: {}", name,
                      deleted.error().describe());
        if (auto it = m_consoles.find(name); it != m_consoles.end()) {
            it->second->detach();
            m_consoles.erase(it);
        }
    }
    remove_cgroup(m_cgroups, name);
    std::error_code ignored;
    if (!vm.run_dir.empty()) {
        delete_incoming_copies(fs::path(vm.run_dir) / k_copies_file);
        fs::remove_all(vm.run_dir, ignored);
    }
    log_info("VM {}: incoming migration discarded: {}", name, why);
    m_events.publish({{"kind", "vm.deleted"}, {"target", name}, {"reason", "incoming migration discarded: " + why}});
}

}  // namespace corral::daemon
