#include "daemon/inventory/sqlite_inventory.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <thread>

#include "daemon/inventory/sqlite_connection.h"
#include "test_dir.h"

namespace corral::inventory {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

/// A clock that ticks one second per call, so every timestamp differs.
struct TickingClock {
    std::shared_ptr<std::atomic<int>> ticks = std::make_shared<std::atomic<int>>(0);
    std::string operator()() const {
        const int t = (*ticks)++;
        return fmt::format("2026-11-26T23:{:02}:{:02}Z", t / 60 % 60, t % 60);
    }
};

VmRecord make_vm(const std::string& name) {
    VmRecord vm;
    vm.name = name;
    vm.engine = "emulated";
    vm.vcpus = 2;
    vm.memory_mib = 768;
    vm.image = "default";
    vm.disks = {{"default", name + "-root", false}, {"data", "shared", true}};
    vm.nics = {{"br0", "", "52:54:00:12:34:56", "", "", {}}, {"", "tap7", "", "", "", {}}};
    vm.restart_policy = "on-failure";
    vm.cmdline = "quiet loglevel=3";
    vm.state = "stopped";
    vm.run_dir = "/run/corral/vms/" + name;
    return vm;
}

class SqliteInventoryTest : public ::testing::Test {
protected:
    void SetUp() override {
        SqliteInventoryOptions options;
        options.clock = TickingClock{};
        auto opened = SqliteInventory::open(m_dir.path("state/inventory.db"), options);
        ASSERT_TRUE(opened) << opened.error().message();
        m_inventory = std::move(*opened);
    }
    SqliteInventory& inventory() { return *m_inventory; }
    std::string path() const { return m_dir.path("state/inventory.db"); }

