// BackupService's boot checks (`backup verify --boot`, docs/backup.md "Proven to boot"): a backup
// restored as a throwaway VM, booted, watched on its serial console, and removed again.

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <condition_variable>
#include <ctime>
#include <thread>

#include "base/log.h"
#include "base/private_file.h"
#include "daemon/backup_service.h"
#include "daemon/inventory/inventory.h"
#include "daemon/ready_marker.h"
#include "daemon/storage_service.h"
#include "daemon/task_manager.h"
#include "daemon/vm_console.h"
#include "daemon/vm_lifecycle.h"
#include "daemon/vm_manager.h"

namespace corral::daemon {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto k_poll = std::chrono::milliseconds(200);
/// How long a throwaway VM may take to die after a kill before the cleanup gives up (and leaves
/// it to the next cleanup).
constexpr auto k_kill_wait = std::chrono::seconds(30);

bool is_throwaway(const std::string& name) {
    return name.starts_with(BackupService::k_boot_check_prefix);
}

/// Reports a stage of the check through the task: `fraction` of the stage maps into [from, to].
class StageProgress final : public TaskProgress {
public:
    StageProgress(TaskProgress& task, double from, double to, std::string stage)
        : m_task(task), m_from(from), m_to(to), m_stage(std::move(stage)) {}
    void report(double fraction, const std::string& message) override {
        m_task.report(m_from + (m_to - m_from) * fraction, fmt::format("{}: {}", m_stage, message));
    }
    bool cancelled() const override { return m_task.cancelled(); }

private:
    TaskProgress& m_task;
    double m_from, m_to;
    std::string m_stage;
};

/// Console output of the throwaway VM, fed by the console's relay thread.
struct Watch {
    explicit Watch(ReadyMarker marker) : marker(std::move(marker)) {}
    std::mutex mutex;
    std::condition_variable changed;
    ReadyMarker marker;
};

}  // namespace

bool BackupService::has_boot_leftovers() {
    std::lock_guard lock(m_boot_mutex);
    if (auto vms = m_inventory.list_vms())
        for (const auto& vm : *vms)
            if (is_throwaway(vm.name) && !m_boot_checks.contains(vm.name))
                return true;
    if (auto pools = m_inventory.list_pools())
        for (const auto& p : *pools)
            if (auto pool = m_storage.pool(p.name))
                if (auto volumes = (*pool)->list_volumes())
                    for (const auto& v : *volumes)
                        if (is_throwaway(v.name))
                            return true;
    return false;
}

Result<std::string> BackupService::remove_boot_leftovers() {
    // A volume or VM belongs to a running check when its name is the check's VM name or starts
    // with it and "-" (its volumes: "<vm>-root").
    auto running = [this](const std::string& name) {
        std::lock_guard lock(m_boot_mutex);
        for (const auto& check : m_boot_checks)
            if (name == check || name.starts_with(check + "-"))
                return true;
        return false;
    };
    size_t vms_removed = 0, volumes_removed = 0;
    std::vector<std::string> problems;
    for (const auto& vm : TRY(m_inventory.list_vms())) {
        if (!is_throwaway(vm.name) || running(vm.name))
            continue;
        if (!is_down(vm.state)) {
            ignore_error(m_vms.act(vm.name, VmAction::Kill, std::chrono::seconds(0)),
                         "a VM that ended meanwhile cannot be killed; the wait below sees it down");
            const auto deadline = Clock::now() + k_kill_wait;
            while (Clock::now() < deadline) {
                auto now = m_inventory.get_vm(vm.name);
                if (!now || is_down(now->state))
                    break;
                std::this_thread::sleep_for(k_poll);
            }
        }
        if (auto removed = m_vms.remove(vm.name, true); removed) {
            ++vms_removed;
            volumes_removed += removed->size();
        } else {
            problems.push_back(fmt::format("VM {}: {}", vm.name, removed.error().message()));
        }
    }
    // Volumes a restore made before corrald was killed, before their VM was defined.
    for (const auto& p : TRY(m_inventory.list_pools())) {
        auto pool = m_storage.pool(p.name);
        if (!pool)
            continue;
        auto volumes = (*pool)->list_volumes();
        if (!volumes)
            continue;
        for (const auto& v : *volumes) {
            if (!is_throwaway(v.name) || running(v.name))
                continue;
            auto users = m_inventory.vms_using_volume(p.name, v.name);
            if (!users || !users->empty())
                continue;
            if (auto gone = (*pool)->delete_volume(v.name); gone)
                ++volumes_removed;
            else
                problems.push_back(fmt::format("volume {}/{}: {}", p.name, v.name, gone.error().message()));
        }
    }
    std::string message =
        fmt::format("removed {} throwaway VM(s) and {} volume(s) of boot checks", vms_removed, volumes_removed);
    if (!problems.empty())
        return fail(fmt::format("{}; could not remove: {}", message, fmt::join(problems, "; ")));
    return message;
}

