// VmManager's lifecycle on a fake engine (tests/unit/daemon/fake_engine.h): starts, stops, kills,
// crashes, restart policies and adoption by a restarted corrald. Everything else is real: the
// SQLite inventory, the storage pool (the VM's root disk is a linked clone), the task manager and
// the exit watcher's thread. End-to-end tests (tests/e2e/daemon_vm.sh) run the real engines.
#include "daemon/vm_manager.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/private_file.h"
#include "daemon/inventory/sqlite_inventory.h"
#include "fake_engine.h"

namespace corral::daemon {
namespace {

using namespace std::chrono_literals;
using testing::FakeEngine;
using testing::FakeHost;
using testing::GuestShutdown;

/// How long a test waits for something that happens on another thread (a task, the exit
/// watcher) before it gives up: a bound on a hang, not a measurement.
constexpr auto k_patience = 20s;

class VmManagerTest : public ::testing::Test {
protected:
    void SetUp() override {
        char pattern[] = "/tmp/corral-vm-manager-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        m_dir = pattern;
        auto opened = inventory::SqliteInventory::open((m_dir / "corral.db").string());
        ASSERT_TRUE(opened) << opened.error().describe();
        m_inventory = std::move(*opened);
        m_storage = std::make_unique<StorageService>(*m_inventory, m_dir);
        ASSERT_TRUE(m_storage->ensure_default_pool());
        auto pool = m_storage->pool(StorageService::k_default_pool);
        ASSERT_TRUE(pool);
        ASSERT_TRUE((*pool)->create_volume("base", 1 << 20, storage::ImageFormat::Raw));
        std::ofstream(m_dir / "vmlinuz") << "not a kernel: the fake engine never boots it";
        inventory::ImageRecord image;
        image.name = "img";
        image.pool = StorageService::k_default_pool;
        image.kernel = (m_dir / "vmlinuz").string();
        image.root_volume = "base";
        image.cmdline = "console=ttyS0";
        ASSERT_TRUE(m_inventory->create_image(image));
        m_subscription = m_events.subscribe([this](const nlohmann::json& event) {
            std::lock_guard lock(m_events_mutex);
            m_seen.push_back(event);
        });
        start_corrald();
    }

    void TearDown() override {
        stop_corrald();
        m_events.unsubscribe(m_subscription);
        m_storage.reset();
        m_inventory.reset();
        std::filesystem::remove_all(m_dir);
    }

    /// A VmManager with the fake engine as "emulated", supervising (adopting what runs).
    void start_corrald() {
        m_tasks = std::make_unique<TaskManager>(*m_inventory, m_events);
        VmManager::Engines engines;
        engines["emulated"] = std::make_unique<FakeEngine>(m_host, "emulated");
        m_vms = std::make_unique<VmManager>(*m_inventory, *m_storage, *m_tasks, m_events, std::move(engines),
                                            "emulated", m_dir / "run");
        auto supervising = m_vms->start_supervising();
        ASSERT_TRUE(supervising) << supervising.error().describe();
    }
    /// As corrald stops: tasks finish, supervision ends, VMs keep running.
    void stop_corrald() {
        m_tasks.reset();
        m_vms.reset();
    }

    inventory::VmRecord define(const std::string& name, const std::string& policy = "no") {
        inventory::VmRecord vm;
        vm.name = name;
        vm.image = "img";
        vm.restart_policy = policy;
        auto created = m_vms->create(vm);
        EXPECT_TRUE(created) << created.error().describe();
        return created.value_or(vm);
    }

    /// Runs `action` and waits for its task to end; the task's record.
    inventory::TaskRecord run(const std::string& name, VmAction action, std::chrono::seconds timeout = 30s) {
        auto task = m_vms->act(name, action, timeout);
        EXPECT_TRUE(task) << to_string(action) << ": " << task.error().describe();
        if (!task) return {};
        return finished(task->id);
    }
    inventory::TaskRecord finished(const std::string& id) {
        auto deadline = std::chrono::steady_clock::now() + k_patience;
        while (std::chrono::steady_clock::now() < deadline) {
            auto task = m_tasks->get(id, 1s);
            EXPECT_TRUE(task);
            if (task && task->status != inventory::k_task_running && task->status != inventory::k_task_queued)
                return *task;
        }
        ADD_FAILURE() << "task " << id << " did not end";
        return {};
    }