    testing::TestDir m_dir;
    std::unique_ptr<SqliteInventory> m_inventory;
};

void expect_error(const Error& error, int errno_value, const std::string& message) {
    EXPECT_EQ(error.errno_value(), errno_value) << error.message();
    EXPECT_EQ(error.message(), message);
}

template <typename T>
void expect_error(const Result<T>& result, int errno_value, const std::string& message) {
    ASSERT_FALSE(result) << "expected: " << message;
    expect_error(result.error(), errno_value, message);
}

TEST_F(SqliteInventoryTest, OpenCreatesTheFileAndItsFolderInWalMode) {
    EXPECT_TRUE(std::filesystem::exists(path()));
    auto db = Connection::open(path());
    ASSERT_TRUE(db);
    auto mode = db->prepare("PRAGMA journal_mode");
    ASSERT_TRUE(mode && mode->step().value());
    EXPECT_EQ(mode->column_text(0), "wal");
}

TEST_F(SqliteInventoryTest, VmRoundTrip) {
    auto created = inventory().create_vm(make_vm("web1"));
    ASSERT_TRUE(created) << created.error().message();
    EXPECT_FALSE(created->created_at.empty());
    EXPECT_EQ(created->created_at, created->updated_at);

    VmRecord expected = make_vm("web1");
    expected.created_at = created->created_at;
    expected.updated_at = created->updated_at;
    EXPECT_EQ(*created, expected);
    EXPECT_EQ(inventory().get_vm("web1").value(), expected);

    VmRecord changed = *created;
    changed.state = "crashed";
    changed.state_reason = "killed by signal 9";
    changed.pid = 4242;
    changed.vcpus = 4;
    changed.nics.clear();
    changed.disks.pop_back();
    changed.created_at = "ignored";
    auto updated = inventory().update_vm(changed);
    ASSERT_TRUE(updated) << updated.error().message();
    EXPECT_EQ(updated->created_at, created->created_at);
    EXPECT_GT(updated->updated_at, created->updated_at);
    changed.created_at = created->created_at;
    changed.updated_at = updated->updated_at;
    // A new process: the inventory sets when it started.
    changed.started_at = updated->updated_at;
    EXPECT_EQ(*updated, changed);
    EXPECT_EQ(inventory().get_vm("web1").value(), changed);

    ASSERT_TRUE(inventory().delete_vm("web1"));
    expect_error(inventory().get_vm("web1"), ENOENT, "no VM named web1");
    EXPECT_THAT(inventory().list_vms().value(), IsEmpty());
}

TEST_F(SqliteInventoryTest, StartedAtFollowsTheProcessRestartsAndLastCrashAreStored) {
    std::vector<std::string> times = {"2026-12-06T07:00:00Z", "2026-12-06T07:00:01Z", "2026-12-06T07:00:02Z",
                                      "2026-12-06T07:00:03Z", "2026-12-06T07:00:04Z"};
    size_t tick = 0;
    SqliteInventoryOptions options;
    options.clock = [&] { return times[std::min(tick++, times.size() - 1)]; };
    auto opened = SqliteInventory::open(m_dir.path("clock.db"), options);
    ASSERT_TRUE(opened) << opened.error().describe();
    auto& inv = **opened;
    VmRecord vm = make_vm("web1");
    vm.pid = 0;
    vm = inv.create_vm(vm).value();                 // 07:00:00
    EXPECT_EQ(vm.started_at, "");
    vm.pid = 100;
    vm.started_at = "set by the caller: ignored";
    vm = inv.update_vm(vm).value();                 // 07:00:01: a process
    EXPECT_EQ(vm.started_at, "2026-12-06T07:00:01Z");
    vm.state_reason = "reset on request";
    vm.restarts = 2;
    vm.last_crash = "killed by signal 9 (SIGKILL)";
    vm = inv.update_vm(vm).value();                 // 07:00:02: the same process
    EXPECT_EQ(vm.started_at, "2026-12-06T07:00:01Z");
    vm.pid = 101;
    vm = inv.update_vm(vm).value();                 // 07:00:03: another one
    EXPECT_EQ(vm.started_at, "2026-12-06T07:00:03Z");
    vm.pid = 0;
    vm = inv.update_vm(vm).value();                 // none
    EXPECT_EQ(vm.started_at, "");
    auto stored = inv.get_vm("web1").value();
    EXPECT_EQ(stored.restarts, 2);
    EXPECT_EQ(stored.last_crash, "killed by signal 9 (SIGKILL)");
    EXPECT_EQ(stored.started_at, "");
}

TEST_F(SqliteInventoryTest, LimitsAreStoredAndCleared) {
    VmRecord vm = make_vm("web1");
    vm.limits = {300, 50, 256, 200, "0-1", "1,0"};
    vm = inventory().create_vm(vm).value();
    EXPECT_EQ(inventory().get_vm("web1").value().limits, (VmLimits{300, 50, 256, 200, "0-1", "1,0"}));
    vm.limits.cpu_max_percent = 0;
    vm.limits.host_cpus.clear();
    ASSERT_TRUE(inventory().update_vm(vm));
    EXPECT_EQ(inventory().get_vm("web1").value().limits, (VmLimits{300, 0, 256, 200, "", "1,0"}));
    vm.limits = {};
    ASSERT_TRUE(inventory().update_vm(vm));
    EXPECT_EQ(inventory().list_vms().value().front().limits, VmLimits{});
}

TEST_F(SqliteInventoryTest, BalloonTargetIsStoredAndCleared) {
    VmRecord vm = make_vm("web1");
    EXPECT_EQ(inventory().create_vm(vm).value().balloon_target_mib, 0);  // none kept by default
    vm.balloon_target_mib = 384;
    ASSERT_TRUE(inventory().update_vm(vm));
    EXPECT_EQ(inventory().get_vm("web1").value().balloon_target_mib, 384);
    vm.balloon_target_mib = 0;
    ASSERT_TRUE(inventory().update_vm(vm));
    EXPECT_EQ(inventory().list_vms().value().front().balloon_target_mib, 0);
}

TEST_F(SqliteInventoryTest, GenerationIdIsStoredWithCreateAndUpdate) {
    VmRecord vm = make_vm("web1");
    EXPECT_EQ(inventory().create_vm(vm).value().generation_id, "");  // none before a start
    vm.generation_id = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d";
    ASSERT_TRUE(inventory().update_vm(vm));
    EXPECT_EQ(inventory().get_vm("web1").value().generation_id, vm.generation_id);
    VmRecord arriving = make_vm("web2");  // a migrated VM's record is created with the source's
    arriving.generation_id = "9f8e7d6c-5b4a-4392-a817-161514131211";
    ASSERT_TRUE(inventory().create_vm(arriving));
    EXPECT_EQ(inventory().list_vms().value().back().generation_id, arriving.generation_id);
}

TEST_F(SqliteInventoryTest, ListVmsIsOrderedByName) {
    for (const char* name : {"web2", "db1", "web10", "app"})
        ASSERT_TRUE(inventory().create_vm(make_vm(name)));
    std::vector<std::string> names;
    const auto vms = inventory().list_vms().value();
    for (const auto& vm : vms)
        names.push_back(vm.name);
    EXPECT_THAT(names, ElementsAre("app", "db1", "web10", "web2"));
}

TEST_F(SqliteInventoryTest, DuplicateVmIsEexistAndKeepsTheFirst) {
    ASSERT_TRUE(inventory().create_vm(make_vm("web1")));
    VmRecord other = make_vm("web1");
    other.vcpus = 8;
    expect_error(inventory().create_vm(other), EEXIST, "a VM named web1 already exists");
    EXPECT_EQ(inventory().get_vm("web1")->vcpus, 2);
}

TEST_F(SqliteInventoryTest, MissingObjectsAreEnoent) {
    expect_error(inventory().update_vm(make_vm("ghost")), ENOENT, "no VM named ghost");
    expect_error(inventory().delete_vm("ghost"), ENOENT, "no VM named ghost");
    expect_error(inventory().get_pool("ghost"), ENOENT, "no pool named ghost");
    expect_error(inventory().update_pool({"ghost", "dir", "/x", ""}), ENOENT,
                 "no pool named ghost");
    expect_error(inventory().delete_pool("ghost"), ENOENT, "no pool named ghost");
    expect_error(inventory().get_image("ghost"), ENOENT, "no image named ghost");
    expect_error(inventory().delete_image("ghost"), ENOENT, "no image named ghost");
    expect_error(inventory().get_task("t-99"), ENOENT, "no task t-99");
    expect_error(inventory().get_task("banana"), ENOENT, "no task banana");
    expect_error(inventory().get_task("t-1x"), ENOENT, "no task t-1x");
    TaskRecord task;
    task.id = "t-5";
    expect_error(inventory().update_task(task), ENOENT, "no task t-5");
}

TEST_F(SqliteInventoryTest, PoolRoundTrip) {
    auto created = inventory().create_pool({"default", "dir", "/var/lib/corral/pools/default", ""});
    ASSERT_TRUE(created) << created.error().message();
    EXPECT_FALSE(created->created_at.empty());
    EXPECT_EQ(inventory().get_pool("default").value(), *created);
    expect_error(inventory().create_pool({"default", "dir", "/elsewhere", ""}), EEXIST,
                 "a pool named default already exists");

    ASSERT_TRUE(inventory().create_pool({"archive", "dir", "/srv/archive", ""}));
    auto updated = inventory().update_pool({"archive", "dir", "/srv/archive2", ""});
    ASSERT_TRUE(updated);
    EXPECT_EQ(updated->path, "/srv/archive2");
    EXPECT_FALSE(updated->created_at.empty());
    auto pools = inventory().list_pools().value();
    ASSERT_EQ(pools.size(), 2u);
    EXPECT_EQ(pools[0], *updated);  // "archive" < "default"
    EXPECT_EQ(pools[1], *created);

    ASSERT_TRUE(inventory().delete_pool("archive"));
    expect_error(inventory().get_pool("archive"), ENOENT, "no pool named archive");
}

TEST_F(SqliteInventoryTest, ImageRoundTripAndItsPool) {
    ImageRecord image{"default",
                      "default",
                      "/k/vmlinuz",
                      "/k/initrd",
                      "img-default",
                      "console=ttyS0",
                      "Debian 12 kernel + busybox root",
                      ""};
    expect_error(inventory().create_image(image), ENOENT, "no pool named default");

    ASSERT_TRUE(inventory().create_pool({"default", "dir", "/p", ""}));
    auto created = inventory().create_image(image);
    ASSERT_TRUE(created) << created.error().message();
    image.created_at = created->created_at;
    EXPECT_EQ(*created, image);
    EXPECT_EQ(inventory().get_image("default").value(), image);
    EXPECT_THAT(inventory().list_images().value(), ElementsAre(image));
    expect_error(inventory().create_image(image), EEXIST, "an image named default already exists");

    // The pool cannot go while the image is in it.
    expect_error(inventory().delete_pool("default"), EBUSY,
                 "pool default is used by image default");
    EXPECT_TRUE(inventory().get_pool("default"));

    ImageRecord moved = image;
    moved.pool = "nowhere";
    expect_error(inventory().update_image(moved), ENOENT, "no pool named nowhere");
    moved.pool = "default";
    moved.description = "rebuilt";
    auto updated = inventory().update_image(moved);
    ASSERT_TRUE(updated);
    EXPECT_EQ(*updated, moved);
    EXPECT_EQ(inventory().get_image("default")->description, "rebuilt");

    ASSERT_TRUE(inventory().delete_image("default"));
    EXPECT_TRUE(inventory().delete_pool("default"));
}

TEST_F(SqliteInventoryTest, VmsUsingVolume) {
    ASSERT_TRUE(inventory().create_vm(make_vm("web2")));  // uses data/shared read-only
    ASSERT_TRUE(inventory().create_vm(make_vm("web1")));
    VmRecord lonely = make_vm("solo");
    lonely.disks = {{"default", "solo-root", false}};
    ASSERT_TRUE(inventory().create_vm(lonely));

    EXPECT_THAT(inventory().vms_using_volume("data", "shared").value(),
                ElementsAre("web1", "web2"));
    EXPECT_THAT(inventory().vms_using_volume("default", "web1-root").value(), ElementsAre("web1"));
    EXPECT_THAT(inventory().vms_using_volume("data", "web1-root").value(), IsEmpty());
    EXPECT_THAT(inventory().vms_using_volume("default", "shared").value(), IsEmpty());
}

TEST_F(SqliteInventoryTest, TaskIdsIncreaseAndListIsNewestFirst) {
    auto first = inventory().create_task("vm.start", "web1");
    ASSERT_TRUE(first) << first.error().message();
    EXPECT_EQ(first->id, "t-1");
    EXPECT_EQ(first->status, "running");
    EXPECT_EQ(first->progress, 0.0);
    EXPECT_TRUE(first->finished_at.empty());
    EXPECT_EQ(inventory().create_task("volume.copy", "default/a")->id, "t-2");
    EXPECT_EQ(inventory().create_task("vm.stop", "web1")->id, "t-3");

    std::vector<std::string> ids;
    const auto tasks = inventory().list_tasks().value();
    for (const auto& task : tasks)
        ids.push_back(task.id);
    EXPECT_THAT(ids, ElementsAre("t-3", "t-2", "t-1"));
    auto two = inventory().list_tasks(2).value();
    ASSERT_EQ(two.size(), 2u);
    EXPECT_EQ(two[0].id, "t-3");
    EXPECT_EQ(two[1].id, "t-2");
    EXPECT_EQ(inventory().get_task("t-1").value(), *first);
}

TEST_F(SqliteInventoryTest, TaskUpdates) {
    TaskRecord task = inventory().create_task("volume.copy", "default/big").value();
    task.progress = 0.42;
    task.message = "copying 1.2 GiB of 3 GiB";
    task.kind = "ignored";
    auto progressed = inventory().update_task(task);
    ASSERT_TRUE(progressed) << progressed.error().message();
    EXPECT_EQ(progressed->kind, "volume.copy");
    EXPECT_TRUE(progressed->finished_at.empty());
    EXPECT_EQ(inventory().get_task(task.id).value(), *progressed);

    TaskRecord failed = *progressed;
    failed.status = k_task_failed;
    failed.error = "no space left on device";
    auto finished = inventory().update_task(failed);
    ASSERT_TRUE(finished);
    EXPECT_FALSE(finished->finished_at.empty());
    EXPECT_GT(finished->finished_at, finished->created_at);
    EXPECT_EQ(inventory().get_task(task.id).value(), *finished);

    TaskRecord bad = *finished;
    bad.status = "done";
    expect_error(inventory().update_task(bad), EINVAL,
                 "task status must be queued, running, succeeded, failed or cancelled, not 'done'");
    bad.status = k_task_succeeded;
    bad.progress = 1.5;
    expect_error(inventory().update_task(bad), EINVAL,
                 "task progress must be from 0 to 1, not 1.5");
    EXPECT_EQ(inventory().get_task(task.id).value(), *finished);
}

TEST_F(SqliteInventoryTest, PruneKeepsTheNewestAndRunningTasks) {
    for (int i = 1; i <= 6; ++i) {
        TaskRecord task = inventory().create_task("vm.start", fmt::format("vm{}", i)).value();
        if (i != 2) {  // t-2 stays running
            task.status = k_task_succeeded;
            ASSERT_TRUE(inventory().update_task(task));
        }
    }
    auto pruned = inventory().prune_tasks(2);
    ASSERT_TRUE(pruned) << pruned.error().message();
    EXPECT_EQ(*pruned, 3u);  // t-1, t-3, t-4
    std::vector<std::string> ids;
    const auto tasks = inventory().list_tasks().value();
    for (const auto& task : tasks)
        ids.push_back(task.id);
    EXPECT_THAT(ids, ElementsAre("t-6", "t-5", "t-2"));
    EXPECT_EQ(inventory().create_task("vm.stop", "vm1")->id, "t-7");
    EXPECT_EQ(inventory().prune_tasks(100).value(), 0u);
}

TEST_F(SqliteInventoryTest, TransactionCommitsEverything) {
    auto done = inventory().transaction([](Inventory& inv) -> Result<void> {
        TRY(inv.create_pool({"default", "dir", "/p", ""}));
        TRY(inv.create_vm(make_vm("web1")));
        TRY(inv.create_task("vm.create", "web1"));
        return {};
    });
    ASSERT_TRUE(done) << done.error().message();
    EXPECT_TRUE(inventory().get_pool("default"));
    EXPECT_TRUE(inventory().get_vm("web1"));
    EXPECT_TRUE(inventory().get_task("t-1"));
}

TEST_F(SqliteInventoryTest, TransactionRollsBackOnError) {
    ASSERT_TRUE(inventory().create_vm(make_vm("web1")));
    auto done = inventory().transaction([](Inventory& inv) -> Result<void> {
        TRY(inv.create_pool({"default", "dir", "/p", ""}));
        TRY(inv.delete_vm("web1"));
        TRY(inv.create_task("vm.create", "web2"));
        TRY(inv.create_vm(make_vm("web1")));  // fine: deleted above
        TRY(inv.create_vm(make_vm("web1")));  // fails: EEXIST
        return {};
    });
    ASSERT_FALSE(done);
    expect_error(done.error(), EEXIST, "a VM named web1 already exists");
    expect_error(inventory().get_pool("default"), ENOENT, "no pool named default");
    EXPECT_THAT(inventory().list_tasks().value(), IsEmpty());
    auto web1 = inventory().get_vm("web1");
    ASSERT_TRUE(web1);
    EXPECT_EQ(web1->created_at, "2026-11-26T23:00:00Z");  // the original row
    // The inventory is usable afterwards.
    EXPECT_TRUE(inventory().create_pool({"default", "dir", "/p", ""}));
}

TEST_F(SqliteInventoryTest, TransactionRollsBackWhenTheFunctionThrows) {
    EXPECT_THROW((void)inventory().transaction([](Inventory& inv) -> Result<void> {
        TRY(inv.create_vm(make_vm("web1")));
        throw std::runtime_error("boom");
    }),
                 std::runtime_error);
    EXPECT_FALSE(inventory().get_vm("web1"));
    EXPECT_TRUE(inventory().transaction([](Inventory& inv) -> Result<void> {
        TRY(inv.create_vm(make_vm("web1")));
        return {};
    }));
    EXPECT_TRUE(inventory().get_vm("web1"));
}

TEST_F(SqliteInventoryTest, NestedTransactionUndoesOnlyItsOwnPart) {
    auto done = inventory().transaction([](Inventory& inv) -> Result<void> {
        TRY(inv.create_vm(make_vm("outer")));
        auto inner = inv.transaction([](Inventory& inner_inv) -> Result<void> {
            TRY(inner_inv.create_vm(make_vm("inner")));
            return fail("changed my mind");
        });
        if (inner)
            return fail("the inner transaction should have failed");
        TRY(inv.create_vm(make_vm("after")));
        return {};
    });
    ASSERT_TRUE(done) << done.error().message();
    std::vector<std::string> names;
    const auto vms = inventory().list_vms().value();
    for (const auto& vm : vms)
        names.push_back(vm.name);
    EXPECT_THAT(names, ElementsAre("after", "outer"));
}

TEST_F(SqliteInventoryTest, ReopeningKeepsEverything) {
    ASSERT_TRUE(inventory().create_pool({"default", "dir", "/p", ""}));
    ASSERT_TRUE(inventory().create_image({"default", "default", "/k", "/i", "r", "c", "d", ""}));
    const VmRecord vm = inventory().create_vm(make_vm("web1")).value();
    TaskRecord task = inventory().create_task("vm.start", "web1").value();
    task.status = k_task_succeeded;
    task.progress = 1.0;
    task = inventory().update_task(task).value();
    const auto pools = inventory().list_pools().value();
    const auto images = inventory().list_images().value();
    m_inventory.reset();

    auto reopened = SqliteInventory::open(path());
    ASSERT_TRUE(reopened) << reopened.error().message();
    EXPECT_EQ((*reopened)->get_vm("web1").value(), vm);
    EXPECT_EQ((*reopened)->list_pools().value(), pools);
    EXPECT_EQ((*reopened)->list_images().value(), images);
    EXPECT_EQ((*reopened)->get_task("t-1").value(), task);
    EXPECT_EQ((*reopened)->create_task("vm.stop", "web1")->id, "t-2");
}

TEST_F(SqliteInventoryTest, TwoInventoriesOnOneFileSeeEachOthersCommits) {
    auto second = SqliteInventory::open(path());
    ASSERT_TRUE(second) << second.error().message();
    Inventory& other = **second;

    ASSERT_TRUE(inventory().create_vm(make_vm("web1")));
    EXPECT_EQ(other.get_vm("web1")->name, "web1");

    auto done = other.transaction([&](Inventory& inv) -> Result<void> {
        TRY(inv.create_vm(make_vm("web2")));
        // Not committed yet: the first connection must not see it (and must not block).
        if (inventory().get_vm("web2"))
            return fail("saw an uncommitted VM");
        return {};
    });
    ASSERT_TRUE(done) << done.error().message();
    EXPECT_TRUE(inventory().get_vm("web2"));

    EXPECT_EQ(inventory().create_task("a", "x")->id, "t-1");
    EXPECT_EQ(other.create_task("b", "y")->id, "t-2");
    EXPECT_EQ(inventory().list_tasks().value().size(), 2u);
}

TEST_F(SqliteInventoryTest, AWriterWaitsForAnotherProcessOnlyUpToBusyTimeout) {
    SqliteInventoryOptions options;
    options.busy_timeout = std::chrono::milliseconds(50);
    auto second = SqliteInventory::open(path(), options);
    ASSERT_TRUE(second);
    auto done = inventory().transaction([&](Inventory&) -> Result<void> {
        auto blocked = (*second)->create_vm(make_vm("web1"));
        if (blocked)
            return fail("wrote while another connection held the write lock");
        EXPECT_THAT(blocked.error().message(), HasSubstr("database is locked"));
        return {};
    });
    ASSERT_TRUE(done) << done.error().message();
    EXPECT_TRUE((*second)->create_vm(make_vm("web1")));
}

TEST_F(SqliteInventoryTest, ManyThreadsAndTwoConnections) {
    auto second = SqliteInventory::open(path());
    ASSERT_TRUE(second);
    constexpr int k_threads = 4;
    constexpr int k_per_thread = 25;
    std::vector<std::vector<std::string>> ids(k_threads);
    std::atomic<int> failures = 0;
    std::vector<std::thread> threads;
    for (int t = 0; t < k_threads; ++t) {
        threads.emplace_back([&, t] {
            Inventory& inv = t % 2 ? static_cast<Inventory&>(**second) : inventory();
            for (int i = 0; i < k_per_thread; ++i) {
                auto task = inv.create_task("test", fmt::format("{}-{}", t, i));
                auto vm = inv.transaction([&](Inventory& tx) -> Result<void> {
                    TRY(tx.create_vm(make_vm(fmt::format("vm-{}-{}", t, i))));
                    TRY(tx.get_vm(fmt::format("vm-{}-{}", t, i)));
                    return {};
                });
                if (!task || !vm) {
                    ++failures;
                    continue;
                }
                ids[t].push_back(task->id);
            }
        });
    }
    for (auto& thread : threads)
        thread.join();
    EXPECT_EQ(failures.load(), 0);
    std::set<std::string> unique;
    for (const auto& list : ids)
        unique.insert(list.begin(), list.end());
    EXPECT_EQ(unique.size(), static_cast<std::size_t>(k_threads * k_per_thread));
    EXPECT_EQ(inventory().list_vms().value().size(),
              static_cast<std::size_t>(k_threads * k_per_thread));
}

TEST_F(SqliteInventoryTest, MalformedJsonColumnIsAnErrorNamingTheVm) {
    ASSERT_TRUE(inventory().create_vm(make_vm("web1")));
    {
        auto db = Connection::open(path());
        ASSERT_TRUE(db);
        ASSERT_TRUE(db->exec("UPDATE vms SET disks = '{not json'"));
    }
    auto vm = inventory().get_vm("web1");
    ASSERT_FALSE(vm);
    EXPECT_THAT(vm.error().message(), HasSubstr("VM web1 has a malformed disks column"));
}

TEST_F(SqliteInventoryTest, TokenRoundTrip) {
    const std::string hash_a(64, 'a');
    const std::string hash_b(64, 'b');
    auto created = inventory().create_token({"ci", hash_a, "ignored", "ignored"});
    ASSERT_TRUE(created) << created.error().message();
    EXPECT_EQ(created->name, "ci");
    EXPECT_EQ(created->sha256, hash_a);
    EXPECT_FALSE(created->created_at.empty());
    EXPECT_NE(created->created_at, "ignored");  // set by the inventory
    EXPECT_EQ(created->last_used_at, "");
    ASSERT_TRUE(inventory().create_token({"alpha", hash_b, "", ""}));

    auto tokens = inventory().list_tokens();
    ASSERT_TRUE(tokens);
    ASSERT_EQ(tokens->size(), 2u);
    EXPECT_EQ((*tokens)[0].name, "alpha");  // ordered by name
    EXPECT_EQ((*tokens)[1], *created);

    ASSERT_TRUE(inventory().touch_token("ci"));
    EXPECT_FALSE(inventory().list_tokens().value()[1].last_used_at.empty());

    expect_error(inventory().create_token({"ci", std::string(64, 'c'), "", ""}), EEXIST,
                 "a token named ci already exists");
    expect_error(inventory().delete_token("nope"), ENOENT, "no token named nope");
    expect_error(inventory().touch_token("nope"), ENOENT, "no token named nope");
    ASSERT_TRUE(inventory().delete_token("ci"));
    EXPECT_EQ(inventory().list_tokens()->size(), 1u);
}

TEST_F(SqliteInventoryTest, SnapshotRoundTripAndErrors) {
    ASSERT_TRUE(inventory().create_vm(make_vm("web1")));
    SnapshotRecord snapshot;
    snapshot.vm = "web1";
    snapshot.name = "before";
    snapshot.description = "before the upgrade";
    snapshot.kind = "memory";
    snapshot.engine = "emulated";
    snapshot.vcpus = 2;
    snapshot.memory_mib = 768;
    auto created = inventory().create_snapshot(snapshot);
    ASSERT_TRUE(created) << created.error().message();
    EXPECT_FALSE(created->created_at.empty());
    EXPECT_EQ(created->status, k_snapshot_creating);
    expect_error(inventory().create_snapshot(snapshot), EEXIST, "VM web1 already has a snapshot named before");
    snapshot.vm = "nope";
    expect_error(inventory().create_snapshot(snapshot), ENOENT, "no VM named nope");
    expect_error(inventory().get_snapshot("web1", "after"), ENOENT, "VM web1 has no snapshot named after");

    SnapshotRecord done = *created;
    done.status = k_snapshot_ready;
    done.size_bytes = 4096;
    done.dir = "/var/lib/corral/snapshots/web1/before";
    EXPECT_EQ(created->vcpus, 2);
    EXPECT_EQ(created->memory_mib, 768);
    auto updated = inventory().update_snapshot(done);
    ASSERT_TRUE(updated) << updated.error().message();
    EXPECT_EQ(*updated, done);
    EXPECT_EQ(inventory().get_snapshot("web1", "before").value(), done);

    SnapshotRecord second = done;
    second.name = "after";
    ASSERT_TRUE(inventory().create_snapshot(second));
    auto listed = inventory().list_snapshots("web1");
    ASSERT_TRUE(listed);
    ASSERT_EQ(listed->size(), 2u);
    EXPECT_EQ((*listed)[0].name, "before");  // oldest first
    EXPECT_EQ((*listed)[1].name, "after");
    EXPECT_TRUE(inventory().list_snapshots("other")->empty());

    ASSERT_TRUE(inventory().delete_snapshot("web1", "after"));
    expect_error(inventory().delete_snapshot("web1", "after"), ENOENT, "VM web1 has no snapshot named after");
    ASSERT_TRUE(inventory().delete_vm("web1"));
    EXPECT_TRUE(inventory().list_snapshots("")->empty());
}

TEST_F(SqliteInventoryTest, SnapshotsFormATreeThatStaysWholeWhenOneGoes) {
    ASSERT_TRUE(inventory().create_vm(make_vm("web1")));
    ASSERT_TRUE(inventory().create_vm(make_vm("web2")));
    auto take = [&](const std::string& vm, const std::string& name, const std::string& parent) {
        SnapshotRecord snapshot;
        snapshot.vm = vm;
        snapshot.name = name;
        snapshot.engine = "emulated";
        snapshot.parent = parent;
        snapshot.current = true;  // ignored: a new snapshot is current only once set so
        auto created = inventory().create_snapshot(snapshot);
        EXPECT_TRUE(created) << created.error().message();
        EXPECT_FALSE(created->current);
    };
    // a <- b <- c, and a <- d; web2's own "a" is another tree.
    take("web1", "a", "");
    take("web1", "b", "a");
    take("web1", "c", "b");
    take("web1", "d", "a");
    take("web2", "a", "");
    auto current_of = [&](const std::string& vm) {
        std::string current;
        const auto snapshots = inventory().list_snapshots(vm).value();  // a copy: the Result is a temporary
        for (const auto& snapshot : snapshots)
            if (snapshot.current) current += (current.empty() ? "" : ",") + snapshot.name;
        return current;
    };
    EXPECT_EQ(current_of("web1"), "");
    ASSERT_TRUE(inventory().set_current_snapshot("web1", "b"));
    ASSERT_TRUE(inventory().set_current_snapshot("web2", "a"));
    EXPECT_EQ(current_of("web1"), "b");
    ASSERT_TRUE(inventory().set_current_snapshot("web1", "c"));
    EXPECT_EQ(current_of("web1"), "c") << "one current snapshot per VM";
    EXPECT_EQ(current_of("web2"), "a") << "each VM has its own";
    expect_error(inventory().set_current_snapshot("web1", "zz"), ENOENT, "VM web1 has no snapshot named zz");
    EXPECT_EQ(current_of("web1"), "c") << "a refused change changes nothing";

    // b goes: c hangs from a now; c stays current.
    ASSERT_TRUE(inventory().delete_snapshot("web1", "b"));
    EXPECT_EQ(inventory().get_snapshot("web1", "c")->parent, "a");
    EXPECT_EQ(inventory().get_snapshot("web1", "d")->parent, "a");
    EXPECT_EQ(current_of("web1"), "c");
    // The current one goes: its parent is current.
    ASSERT_TRUE(inventory().delete_snapshot("web1", "c"));
    EXPECT_EQ(current_of("web1"), "a");
    // A root goes: its children become roots.
    ASSERT_TRUE(inventory().delete_snapshot("web1", "a"));
    EXPECT_EQ(inventory().get_snapshot("web1", "d")->parent, "");
    EXPECT_EQ(current_of("web1"), "");
    EXPECT_EQ(current_of("web2"), "a") << "web1's deletes never touch web2's tree";
    ASSERT_TRUE(inventory().set_current_snapshot("web2", ""));
    EXPECT_EQ(current_of("web2"), "");
}

TEST(SqliteInventoryOpen, FailsWhenTheFolderCannotBeMade) {
    testing::TestDir dir;
    ASSERT_TRUE(Connection::open(dir.path("file")));  // a file where the folder should be
    auto opened = SqliteInventory::open(dir.path("file/sub/inventory.db"));
    ASSERT_FALSE(opened);
    EXPECT_THAT(opened.error().message(),
                HasSubstr("opening inventory " + dir.path("file/sub/inventory.db")));
}

NetworkRecord make_network(const std::string& name, const std::string& bridge) {
    NetworkRecord network;
    network.name = name;
    network.kind = "nat";
    network.bridge = bridge;
    network.subnet4 = "10.0.100.0/24";
    network.gateway4 = "10.0.100.1";
    network.dhcp_start = "10.0.100.100";
    network.dhcp_end = "10.0.100.199";
    network.mtu = 1400;
    network.dns_forwarders = {"192.0.2.53", "192.0.2.54"};
    network.reservations = {{"52:54:00:00:00:02", "10.0.100.2", "db"}, {"52:54:00:00:00:03", "10.0.100.3", ""}};
    return network;
}

TEST_F(SqliteInventoryTest, NetworkRoundTripWithReservations) {
    auto created = inventory().create_network(make_network("default", "corral0"));
    ASSERT_TRUE(created) << created.error().message();
    EXPECT_FALSE(created->created_at.empty());
    EXPECT_EQ(inventory().get_network("default").value(), *created);

    NetworkRecord changed = *created;
    changed.mtu = 9000;
    changed.dns_forwarders.clear();
    changed.reservations = {{"52:54:00:00:00:09", "10.0.100.9", "web"}};
    changed.created_at = "ignored";
    auto updated = inventory().update_network(changed);
    ASSERT_TRUE(updated) << updated.error().message();
    EXPECT_EQ(updated->created_at, created->created_at);
    changed.created_at = created->created_at;
    EXPECT_EQ(inventory().get_network("default").value(), changed);

    expect_error(inventory().create_network(make_network("default", "corral1")), EEXIST,
                 "a network named default already exists");
    expect_error(inventory().create_network(make_network("other", "corral0")), EEXIST,
                 "bridge corral0 already belongs to another network");
    EXPECT_THAT(inventory().list_networks().value().size(), 1u);  // nothing half-created
    ASSERT_TRUE(inventory().delete_network("default"));
    expect_error(inventory().get_network("default"), ENOENT, "no network named default");
}

TEST_F(SqliteInventoryTest, DuplicateReservationIsEexistAndNothingIsStored) {
    NetworkRecord network = make_network("lab", "corral1");
    network.reservations.push_back({"52:54:00:00:00:04", "10.0.100.2", "dup"});
    expect_error(inventory().create_network(network), EEXIST,
                 "reservations[2]: MAC 52:54:00:00:00:04 or address 10.0.100.2 is reserved twice on network lab");
    expect_error(inventory().get_network("lab"), ENOENT, "no network named lab");
}

TEST_F(SqliteInventoryTest, ANetworkInUseCannotBeDeleted) {
    ASSERT_TRUE(inventory().create_network(make_network("default", "corral0")));
    VmRecord vm = make_vm("web1");
    vm.nics = {{"", "", "52:54:00:00:00:10", "default", "10.0.100.10", {}}};
    ASSERT_TRUE(inventory().create_vm(vm));
    EXPECT_EQ(inventory().get_vm("web1").value().nics, vm.nics);
    EXPECT_THAT(inventory().vms_using_network("default").value(), ElementsAre("web1"));
    expect_error(inventory().delete_network("default"), EBUSY, "network default is used by VM web1");
    ASSERT_TRUE(inventory().delete_vm("web1"));
    EXPECT_TRUE(inventory().delete_network("default"));
}

TEST_F(SqliteInventoryTest, SecurityGroupsOnNicsSurviveStateUpdatesAndBlockDeletion) {
    SecurityGroupRecord web{"web", "web servers", {{"in", "tcp", 22, 22, "10.0.0.0/8", ""}, {"in", "tcp", 80, 80, "", "web"}}, ""};
    auto created = inventory().create_security_group(web);
    ASSERT_TRUE(created) << created.error().message();
    web.created_at = created->created_at;
    EXPECT_EQ(inventory().get_security_group("web").value(), web);
    expect_error(inventory().create_security_group(web), EEXIST, "a security group named web already exists");

    VmRecord vm;
    vm.name = "vm1";
    vm.engine = "emulated";
    vm.nics = {{"corral0", "", "52:54:00:00:00:01", "default", "10.0.100.2", {"web"}}, {"br0", "", "", "", "", {}}};
    ASSERT_TRUE(inventory().create_vm(vm));
    EXPECT_EQ(inventory().get_vm("vm1")->nics[0].groups, std::vector<std::string>{"web"});
    // A state change from a record read before the group change keeps the new groups.
    VmRecord stale = inventory().get_vm("vm1").value();
    ASSERT_TRUE(inventory().set_nic_groups("vm1", 1, {"default", "web"}));
    stale.state = "running";
    ASSERT_TRUE(inventory().update_vm(stale));
    auto now = inventory().get_vm("vm1").value();
    EXPECT_EQ(now.nics[1].groups, (std::vector<std::string>{"default", "web"}));
    EXPECT_EQ(now.state, "running");
    expect_error(inventory().set_nic_groups("vm1", 2, {}), EINVAL, "VM vm1 has no NIC 2 (it has 2)");
    expect_error(inventory().set_nic_groups("vm1", 0, {"nope"}), ENOENT, "nics[0].groups[0]: no security group named nope");
    EXPECT_EQ(inventory().get_vm("vm1")->nics[0].groups, std::vector<std::string>{"web"});  // nothing half-done
    expect_error(inventory().delete_security_group("web"), EBUSY,
                 "security group web is attached to a NIC of VM vm1: detach it first");
    // A NIC that goes away loses its groups.
    now.nics.pop_back();
    ASSERT_TRUE(inventory().update_vm(now));
    EXPECT_EQ(inventory().vms_using_security_group("default").value(), std::vector<std::string>{});
    ASSERT_TRUE(inventory().delete_vm("vm1"));
    EXPECT_TRUE(inventory().vms_using_security_group("web").value().empty());
    ASSERT_TRUE(inventory().delete_security_group("web"));
    expect_error(inventory().get_security_group("web"), ENOENT, "no security group named web");
}

}  // namespace
}  // namespace corral::inventory
