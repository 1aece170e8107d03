#include "daemon/inventory/migrations.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemon/inventory/sqlite_connection.h"
#include "daemon/inventory/sqlite_inventory.h"
#include "test_dir.h"

namespace corral::inventory {
namespace {

using ::testing::HasSubstr;

TEST(Migrations, NewDatabaseGetsTheCurrentVersion) {
    testing::TestDir dir;
    auto db = Connection::open(dir.path("inv.db"));
    ASSERT_TRUE(db);
    ASSERT_TRUE(migrate(*db)) << "";
    EXPECT_EQ(schema_version(*db).value(), k_schema_version);
    // Migrating again is a no-op.
    ASSERT_TRUE(migrate(*db));
    EXPECT_EQ(schema_version(*db).value(), k_schema_version);
}

TEST(Migrations, Version1DataSurvivesTheUpgrade) {
    testing::TestDir dir;
    const std::string path = dir.path("inv.db");
    {
        // What a v1 corrald left behind, written with v1's columns (no state_reason).
        auto db = Connection::open(path);
        ASSERT_TRUE(db);
        auto migrated = migrate(*db, 1);
        ASSERT_TRUE(migrated) << migrated.error().message();
        ASSERT_EQ(schema_version(*db).value(), 1);
        ASSERT_TRUE(
            db->exec("INSERT INTO pools VALUES ('default', 'dir', '/var/lib/corral/pools/default', "
                     "'2026-01-01T00:00:00Z');"
                     "INSERT INTO images VALUES ('default', 'default', '/k', '/i', 'img-default', "
                     "'console=ttyS0', 'Debian', '2026-01-01T00:00:01Z');"
                     "INSERT INTO vms (name, engine, vcpus, memory_mib, image, disks, nics, "
                     "restart_policy, cmdline, state, pid, run_dir, created_at, updated_at) VALUES "
                     "('web1', 'emulated', 2, 512, 'default', "
                     "'[{\"pool\":\"default\",\"volume\":\"web1-root\",\"readonly\":false}]', "
                     "'[{\"bridge\":\"br0\",\"mac\":\"52:54:00:12:34:56\"}]', 'always', 'quiet', "
                     "'running', 4242, '/run/corral/web1', '2026-01-01T00:00:02Z', "
                     "'2026-01-01T00:00:03Z');"
                     "INSERT INTO tasks (kind, target, status, progress, created_at) VALUES "
                     "('vm.start', 'web1', 'running', 0.5, '2026-01-01T00:00:04Z');"));
        auto has_column = db->prepare("SELECT state_reason FROM vms");
        EXPECT_FALSE(has_column);  // really v1
    }

    auto inventory = SqliteInventory::open(path);
    ASSERT_TRUE(inventory) << inventory.error().message();
    {
        auto db = Connection::open(path);
        ASSERT_TRUE(db);
        EXPECT_EQ(schema_version(*db).value(), k_schema_version);
    }

    auto vm = (*inventory)->get_vm("web1");
    ASSERT_TRUE(vm) << vm.error().message();
    VmRecord expected;
    expected.name = "web1";
    expected.engine = "emulated";
    expected.vcpus = 2;
    expected.memory_mib = 512;
    expected.image = "default";
    expected.disks = {{"default", "web1-root", false}};
    expected.nics = {{"br0", "", "52:54:00:12:34:56", "", "", {}}};  // a key the row lacks reads as ""
    expected.restart_policy = "always";
    expected.cmdline = "quiet";
    expected.state = "running";
    expected.state_reason = "";  // the column v2 added
    expected.pid = 4242;
    expected.run_dir = "/run/corral/web1";
    expected.created_at = "2026-01-01T00:00:02Z";
    expected.updated_at = "2026-01-01T00:00:03Z";
    EXPECT_EQ(*vm, expected);

    EXPECT_EQ(
        (*inventory)->get_pool("default").value(),
        (PoolRecord{"default", "dir", "/var/lib/corral/pools/default", "2026-01-01T00:00:00Z"}));
    EXPECT_EQ((*inventory)->get_image("default").value(),
              (ImageRecord{"default", "default", "/k", "/i", "img-default", "console=ttyS0",
                           "Debian", "2026-01-01T00:00:01Z"}));
    auto task = (*inventory)->get_task("t-1");
    ASSERT_TRUE(task);
    EXPECT_EQ(task->kind, "vm.start");
    EXPECT_EQ(task->progress, 0.5);

    // And the new column is usable.
    expected.state_reason = "guest powered off";
    ASSERT_TRUE((*inventory)->update_vm(expected));
    EXPECT_EQ((*inventory)->get_vm("web1")->state_reason, "guest powered off");
}

TEST(Migrations, Version2DataSurvivesTheUpgradeToTokens) {
    testing::TestDir dir;
    const std::string path = dir.path("inv.db");
    {
        // What a v2 corrald left behind: VMs, pools, images and tasks, but no tokens table.
        auto db = Connection::open(path);
        ASSERT_TRUE(db);
        ASSERT_TRUE(migrate(*db, 2));
        ASSERT_TRUE(
            db->exec("INSERT INTO pools VALUES ('default', 'dir', '/p', '2026-01-01T00:00:00Z');"
                     "INSERT INTO images VALUES ('default', 'default', '/k', '/i', 'img-default', "
                     "'console=ttyS0', 'Debian', '2026-01-01T00:00:01Z');"
                     "INSERT INTO vms (name, engine, vcpus, memory_mib, image, disks, nics, "
                     "restart_policy, cmdline, state, state_reason, pid, run_dir, created_at, updated_at) "
                     "VALUES ('web1', 'emulated', 2, 512, 'default', '[]', '[]', 'no', '', 'crashed', "
                     "'killed by signal 9', 0, '/run/web1', '2026-01-01T00:00:02Z', '2026-01-01T00:00:03Z');"
                     "INSERT INTO tasks (kind, target, status, progress, created_at) VALUES "
                     "('vm.start', 'web1', 'succeeded', 1, '2026-01-01T00:00:04Z');"));
        EXPECT_FALSE(db->prepare("SELECT name FROM tokens"));  // really v2
    }

    auto inventory = SqliteInventory::open(path);
    ASSERT_TRUE(inventory) << inventory.error().message();
    {
        auto db = Connection::open(path);
        ASSERT_TRUE(db);
        EXPECT_EQ(schema_version(*db).value(), k_schema_version);
    }
    auto vm = (*inventory)->get_vm("web1");
    ASSERT_TRUE(vm) << vm.error().message();
    EXPECT_EQ(vm->state, "crashed");
    EXPECT_EQ(vm->state_reason, "killed by signal 9");
    EXPECT_EQ(vm->created_at, "2026-01-01T00:00:02Z");
    EXPECT_EQ((*inventory)->get_pool("default")->path, "/p");
    EXPECT_EQ((*inventory)->get_image("default")->root_volume, "img-default");
    EXPECT_EQ((*inventory)->get_task("t-1")->status, "succeeded");

    // The new table starts empty and works.
    EXPECT_TRUE((*inventory)->list_tokens()->empty());
    ASSERT_TRUE((*inventory)->create_token({"ci", std::string(64, 'a'), "", ""}));
    EXPECT_EQ((*inventory)->list_tokens()->size(), 1u);
}

TEST(Migrations, RefusesANewerSchemaAndLeavesItAlone) {
    testing::TestDir dir;
    const std::string path = dir.path("inv.db");
    {
        auto db = Connection::open(path);
        ASSERT_TRUE(db);
        ASSERT_TRUE(db->exec(fmt::format("PRAGMA user_version = {}", k_schema_version + 1)));
    }
    auto inventory = SqliteInventory::open(path);
    ASSERT_FALSE(inventory);
    EXPECT_THAT(inventory.error().message(),
                HasSubstr(fmt::format("inventory schema version {} is newer than this corrald (knows up to {})",
                                          k_schema_version + 1, k_schema_version)));
    EXPECT_THAT(inventory.error().message(), HasSubstr(path));

    auto db = Connection::open(path);
    ASSERT_TRUE(db);
    EXPECT_EQ(schema_version(*db).value(), k_schema_version + 1);
    EXPECT_FALSE(db->prepare("SELECT * FROM vms"));  // no table was created
}

TEST(Migrations, AFailingStepLeavesThePreviousVersion) {
    testing::TestDir dir;
    auto db = Connection::open(dir.path("inv.db"));
    ASSERT_TRUE(db);
    ASSERT_TRUE(migrate(*db, 1));
    // Sabotage: step 2 adds vms.state_reason, then creates index tasks_by_status, whose name
    // is now taken, so the step fails after its first statement.
    ASSERT_TRUE(db->exec("CREATE INDEX tasks_by_status ON pools (name)"));
    auto migrated = migrate(*db);
    ASSERT_FALSE(migrated);
    EXPECT_THAT(migrated.error().message(),
                HasSubstr("migrating the inventory schema to version 2"));
    EXPECT_EQ(schema_version(*db).value(), 1);
    EXPECT_FALSE(db->in_transaction());
    EXPECT_FALSE(db->prepare("SELECT state_reason FROM vms"));  // the ALTER was rolled back
}

TEST(Migrations, RejectsUnknownTargets) {
    testing::TestDir dir;
    auto db = Connection::open(dir.path("inv.db"));
    ASSERT_TRUE(db);
    EXPECT_FALSE(migrate(*db, k_schema_version + 1));
    EXPECT_FALSE(migrate(*db, -1));
}

TEST(Migrations, Version3TasksSurviveAndMayBeQueued) {
    testing::TestDir dir;
    const std::string path = dir.path("inv.db");
    {
        auto db = Connection::open(path);
        ASSERT_TRUE(db);
        ASSERT_TRUE(migrate(*db, 3));
        ASSERT_TRUE(db->exec("INSERT INTO tasks (kind, target, status, progress, created_at) VALUES "
                             "('vm.stop', 'web1', 'succeeded', 1, '2026-01-01T00:00:04Z');"));
        EXPECT_FALSE(db->exec("INSERT INTO tasks (kind, target, status, created_at) VALUES "
                              "('vm.start', 'web1', 'queued', '2026-01-01T00:00:05Z');"));  // v3 refused it
    }
    auto inventory = SqliteInventory::open(path);
    ASSERT_TRUE(inventory) << inventory.error().message();
    auto old = (*inventory)->get_task("t-1");
    ASSERT_TRUE(old) << old.error().message();
    EXPECT_EQ(old->kind, "vm.stop");
    EXPECT_EQ(old->status, k_task_succeeded);
    auto task = (*inventory)->create_task("vm.start", "web1");
    ASSERT_TRUE(task);
    EXPECT_EQ(task->id, "t-2");  // ids go on from where they were
    task->status = k_task_queued;
    auto queued = (*inventory)->update_task(*task);
    ASSERT_TRUE(queued) << queued.error().message();
    EXPECT_EQ(queued->status, k_task_queued);
    EXPECT_EQ(queued->finished_at, "");
}

TEST(Migrations, Version4VmsKeepTheirNicsAndGainNetworks) {
    testing::TestDir dir;
    const std::string path = dir.path("inv.db");
    {
        auto db = Connection::open(path);
        ASSERT_TRUE(db);
        ASSERT_TRUE(migrate(*db, 4));
        ASSERT_TRUE(db->exec("INSERT INTO vms (name, engine, vcpus, memory_mib, nics, state, created_at, updated_at) "
                             "VALUES ('web1', 'emulated', 1, 256, '[{\"bridge\":\"br0\",\"tap\":\"\",\"mac\":\"\"}]', "
                             "'stopped', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');"));
    }
    auto inventory = SqliteInventory::open(path);
    ASSERT_TRUE(inventory) << inventory.error().message();
    auto vm = (*inventory)->get_vm("web1");
    ASSERT_TRUE(vm) << vm.error().message();
    ASSERT_EQ(vm->nics.size(), 1u);
    EXPECT_EQ(vm->nics[0].bridge, "br0");
    EXPECT_EQ(vm->nics[0].network, "");
    EXPECT_EQ(vm->nics[0].ipv4, "");
    NetworkRecord network;
    network.name = "default";
    network.bridge = "corral0";
    network.subnet4 = "10.0.100.0/24";
    auto created = (*inventory)->create_network(network);
    ASSERT_TRUE(created) << created.error().message();
    EXPECT_EQ((*inventory)->list_networks().value().size(), 1u);
}

TEST(Migrations, Version5VmsKeepTheirNicsAndGainSecurityGroups) {
    testing::TestDir dir;
    const std::string path = dir.path("inv.db");
    {
        auto db = Connection::open(path);
        ASSERT_TRUE(db);
        ASSERT_TRUE(migrate(*db, 5));
        ASSERT_TRUE(db->exec("INSERT INTO networks (name, kind, bridge, subnet4, gateway4, dhcp_start, dhcp_end, "
                             "created_at) VALUES ('default', 'nat', 'corral0', '10.0.100.0/24', '10.0.100.1', "
                             "'10.0.100.128', '10.0.100.254', '2026-01-01T00:00:00Z');"));
        ASSERT_TRUE(db->exec("INSERT INTO vms (name, engine, vcpus, memory_mib, nics, state, created_at, updated_at) "
                             "VALUES ('web1', 'emulated', 1, 256, '[{\"bridge\":\"corral0\",\"tap\":\"\","
                             "\"mac\":\"52:54:00:00:00:01\",\"network\":\"default\",\"ipv4\":\"10.0.100.2\"}]', "
                             "'running', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');"));
    }
    auto inventory = SqliteInventory::open(path);
    ASSERT_TRUE(inventory) << inventory.error().message();
    auto vm = (*inventory)->get_vm("web1");
    ASSERT_TRUE(vm) << vm.error().message();
    ASSERT_EQ(vm->nics.size(), 1u);
    EXPECT_EQ(vm->nics[0].network, "default");
    EXPECT_EQ(vm->nics[0].ipv4, "10.0.100.2");
    EXPECT_TRUE(vm->nics[0].groups.empty());  // a NIC from before groups passes everything, as it did
    // The default group exists, OpenStack's: members reach each other.
    auto group = (*inventory)->get_security_group("default");
    ASSERT_TRUE(group) << group.error().message();
    ASSERT_EQ(group->rules.size(), 1u);
    EXPECT_EQ(group->rules[0].direction, "in");
    EXPECT_EQ(group->rules[0].protocol, "any");
    EXPECT_EQ(group->rules[0].remote_group, "default");
    EXPECT_FALSE(group->created_at.empty());
    // The migrated VM's NIC can carry a group, and the group is then in use.
    auto changed = (*inventory)->set_nic_groups("web1", 0, {"default"});
    ASSERT_TRUE(changed) << changed.error().message();
    EXPECT_EQ(changed->nics[0].groups, std::vector<std::string>{"default"});
    auto refused = (*inventory)->delete_security_group("default");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().errno_value(), EBUSY);
    EXPECT_THAT(refused.error().message(), HasSubstr("web1"));
}

TEST(Migrations, Version5VmsGainSnapshotsThatGoWithThem) {
    testing::TestDir dir;
    const std::string path = dir.path("inv.db");
    {
        auto db = Connection::open(path);
        ASSERT_TRUE(db);
        ASSERT_TRUE(migrate(*db, 5));
        ASSERT_TRUE(db->exec("INSERT INTO vms (name, engine, vcpus, memory_mib, state, created_at, updated_at) "
                             "VALUES ('web1', 'emulated', 1, 256, 'stopped', '2026-01-01T00:00:00Z', "
                             "'2026-01-01T00:00:00Z');"));
        EXPECT_FALSE(db->exec("SELECT * FROM snapshots"));  // v5 has no such table
    }
    auto inventory = SqliteInventory::open(path);
    ASSERT_TRUE(inventory) << inventory.error().message();
    ASSERT_TRUE((*inventory)->get_vm("web1"));
    SnapshotRecord snapshot;
    snapshot.vm = "web1";
    snapshot.name = "before-upgrade";
    snapshot.kind = "memory";
    snapshot.engine = "emulated";
    auto created = (*inventory)->create_snapshot(snapshot);
    ASSERT_TRUE(created) << created.error().message();
    EXPECT_EQ((*inventory)->list_snapshots("web1").value().size(), 1u);
    ASSERT_TRUE((*inventory)->delete_vm("web1"));
    EXPECT_TRUE((*inventory)->list_snapshots("").value().empty());  // they went with their VM
}

TEST(Migrations, Version8SnapshotsBecomeRootsOfTheirTree) {
    testing::TestDir dir;
    const std::string path = dir.path("inv.db");
    {
        auto db = Connection::open(path);
        ASSERT_TRUE(db);
        ASSERT_TRUE(migrate(*db, 8));
        ASSERT_TRUE(db->exec("INSERT INTO vms (name, engine, vcpus, memory_mib, state, created_at, updated_at) "
                             "VALUES ('web1', 'emulated', 1, 256, 'stopped', '2026-01-01T00:00:00Z', "
                             "'2026-01-01T00:00:00Z');"
                             "INSERT INTO snapshots (vm, name, kind, engine, status, created_at) "
                             "VALUES ('web1', 'old', 'disk', 'emulated', 'ready', '2026-01-02T00:00:00Z');"));
    }
    auto inventory = SqliteInventory::open(path);
    ASSERT_TRUE(inventory) << inventory.error().message();
    auto old = (*inventory)->get_snapshot("web1", "old");
    ASSERT_TRUE(old) << old.error().message();
    EXPECT_EQ(old->parent, "");
    EXPECT_FALSE(old->current);
    EXPECT_EQ(old->status, "ready");
}

TEST(Migrations, Version8VmsGainNoLimits) {
    testing::TestDir dir;
    const std::string path = dir.path("inv.db");
    {
        auto db = Connection::open(path);
        ASSERT_TRUE(db);
        ASSERT_TRUE(migrate(*db, 8));
        ASSERT_TRUE(db->exec("INSERT INTO vms (name, engine, vcpus, memory_mib, state, created_at, updated_at) "
                             "VALUES ('web1', 'emulated', 1, 256, 'stopped', '2026-01-01T00:00:00Z', "
                             "'2026-01-01T00:00:00Z');"));
    }
    auto inventory = SqliteInventory::open(path);
    ASSERT_TRUE(inventory) << inventory.error().message();
    auto vm = (*inventory)->get_vm("web1");
    ASSERT_TRUE(vm) << vm.error().message();
    EXPECT_EQ(vm->limits, VmLimits{});  // a VM from before limits has none, as before
}

}  // namespace
}  // namespace corral::inventory