    inventory::VmRecord vm(const std::string& name) {
        auto record = m_inventory->get_vm(name);
        EXPECT_TRUE(record) << record.error().describe();
        return record.value_or(inventory::VmRecord{});
    }
    /// Waits until `name` is in `state` (the exit watcher and restarts run on other threads).
    /// With `launches`, also until the engine launched it that often; with `reason`, until the
    /// state has that reason.
    bool wait_state(const std::string& name, const std::string& state, size_t launches = 0,
                    const std::string& reason = {}) {
        auto deadline = std::chrono::steady_clock::now() + k_patience;
        while (std::chrono::steady_clock::now() < deadline) {
            auto record = vm(name);
            if (record.state == state && m_host->launch_count(name) >= launches &&
                (reason.empty() || record.state_reason == reason))
                return true;
            std::this_thread::sleep_for(5ms);
        }
        ADD_FAILURE() << name << " is " << vm(name).state << " (" << vm(name).state_reason << "), not " << state;
        return false;
    }
    /// Waits for `count` events of `kind` (published after the state they follow).
    std::vector<nlohmann::json> wait_events(const std::string& kind, size_t count) {
        auto deadline = std::chrono::steady_clock::now() + k_patience;
        while (std::chrono::steady_clock::now() < deadline && events(kind).size() < count)
            std::this_thread::sleep_for(5ms);
        return events(kind);
    }
    /// The events of `kind` seen so far.
    std::vector<nlohmann::json> events(const std::string& kind) {
        std::lock_guard lock(m_events_mutex);
        std::vector<nlohmann::json> found;
        for (const auto& event : m_seen)
            if (event.value("kind", "") == kind) found.push_back(event);
        return found;
    }

    std::filesystem::path m_dir;
    std::unique_ptr<inventory::SqliteInventory> m_inventory;
    EventBus m_events;
    uint64_t m_subscription = 0;
    std::mutex m_events_mutex;
    std::vector<nlohmann::json> m_seen;
    std::unique_ptr<StorageService> m_storage;
    std::shared_ptr<FakeHost> m_host = std::make_shared<FakeHost>();
    std::unique_ptr<TaskManager> m_tasks;
    std::unique_ptr<VmManager> m_vms;
};

TEST_F(VmManagerTest, StartLaunchesTheVmOnItsEngineWithItsImageAndRootClone) {
    define("web");
    auto task = run("web", VmAction::Start);
    EXPECT_EQ(task.status, inventory::k_task_succeeded) << task.error;
    EXPECT_EQ(task.message, fmt::format("web is running (pid {})", ::getpid()));
    auto record = vm("web");
    EXPECT_EQ(record.state, "running");
    EXPECT_EQ(record.state_reason, "started on the emulated engine");
    EXPECT_EQ(record.pid, ::getpid());
    auto process = m_host->latest("web");
    ASSERT_TRUE(process);
    const auto& spec = process->spec();
    EXPECT_EQ(spec.kernel, m_dir / "vmlinuz");
    EXPECT_EQ(spec.cmdline, "console=ttyS0");
    EXPECT_EQ(spec.run_dir, m_dir / "run" / "web");
    ASSERT_EQ(spec.disks.size(), 1u);
    EXPECT_EQ(spec.disks[0].format, "qcow2");  // a linked clone of the image's root volume
    EXPECT_EQ(spec.disks[0].serial, "web-root");
}

TEST_F(VmManagerTest, StartWhileRunningIsRefusedNamingTheState) {
    define("web");
    run("web", VmAction::Start);
    auto again = m_vms->act("web", VmAction::Start, 30s);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().errno_value(), EBUSY);
    EXPECT_EQ(again.error().message(), "web is running; start needs stopped, crashed or failed");
    EXPECT_EQ(m_host->launch_count("web"), 1u);
}

TEST_F(VmManagerTest, ActionsNeedTheirStates) {
    define("web");
    auto refused = [&](VmAction action) {
        auto task = m_vms->act("web", action, 30s);
        EXPECT_FALSE(task) << to_string(action) << " was accepted";
        return task ? std::string() : task.error().message();
    };
    EXPECT_EQ(refused(VmAction::Stop), "web is stopped; stop needs running or paused");
    EXPECT_EQ(refused(VmAction::Kill), "web is stopped; kill needs running or paused");
    EXPECT_EQ(refused(VmAction::Pause), "web is stopped; pause needs running");
    EXPECT_EQ(refused(VmAction::Reboot), "web is stopped; reboot needs running");
    EXPECT_EQ(refused(VmAction::Resume), "web is stopped; resume needs paused");
    run("web", VmAction::Start);
    EXPECT_EQ(refused(VmAction::Resume), "web is running; resume needs paused");
    auto missing = m_vms->act("nosuch", VmAction::Start, 30s);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().errno_value(), ENOENT);
}

