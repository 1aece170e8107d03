// BackupService on a real inventory (SQLite) and real repositories in a temporary folder.
#include "daemon/backup_service.h"

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "daemon/event_bus.h"
#include "daemon/inventory/sqlite_inventory.h"
#include "daemon/storage_service.h"
#include "daemon/task_manager.h"
#include "daemon/vm_manager.h"

namespace corral::daemon {
namespace {

class BackupServiceTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = std::filesystem::temp_directory_path() / ("backup-service-test-" + std::to_string(::getpid()));
        std::filesystem::remove_all(m_dir);
        std::filesystem::create_directories(m_dir);
        auto opened = inventory::SqliteInventory::open((m_dir / "inventory.db").string());
        ASSERT_TRUE(opened);
        m_inventory = std::move(*opened);
        m_tasks = std::make_unique<TaskManager>(*m_inventory, m_events);
        m_storage = std::make_unique<StorageService>(*m_inventory, m_dir);
        m_vms = std::make_unique<VmManager>(*m_inventory, *m_storage, *m_tasks, m_events, VmManager::Engines{},
                                            "emulated", m_dir / "run");
        m_service = std::make_unique<BackupService>(m_dir, *m_inventory, *m_storage, *m_vms);
    }
    void TearDown() override {
        m_service.reset();
        m_vms.reset();
        m_storage.reset();
        m_tasks.reset();
        m_inventory.reset();
        std::filesystem::remove_all(m_dir);
    }

    std::filesystem::path m_dir;
    EventBus m_events;
    std::unique_ptr<inventory::SqliteInventory> m_inventory;
    std::unique_ptr<TaskManager> m_tasks;
    std::unique_ptr<StorageService> m_storage;
    std::unique_ptr<VmManager> m_vms;
    std::unique_ptr<BackupService> m_service;
};

TEST_F(BackupServiceTest, ABackupOfAVmOnItsWayUpOrDownOrOfARunningNativeVmIsRefusedSayingWhatToDo) {
    inventory::VmRecord vm;
    vm.name = "web";
    vm.engine = "emulated";
    vm.state = "starting";
    ASSERT_TRUE(m_inventory->create_vm(vm));
    auto refused = m_service->check_backup("web");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().errno_value(), EBUSY);
    EXPECT_EQ(refused.error().message(),
              "VM web is starting: a backup needs it running, paused or stopped; try again when it is");
    // Running or paused on the emulated engine: backed up while it runs (its disks are checked;
    // this one has none). Stopped: as it is.
    for (const char* state : {"running", "paused", "stopped"}) {
        vm.state = state;
        ASSERT_TRUE(m_inventory->update_vm(vm));
        auto checked = m_service->check_backup("web");
        EXPECT_TRUE(checked) << state << ": " << checked.error().describe();
    }
    // The native engine too: corral-vmm snapshots its open disks (its disk_snapshot action).
    vm.engine = "native";
    vm.state = "running";
    ASSERT_TRUE(m_inventory->update_vm(vm));
    auto native = m_service->check_backup("web");
    EXPECT_TRUE(native) << native.error().describe();
    EXPECT_EQ(m_service->check_backup("ghost").error().errno_value(), ENOENT);
}

TEST_F(BackupServiceTest, AVmWhoseDisksAreHeldForABackupCannotBeStartedOrSnapshotted) {
    inventory::VmRecord vm;
    vm.name = "web";
    vm.engine = "emulated";
    ASSERT_TRUE(m_inventory->create_vm(vm));
    ASSERT_TRUE(m_vms->hold_disks("web"));
    auto start = m_vms->act("web", VmAction::Start, std::chrono::seconds(1));
    ASSERT_FALSE(start);
    EXPECT_EQ(start.error().errno_value(), EBUSY);
    EXPECT_EQ(start.error().message(), "web is stopped; start needs no snapshot operation or backup in progress");
    EXPECT_EQ(m_vms->hold_disks("web").error().errno_value(), EBUSY);  // one backup or snapshot at a time
    auto removed = m_vms->remove("web", true);
    ASSERT_FALSE(removed);
    EXPECT_EQ(removed.error().message(), "web has a snapshot operation or backup in progress; delete it when that ended");
    m_vms->release_disks("web");
    // Released: the start is refused for what this test lacks (an engine), no longer for the backup.
    auto again = m_vms->act("web", VmAction::Start, std::chrono::seconds(1));
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().message().find("backup in progress"), std::string::npos) << again.error().message();
}

TEST_F(BackupServiceTest, RepositoriesAreKeptByNameAndForgettingOneLeavesItsFolder) {
    const auto repo = (m_dir / "repo").string();
    ASSERT_TRUE(m_service->add_repo({.name = "main", .path = repo, .key_file = {}, .created_at = {}}, RepoAdd::Create));
    EXPECT_TRUE(std::filesystem::exists(repo + "/config.json"));
    // A second service on the same state folder (corrald restarted) knows it.
    BackupService again(m_dir, *m_inventory, *m_storage, *m_vms);
    auto listed = again.list_repos();
    ASSERT_TRUE(listed);
    ASSERT_EQ(listed->size(), 1u);
    EXPECT_EQ(listed->front().path, repo);
    EXPECT_EQ(again.add_repo({.name = "main", .path = repo, .key_file = {}, .created_at = {}}, RepoAdd::Existing)
                  .error()
                  .errno_value(),
              EEXIST);
    // Not a repository: refused, and nothing registered.
    std::filesystem::create_directories(m_dir / "empty");
    EXPECT_FALSE(again.add_repo({.name = "other", .path = (m_dir / "empty").string(), .key_file = {}, .created_at = {}},
                                RepoAdd::Existing));
    EXPECT_FALSE(again.get_repo("other"));
    // With one repository it is the default; with none, the message says how to make one.
    EXPECT_EQ(again.choose(std::nullopt, "repository")->name, "main");
    ASSERT_TRUE(again.forget_repo("main"));
    EXPECT_TRUE(std::filesystem::exists(repo + "/config.json"));
    auto none = again.choose(std::nullopt, "repository");
    ASSERT_FALSE(none);
    EXPECT_NE(none.error().message().find("there is no backup repository yet"), std::string::npos);
}

}  // namespace
}  // namespace corral::daemon