Result<std::string> BackupService::run_boot_check(const BackupRepoRecord& repo_record, const std::string& id,
                                                  const BootCheckOptions& options, TaskProgress& progress) {
    auto marker = TRY(ReadyMarker::make(options.ready.empty() ? k_default_ready_pattern : options.ready));
    // What an earlier corrald left (it was killed mid-check) goes first: it holds disk space and
    // maybe a QEMU process.
    if (auto left = remove_boot_leftovers(); !left)
        log_warning("boot check of {}: {}", id, left.error().describe());

    std::string name;
    {
        std::lock_guard lock(m_boot_mutex);
        do
            name = k_boot_check_prefix + random_hex(4);
        while (m_boot_checks.contains(name) || m_inventory.get_vm(name));
        m_boot_checks.insert(name);
    }
    // Whatever happens below (a failure, a cancel, an exception), the throwaway VM goes.
    struct Cleanup {
        BackupService& service;
        std::string name;
        TaskProgress& progress;
        ~Cleanup() {
            progress.report(0.95, fmt::format("cleaning up: removing throwaway VM {}", name));
            {
                std::lock_guard lock(service.m_boot_mutex);
                service.m_boot_checks.erase(name);
            }
            // Removes this check's VM and volumes (and any other check's leftovers, which are
            // not running either).
            if (auto removed = service.remove_boot_leftovers(); !removed)
                log_warning("boot check VM {}: {}", name, removed.error().describe());
        }
    } cleanup{*this, name, progress};

    // The verdict goes into the repository's catalogue; a cancel records none.
    auto record = [&](bool passed, double seconds, const std::string& error) -> Result<void> {
        auto repo = TRY(open(repo_record));
        return repo.catalogue().set_boot_verdict(
            id, {.passed = passed, .at = static_cast<int64_t>(std::time(nullptr)), .seconds = seconds, .error = error});
    };
    auto failed = [&](const std::string& reason) -> Result<std::string> {
        if (progress.cancelled())
            return fail(fmt::format("boot check of backup {} cancelled", id), ECANCELED);
        TRY_VOID(record(false, 0, reason));
        return fail(fmt::format("backup {} did not boot: {}", id, reason));
    };

    // Restoring (0 to 0.5).
    progress.report(0, fmt::format("restoring: backup {} as throwaway VM {}", id, name));
    auto plan = plan_restore(repo_record, id, name);
    if (!plan)
        return failed(fmt::format("it cannot be restored: {}", plan.error().message()));
    plan->throwaway = true;
    StageProgress restoring(progress, 0, 0.5, "restoring");
    if (auto restored = run_restore(repo_record, *plan, restoring); !restored)
        return failed(fmt::format("it cannot be restored: {}", restored.error().message()));
    if (progress.cancelled())
        return failed("cancelled");

    // Booting: the console is watched from before the start, so no line is missed.
    auto console = TRY(m_vms.console(name));
    auto watch = std::make_shared<Watch>(std::move(marker));
    std::string scrollback;
    const uint64_t reader = console->subscribe(
        [watch](std::string_view output) {
            std::lock_guard lock(watch->mutex);
            if (!watch->marker.ready() && watch->marker.feed(output))
                watch->changed.notify_all();
        },
        scrollback);
    struct Unsubscribe {
        VmConsole& console;
        uint64_t id;
        ~Unsubscribe() { console.unsubscribe(id); }
    } unsubscribe{*console, reader};
    {
        std::lock_guard lock(watch->mutex);
        watch->marker.feed(scrollback);
    }
    progress.report(0.5, fmt::format("booting: starting throwaway VM {}", name));
    const auto started = Clock::now();
    if (auto start = m_vms.act(name, VmAction::Start, std::chrono::seconds(0)); !start)
        return failed(fmt::format("its VM cannot be started: {}", start.error().message()));

    // Waiting for the ready pattern, the VM's end, the timeout or a cancel.
    const auto deadline = started + options.timeout;
    bool running = false;
    for (;;) {
        std::string last;
        {
            std::unique_lock lock(watch->mutex);
            watch->changed.wait_for(lock, k_poll, [&] { return watch->marker.ready(); });
            if (watch->marker.ready()) {
                const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
                TRY_VOID(record(true, seconds, ""));
                return fmt::format(
                    "backup {} boots: its console showed the ready pattern '{}' {:.1f} s after the "
                    "start (throwaway VM {}, no NICs, removed)",
                    id, watch->marker.pattern(), seconds, name);
            }
            last = watch->marker.last_lines();
        }
        const auto quote = last.empty() ? std::string("the console printed nothing")
                                        : fmt::format("the console's last lines: {}", last);
        if (progress.cancelled())
            return failed("cancelled");
        auto vm = m_inventory.get_vm(name);
        if (!vm)
            return failed(fmt::format("its VM went away: {}", vm.error().message()));
        if (vm->state == to_string(VmState::Running) && !running) {
            running = true;
            progress.report(0.6, fmt::format("waiting: for '{}' on the console (at most {} s)", watch->marker.pattern(),
                                             options.timeout.count()));
        }
        if (is_down(vm->state))
            return failed(fmt::format("the VM is {} ({}) without the ready pattern '{}'; {}", vm->state,
                                      vm->state_reason.empty() ? "no reason recorded" : vm->state_reason,
                                      watch->marker.pattern(), quote));
        if (Clock::now() >= deadline)
            return failed(fmt::format("no ready pattern '{}' on the console within {} s; {}", watch->marker.pattern(),
                                      options.timeout.count(), quote));
    }
}

}  // namespace corral::daemon