TEST_F(VmManagerTest, EveryStartDrawsAGenerationIdThatTheRecordKeeps) {
    define("web");
    EXPECT_EQ(vm("web").generation_id, "");  // never started
    run("web", VmAction::Start);
    const std::string first = vm("web").generation_id;
    EXPECT_TRUE(is_guid(first)) << first;
    EXPECT_EQ(m_host->latest("web")->spec().generation_id, first);  // what the guest is given
    run("web", VmAction::Kill);
    ASSERT_TRUE(wait_state("web", "stopped"));
    EXPECT_EQ(vm("web").generation_id, first);  // kept while down
    run("web", VmAction::Start);
    EXPECT_NE(vm("web").generation_id, first);
    EXPECT_EQ(m_host->latest("web")->spec().generation_id, vm("web").generation_id);
}

TEST_F(VmManagerTest, StopAsksTheGuestAndRecordsAStopNotACrash) {
    define("web", "always");
    run("web", VmAction::Start);
    auto task = run("web", VmAction::Stop);
    EXPECT_EQ(task.status, inventory::k_task_succeeded) << task.error;
    EXPECT_EQ(task.message, "web shut down");
    ASSERT_TRUE(wait_state("web", "stopped"));
    EXPECT_EQ(vm("web").state_reason, "stopped on request");
    EXPECT_EQ(vm("web").pid, 0);
    // A requested stop is not restarted, even with the policy "always".
    EXPECT_EQ(m_host->launch_count("web"), 1u);
    EXPECT_TRUE(events("vm.crashed").empty());
}

TEST_F(VmManagerTest, StopWhileAStopIsInFlightAnswersWithThatTaskAndKillsAfterTheTimeout) {
    define("web");
    run("web", VmAction::Start);
    m_host->latest("web")->set_shutdown_behaviour(GuestShutdown::Ignores);
    auto first = m_vms->act("web", VmAction::Stop, 1s);
    ASSERT_TRUE(first) << first.error().describe();
    auto second = m_vms->act("web", VmAction::Stop, 1s);
    ASSERT_TRUE(second) << second.error().describe();
    EXPECT_EQ(second->id, first->id);
    auto task = finished(first->id);
    EXPECT_EQ(task.status, inventory::k_task_succeeded) << task.error;
    EXPECT_EQ(task.message, "web killed after the timeout");
    ASSERT_TRUE(wait_state("web", "stopped"));
    EXPECT_EQ(vm("web").state_reason, "killed: the guest did not shut down within 1 s");
    // Once it is stopped, another stop is refused: there is nothing to stop.
    auto late = m_vms->act("web", VmAction::Stop, 1s);
    ASSERT_FALSE(late);
    EXPECT_EQ(late.error().errno_value(), EBUSY);
}

TEST_F(VmManagerTest, KillEndsASlowStop) {
    define("web");
    run("web", VmAction::Start);
    m_host->latest("web")->set_shutdown_behaviour(GuestShutdown::Ignores);
    auto stop = m_vms->act("web", VmAction::Stop, 600s);
    ASSERT_TRUE(stop);
    ASSERT_TRUE(wait_state("web", "stopping"));
    auto kill = run("web", VmAction::Kill);
    EXPECT_EQ(kill.status, inventory::k_task_succeeded) << kill.error;
    EXPECT_EQ(kill.message, "web killed");
    EXPECT_EQ(finished(stop->id).status, inventory::k_task_succeeded);
    ASSERT_TRUE(wait_state("web", "stopped"));
    EXPECT_EQ(vm("web").state_reason, "killed on request");
}

TEST_F(VmManagerTest, ACrashIsRecordedWithTheEnginesReasonAndAnEvent) {
    define("web");
    run("web", VmAction::Start);
    m_host->latest("web")->end(-1, SIGSEGV);
    ASSERT_TRUE(wait_state("web", "crashed"));
    EXPECT_EQ(vm("web").state_reason, "killed by signal 11 (SIGSEGV)");
    EXPECT_EQ(vm("web").pid, 0);
    auto crashed = wait_events("vm.crashed", 1);
    ASSERT_EQ(crashed.size(), 1u);
    EXPECT_EQ(crashed[0]["target"], "web");
    EXPECT_EQ(crashed[0]["reason"], "killed by signal 11 (SIGSEGV)");
    // The console's last lines go with it; here corrald's own note of the start.
    EXPECT_NE(crashed[0]["last_console"].get<std::string>().find("web started on the emulated engine"),
              std::string::npos);
    EXPECT_EQ(m_host->launch_count("web"), 1u);  // restart policy "no"
}

TEST_F(VmManagerTest, AGuestPowerOffIsAStopNotACrashAndOnFailureDoesNotRestartIt) {
    define("web", "on-failure");
    run("web", VmAction::Start);
    m_host->latest("web")->end(0);
    ASSERT_TRUE(wait_state("web", "stopped"));
    EXPECT_EQ(vm("web").state_reason, "guest powered off (guest powered off)");
    EXPECT_TRUE(events("vm.crashed").empty());
    EXPECT_EQ(m_host->launch_count("web"), 1u);
}

TEST_F(VmManagerTest, OnFailureRestartsACrashedVm) {
    define("web", "on-failure");
    run("web", VmAction::Start);
    m_host->latest("web")->end(3);
    ASSERT_TRUE(wait_state("web", "running", 2));
    EXPECT_EQ(events("vm.crashed").size(), 1u);
    EXPECT_FALSE(m_host->latest("web")->ended());
}

TEST_F(VmManagerTest, AlwaysRestartsAfterAPowerOffToo) {
    define("web", "always");
    run("web", VmAction::Start);
    m_host->latest("web")->end(0);
    ASSERT_TRUE(wait_state("web", "running", 2));
}

TEST_F(VmManagerTest, RestartsGiveUpAfterTheBudget) {
    define("web", "always");
    run("web", VmAction::Start);
    for (int restarts = 0; restarts < RestartBudget::k_limit; ++restarts) {
        m_host->latest("web")->end(1);
        ASSERT_TRUE(wait_state("web", "running", restarts + 2));
    }
    m_host->latest("web")->end(1);
    // It is crashed twice: first as the crash, then with the reason that it gives up.
    ASSERT_TRUE(wait_state("web", "crashed", 0, "exited with code 1; restarted 5 times in 5 minutes, giving up"));
    EXPECT_EQ(m_host->launch_count("web"), 6u);
    // A start by hand still works, and a VM deleted and defined again gets a full budget.
    EXPECT_EQ(run("web", VmAction::Start).status, inventory::k_task_succeeded);
}

TEST_F(VmManagerTest, PauseResumeAndStopOfAPausedVm) {
    define("web");
    run("web", VmAction::Start);
    EXPECT_EQ(run("web", VmAction::Pause).message, "web paused");
    EXPECT_EQ(vm("web").state, "paused");
    EXPECT_EQ(m_host->latest("web")->run_state(), engine::RunState::Paused);
    auto again = m_vms->act("web", VmAction::Pause, 30s);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().message(), "web is paused; pause needs running");
    EXPECT_EQ(run("web", VmAction::Resume).message, "web resumed");
    EXPECT_EQ(vm("web").state, "running");
    run("web", VmAction::Pause);
    // A paused guest cannot hear the shutdown request: stop resumes it first.
    EXPECT_EQ(run("web", VmAction::Stop).message, "web shut down");
    ASSERT_TRUE(wait_state("web", "stopped"));
}

TEST_F(VmManagerTest, RebootAsksTheGuestAndStartsTheVmAgainOnceItShutDown) {
    define("web");
    run("web", VmAction::Start);
    auto first = m_host->latest("web");
    auto task = run("web", VmAction::Reboot, 5s);
    EXPECT_EQ(task.status, inventory::k_task_succeeded) << task.error;
    EXPECT_EQ(task.message, "web rebooted (the guest shut down)");
    // The guest was asked (it powered off), and the same VM runs again in a new process.
    EXPECT_TRUE(first->ended());
    EXPECT_EQ(first->resets(), 0);
    EXPECT_EQ(m_host->launch_count("web"), 2u);
    EXPECT_FALSE(m_host->latest("web")->ended());
    EXPECT_EQ(m_host->latest("web")->spec().disks.size(), first->spec().disks.size());
    EXPECT_EQ(vm("web").state, "running");
    EXPECT_EQ(vm("web").state_reason, "rebooted (the guest shut down)");
    EXPECT_EQ(wait_events("vm.rebooted", 1).size(), 1u);
    // It went stopping -> starting -> running, never "stopped" (nothing could take it meanwhile).
    std::vector<std::string> states;
    for (const auto& event : events("vm.state")) states.push_back(event.value("state", ""));
    EXPECT_EQ(std::count(states.begin(), states.end(), "stopped"), 0);
    EXPECT_EQ(std::count(states.begin(), states.end(), "stopping"), 1);
    EXPECT_TRUE(events("vm.crashed").empty());
}

TEST_F(VmManagerTest, RebootResetsAGuestThatDoesNotShutDownInTime) {
    define("web");
    run("web", VmAction::Start);
    m_host->latest("web")->set_shutdown_behaviour(GuestShutdown::Ignores);
    auto task = run("web", VmAction::Reboot, 1s);
    EXPECT_EQ(task.status, inventory::k_task_succeeded) << task.error;
    EXPECT_EQ(task.message, "web reset (the guest did not shut down in 1 s)");
    EXPECT_EQ(m_host->latest("web")->resets(), 1);
    EXPECT_EQ(m_host->launch_count("web"), 1u);  // the same process
    EXPECT_EQ(vm("web").state, "running");
    EXPECT_EQ(vm("web").state_reason, "reset (the guest did not shut down in 1 s)");
    EXPECT_EQ(wait_events("vm.reset", 1).size(), 1u);
    // The reboot is over: the VM's end is its own again (a power off stops it, no restart).
    m_host->latest("web")->end(0);
    ASSERT_TRUE(wait_state("web", "stopped"));
    EXPECT_EQ(m_host->launch_count("web"), 1u);
}

TEST_F(VmManagerTest, ResetResetsAtOnceAndSaysSo) {
    define("web");
    run("web", VmAction::Start);
    EXPECT_EQ(run("web", VmAction::Reset).message, "web reset");
    EXPECT_EQ(m_host->latest("web")->resets(), 1);
    EXPECT_EQ(m_host->launch_count("web"), 1u);
    EXPECT_EQ(vm("web").state, "running");
    EXPECT_EQ(vm("web").state_reason, "reset on request");
    EXPECT_EQ(wait_events("vm.reset", 1).size(), 1u);
}

TEST_F(VmManagerTest, AStopDuringARebootWinsAndTheVmStaysStopped) {
    define("web");
    run("web", VmAction::Start);
    m_host->latest("web")->set_shutdown_behaviour(GuestShutdown::Ignores);
    auto reboot = m_vms->act("web", VmAction::Reboot, 30s);
    ASSERT_TRUE(reboot) << reboot.error().describe();
    EXPECT_EQ(run("web", VmAction::Kill).message, "web killed");
    auto ended = finished(reboot->id);
    EXPECT_EQ(ended.status, inventory::k_task_failed);
    ASSERT_TRUE(wait_state("web", "stopped"));
    EXPECT_EQ(vm("web").state_reason, "killed on request");
    EXPECT_EQ(m_host->launch_count("web"), 1u);
}

TEST_F(VmManagerTest, AnAutomaticRestartCountsAndKeepsTheCrashReason) {
    define("web", "on-failure");
    run("web", VmAction::Start);
    auto first = vm("web");
    EXPECT_EQ(first.restarts, 0);
    EXPECT_EQ(first.last_crash, "");
    EXPECT_FALSE(first.started_at.empty());
    m_host->latest("web")->end(-1, SIGKILL);
    ASSERT_TRUE(wait_state("web", "running", 2));
    auto after = vm("web");
    EXPECT_EQ(after.restarts, 1);
    EXPECT_EQ(after.last_crash, "killed by signal 9 (SIGKILL)");
    EXPECT_FALSE(after.started_at.empty());
    // A stop clears the process's start; a start by hand counts the restarts from 0 again, and
    // the last crash stays known.
    run("web", VmAction::Stop);
    ASSERT_TRUE(wait_state("web", "stopped"));
    EXPECT_EQ(vm("web").started_at, "");
    run("web", VmAction::Start);
    EXPECT_EQ(vm("web").restarts, 0);
    EXPECT_EQ(vm("web").last_crash, "killed by signal 9 (SIGKILL)");
}

TEST_F(VmManagerTest, ALaunchFailureMarksTheVmFailedAndItCanStartAgain) {
    define("web");
    m_host->fail_next_launch(Error("the emulator is missing", ENOENT));
    auto task = run("web", VmAction::Start);
    EXPECT_EQ(task.status, inventory::k_task_failed);
    EXPECT_EQ(task.error, "the emulator is missing");
    EXPECT_EQ(vm("web").state, "failed");
    EXPECT_EQ(vm("web").state_reason, "the emulator is missing");
    EXPECT_EQ(run("web", VmAction::Start).status, inventory::k_task_succeeded);
    EXPECT_EQ(vm("web").state, "running");
}

TEST_F(VmManagerTest, AnUnavailableEngineIsRefusedAndTheVmStaysStopped) {
    define("web");
    m_host->set_availability({false, "no /dev/kvm"});
    auto task = m_vms->act("web", VmAction::Start, 30s);
    ASSERT_FALSE(task);
    EXPECT_EQ(task.error().errno_value(), ENODEV);
    EXPECT_EQ(task.error().message(), "engine emulated is not available on this host: no /dev/kvm");
    EXPECT_EQ(vm("web").state, "stopped");
    EXPECT_EQ(m_host->launch_count("web"), 0u);
}

TEST_F(VmManagerTest, TheBalloonTargetIsKeptWhileStoppedAndGoesWithTheMemoryItKeepsBack) {
    define("web");  // 512 MiB
    auto set = m_vms->set_balloon("web", 256);
    ASSERT_TRUE(set) << set.error().describe();
    EXPECT_EQ(set->vm.balloon_target_mib, 256);
    EXPECT_FALSE(set->live);  // stopped: kept for the next start
    EXPECT_EQ(vm("web").balloon_target_mib, 256);
    // All of its memory keeps nothing back: no target.
    ASSERT_TRUE(m_vms->set_balloon("web", 512));
    EXPECT_EQ(vm("web").balloon_target_mib, 0);
    ASSERT_TRUE(m_vms->set_balloon("web", 256));
    auto changed = vm("web");
    changed.memory_mib = 1024;
    ASSERT_TRUE(m_vms->edit(changed));
    EXPECT_EQ(vm("web").balloon_target_mib, 256);  // more memory: the target stays
    changed.memory_mib = 256;
    ASSERT_TRUE(m_vms->edit(changed));
    EXPECT_EQ(vm("web").balloon_target_mib, 0);  // down to the target: it goes
    // A start whose process has no balloon (the fake engine's) runs on with all its memory.
    ASSERT_TRUE(m_vms->set_balloon("web", 128));
    run("web", VmAction::Start);
    EXPECT_EQ(vm("web").state, "running");
    EXPECT_EQ(vm("web").balloon_target_mib, 128);
    auto live = m_vms->set_balloon("web", 64);
    ASSERT_FALSE(live);
    EXPECT_EQ(live.error().errno_value(), EBUSY);  // no balloon in this process: nothing stored
    EXPECT_EQ(vm("web").balloon_target_mib, 128);
}

TEST_F(VmManagerTest, EditAndDeleteNeedAVmWithoutProcess) {
    define("web");
    run("web", VmAction::Start);
    auto changed = vm("web");
    changed.vcpus = 2;
    auto edited = m_vms->edit(changed);
    ASSERT_FALSE(edited);
    EXPECT_EQ(edited.error().message(), "web is running; stop it before changing vcpus (only limits change while it runs)");
    EXPECT_EQ(edited.error().errno_value(), EBUSY);
    auto removed = m_vms->remove("web", true);
    ASSERT_FALSE(removed);
    EXPECT_EQ(removed.error().message(), "web is running; stop it before deleting it");
    run("web", VmAction::Stop);
    ASSERT_TRUE(wait_state("web", "stopped"));
    ASSERT_TRUE(m_vms->edit(changed));
    EXPECT_EQ(vm("web").vcpus, 2);
    auto deleted = m_vms->remove("web", true);
    ASSERT_TRUE(deleted) << deleted.error().describe();
    EXPECT_EQ(*deleted, std::vector<std::string>{"web-root"});
    EXPECT_FALSE(m_inventory->get_vm("web"));
}

TEST_F(VmManagerTest, ARestartedCorraldAdoptsRunningAndPausedVmsAndSupervisesThem) {
    define("web");
    define("db");
    run("web", VmAction::Start);
    run("db", VmAction::Start);
    run("db", VmAction::Pause);
    stop_corrald();
    EXPECT_FALSE(m_host->latest("web")->ended()) << "VMs outlive corrald";
    start_corrald();
    EXPECT_EQ(vm("web").state, "running");
    EXPECT_EQ(vm("web").state_reason, "adopted after corrald restarted");
    EXPECT_EQ(vm("db").state, "paused");
    // The new corrald notices the end of a VM the old one started.
    m_host->latest("web")->end(1);
    ASSERT_TRUE(wait_state("web", "crashed"));
    EXPECT_EQ(run("db", VmAction::Kill).message, "db killed");
}

TEST_F(VmManagerTest, AVmThatEndedWhileCorraldWasDownIsMarkedFromItsExitRecord) {
    define("web");
    define("db");
    run("web", VmAction::Start);
    run("db", VmAction::Start);
    stop_corrald();
    m_host->latest("web")->end(3);
    m_host->latest("db")->end(0);
    start_corrald();
    EXPECT_EQ(vm("web").state, "crashed");
    EXPECT_EQ(vm("web").state_reason, "ended while corrald was not running (exited with code 3)");
    EXPECT_EQ(vm("db").state, "stopped");
    EXPECT_EQ(run("web", VmAction::Start).status, inventory::k_task_succeeded);
}

TEST_F(VmManagerTest, MetricsOfARunningVmAndOfAStoppedOne) {
    inventory::VmRecord record;
    record.name = "web";
    record.image = "img";
    record.nics.push_back({"", "lo", "", "", "", {}});  // an existing device as the NIC's tap: its counters are real
    ASSERT_TRUE(m_vms->create(record));
    auto stopped = m_vms->metrics("web");
    ASSERT_TRUE(stopped);
    EXPECT_EQ(stopped->memory_bytes, 0u);
    EXPECT_TRUE(stopped->nics.empty());
    run("web", VmAction::Start);
    auto running = m_vms->metrics("web");
    ASSERT_TRUE(running) << running.error().describe();
    EXPECT_GT(running->memory_bytes, 0u);  // this test process stands in for the VM process
    ASSERT_EQ(running->disks.size(), 1u);
    EXPECT_EQ(running->disks[0].device, "disk0");
    EXPECT_EQ(running->disks[0].read_bytes, 4096u);
    ASSERT_EQ(running->nics.size(), 1u);
    EXPECT_EQ(running->nics[0].tap, "lo");
    EXPECT_FALSE(m_vms->metrics("nosuch"));
}

TEST_F(VmManagerTest, ADiskSnapshotOfAStoppedVmIsAnInternalQcow2SnapshotAndRevertsTheDisk) {
    define("web1");
    auto taken = m_vms->snapshot("web1", "s1", "first");
    ASSERT_TRUE(taken) << taken.error().describe();
    EXPECT_EQ(taken->second.status, inventory::k_snapshot_creating);
    auto task = finished(taken->first.id);
    EXPECT_EQ(task.status, inventory::k_task_succeeded) << task.error;
    auto stored = m_inventory->get_snapshot("web1", "s1");
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->status, inventory::k_snapshot_ready);
    EXPECT_EQ(stored->kind, "disk");
    EXPECT_EQ(stored->dir, "");

    auto again = m_vms->snapshot("web1", "s1", "");
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().errno_value(), EEXIST);

    auto restore = m_vms->restore_snapshot("web1", "s1");
    ASSERT_TRUE(restore) << restore.error().describe();
    EXPECT_EQ(finished(restore->id).status, inventory::k_task_succeeded);
    EXPECT_EQ(vm("web1").state, "stopped");  // a disk snapshot has no memory to run from

    ASSERT_TRUE(m_vms->delete_snapshot("web1", "s1"));
    EXPECT_FALSE(m_inventory->get_snapshot("web1", "s1"));
}

TEST_F(VmManagerTest, SnapshotsHangFromTheCurrentOneWhichARevertMoves) {
    define("web1");
    auto take = [&](const std::string& name) {
        auto taken = m_vms->snapshot("web1", name, "");
        EXPECT_TRUE(taken) << taken.error().describe();
        EXPECT_EQ(finished(taken->first.id).status, inventory::k_task_succeeded);
        return m_inventory->get_snapshot("web1", name).value();
    };
    auto s1 = take("s1");
    EXPECT_EQ(s1.parent, "");
    EXPECT_TRUE(s1.current);
    auto s2 = take("s2");
    EXPECT_EQ(s2.parent, "s1");
    EXPECT_TRUE(s2.current);
    EXPECT_FALSE(m_inventory->get_snapshot("web1", "s1")->current);
    // Back to s1: what is taken next branches from there.
    auto restore = m_vms->restore_snapshot("web1", "s1");
    ASSERT_TRUE(restore) << restore.error().describe();
    EXPECT_EQ(finished(restore->id).status, inventory::k_task_succeeded);
    EXPECT_TRUE(m_inventory->get_snapshot("web1", "s1")->current);
    auto s3 = take("s3");
    EXPECT_EQ(s3.parent, "s1");
    // s1 goes: its children become roots, and s3 stays current.
    ASSERT_TRUE(m_vms->delete_snapshot("web1", "s1"));
    EXPECT_EQ(m_inventory->get_snapshot("web1", "s2")->parent, "");
    EXPECT_EQ(m_inventory->get_snapshot("web1", "s3")->parent, "");
    EXPECT_TRUE(m_inventory->get_snapshot("web1", "s3")->current);
}

TEST_F(VmManagerTest, ADiskOnlySnapshotOfARunningVmNeedsAnEngineThatCanTakeIt) {
    define("web1");
    ASSERT_EQ(run("web1", VmAction::Start).status, inventory::k_task_succeeded);
    auto taken = m_vms->snapshot("web1", "s1", "", /*disk_only=*/true);
    ASSERT_TRUE(taken) << taken.error().describe();
    EXPECT_EQ(taken->second.kind, "disk");
    auto task = finished(taken->first.id);
    // The fake engine has neither save_disk_snapshot nor save_snapshot: nothing is listed.
    EXPECT_EQ(task.status, inventory::k_task_failed);
    EXPECT_NE(task.error.find("cannot snapshot the disks of a running VM"), std::string::npos) << task.error;
    EXPECT_TRUE(m_inventory->list_snapshots("web1")->empty());
    EXPECT_EQ(vm("web1").state, "running");
}

TEST_F(VmManagerTest, AFailedSnapshotLeavesNothingListedAndTheVmRunning) {
    define("web1");
    ASSERT_EQ(run("web1", VmAction::Start).status, inventory::k_task_succeeded);
    // The fake engine cannot save memory (Instance::save_snapshot's default: ENOTSUP).
    auto taken = m_vms->snapshot("web1", "s1", "");
    ASSERT_TRUE(taken) << taken.error().describe();
    auto task = finished(taken->first.id);
    EXPECT_EQ(task.status, inventory::k_task_failed);
    EXPECT_NE(task.error.find("cannot take snapshots"), std::string::npos) << task.error;
    EXPECT_TRUE(m_inventory->list_snapshots("web1")->empty());
    EXPECT_EQ(vm("web1").state, "running");
    auto restore_running = m_vms->restore_snapshot("web1", "nope");
    ASSERT_FALSE(restore_running);
    EXPECT_EQ(restore_running.error().errno_value(), ENOENT);
}

TEST_F(VmManagerTest, ASnapshotInterruptedByARestartIsIncompleteAndNeverRestored) {
    define("web1");
    inventory::SnapshotRecord snapshot;
    snapshot.vm = "web1";
    snapshot.name = "half";
    snapshot.kind = "disk";
    snapshot.engine = "emulated";
    ASSERT_TRUE(m_inventory->create_snapshot(snapshot));  // status "creating", as a dying corrald left it
    stop_corrald();
    start_corrald();
    EXPECT_EQ(m_inventory->get_snapshot("web1", "half")->status, inventory::k_snapshot_incomplete);
    auto restore = m_vms->restore_snapshot("web1", "half");
    ASSERT_FALSE(restore);
    EXPECT_EQ(restore.error().errno_value(), EBUSY);
    EXPECT_NE(restore.error().message().find("is incomplete"), std::string::npos) << restore.error().message();
    ASSERT_TRUE(m_vms->delete_snapshot("web1", "half"));  // deleting frees what there is
    EXPECT_TRUE(m_inventory->list_snapshots("web1")->empty());
}

TEST_F(VmManagerTest, AMemorySnapshotRestoresOnlyIntoTheShapeItWasTakenWith) {
    define("web1");
    inventory::SnapshotRecord snapshot;
    snapshot.vm = "web1";
    snapshot.name = "big";
    snapshot.kind = "memory";
    snapshot.engine = "emulated";
    snapshot.status = inventory::k_snapshot_ready;
    snapshot.vcpus = 2;
    snapshot.memory_mib = 1024;
    ASSERT_TRUE(m_inventory->create_snapshot(snapshot));
    auto restore = m_vms->restore_snapshot("web1", "big");  // web1 has 1 vCPU and 512 MiB
    ASSERT_FALSE(restore);
    EXPECT_EQ(restore.error().errno_value(), EBUSY);
    EXPECT_EQ(restore.error().message(),
              "snapshot big holds a VM with 2 vCPU(s) and 1024 MiB; web1 now has 1 and 512 MiB (edit it back to "
              "restore it)");
    EXPECT_EQ(vm("web1").state, "stopped");
}

TEST_F(VmManagerTest, DeletingAVmDeletesItsSnapshots) {
    define("web1");
    auto taken = m_vms->snapshot("web1", "s1", "");
    ASSERT_TRUE(taken);
    EXPECT_EQ(finished(taken->first.id).status, inventory::k_task_succeeded);
    ASSERT_TRUE(m_vms->remove("web1", false));
    EXPECT_TRUE(m_inventory->list_snapshots("")->empty());
}

}  // namespace
}  // namespace corral::daemon
