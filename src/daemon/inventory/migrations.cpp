#include "daemon/inventory/migrations.h"

#include <fmt/format.h>

#include <array>
#include <string_view>

#include "daemon/inventory/sqlite_connection.h"

namespace corral::inventory {

namespace {

// Append-only: a released step is never edited, a change is a new step. Step i brings the
// schema from version i to version i + 1.
constexpr std::array<std::string_view, k_schema_version> k_steps = {
    // v1: the tables.
    R"sql(
CREATE TABLE pools (
    name       TEXT PRIMARY KEY NOT NULL,
    driver     TEXT NOT NULL,
    path       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE images (
    name        TEXT PRIMARY KEY NOT NULL,
    pool        TEXT NOT NULL REFERENCES pools (name) ON UPDATE RESTRICT ON DELETE RESTRICT,
    kernel      TEXT NOT NULL DEFAULT '',
    initrd      TEXT NOT NULL DEFAULT '',
    root_volume TEXT NOT NULL DEFAULT '',
    cmdline     TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL
);
CREATE TABLE vms (
    name           TEXT PRIMARY KEY NOT NULL,
    engine         TEXT NOT NULL,
    vcpus          INTEGER NOT NULL,
    memory_mib     INTEGER NOT NULL,
    image          TEXT NOT NULL DEFAULT '',
    disks          TEXT NOT NULL DEFAULT '[]',
    nics           TEXT NOT NULL DEFAULT '[]',
    restart_policy TEXT NOT NULL DEFAULT 'no',
    cmdline        TEXT NOT NULL DEFAULT '',
    state          TEXT NOT NULL,
    pid            INTEGER NOT NULL DEFAULT 0,
    run_dir        TEXT NOT NULL DEFAULT '',
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE TABLE tasks (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    target      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    progress    REAL NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
    message     TEXT NOT NULL DEFAULT '',
    error       TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL DEFAULT ''
);
)sql",
    // v2: why a VM is in its state (crashed/failed), and an index for pruning finished tasks.
    R"sql(
ALTER TABLE vms ADD COLUMN state_reason TEXT NOT NULL DEFAULT '';
CREATE INDEX tasks_by_status ON tasks (status, seq);
)sql",
    // v3: API bearer tokens (only the SHA-256 of each secret).
    R"sql(
CREATE TABLE tokens (
    name         TEXT PRIMARY KEY NOT NULL,
    sha256       TEXT NOT NULL UNIQUE CHECK (length(sha256) = 64),
    created_at   TEXT NOT NULL,
    last_used_at TEXT NOT NULL DEFAULT ''
);
)sql",
    // v4: tasks may wait for a worker ('queued'). SQLite cannot change a CHECK: copy the table.
    R"sql(
CREATE TABLE tasks_v4 (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    target      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    progress    REAL NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
    message     TEXT NOT NULL DEFAULT '',
    error       TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL DEFAULT ''
);
INSERT INTO tasks_v4 (seq, kind, target, status, progress, message, error, created_at, finished_at)
    SELECT seq, kind, target, status, progress, message, error, created_at, finished_at FROM tasks;
DROP TABLE tasks;
ALTER TABLE tasks_v4 RENAME TO tasks;
CREATE INDEX tasks_by_status ON tasks (status, seq);
)sql",
    // v5: managed networks and their static DHCP reservations. A NIC's network and reserved
    // address live in its JSON object in vms.nics ("network", "ipv4"), as its other fields do.
    R"sql(
CREATE TABLE networks (
    name           TEXT PRIMARY KEY NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('nat', 'isolated', 'bridged', 'vlan')),
    bridge         TEXT NOT NULL UNIQUE,
    parent         TEXT NOT NULL DEFAULT '',
    vlan_id        INTEGER NOT NULL DEFAULT 0 CHECK (vlan_id >= 0 AND vlan_id <= 4094),
    subnet4        TEXT NOT NULL DEFAULT '',
    gateway4       TEXT NOT NULL DEFAULT '',
    dhcp_start     TEXT NOT NULL DEFAULT '',
    dhcp_end       TEXT NOT NULL DEFAULT '',
    subnet6        TEXT NOT NULL DEFAULT '',
    mtu            INTEGER NOT NULL DEFAULT 1500 CHECK (mtu >= 68 AND mtu <= 65535),
    dns_forwarders TEXT NOT NULL DEFAULT '[]',
    created_at     TEXT NOT NULL
);
CREATE TABLE reservations (
    network  TEXT NOT NULL REFERENCES networks (name) ON UPDATE CASCADE ON DELETE CASCADE,
    mac      TEXT NOT NULL,
    ipv4     TEXT NOT NULL,
    hostname TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (network, mac),
    UNIQUE (network, ipv4)
);
)sql",
    // v6: security groups (rules as JSON, as a NIC's fields are) and the groups of each NIC, in
    // their own table so that a VM's state changes (update_vm) never race a live group change.
    // The `default` group is OpenStack's: NICs carrying it reach each other, nothing else gets in.
    R"sql(
CREATE TABLE security_groups (
    name        TEXT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    rules       TEXT NOT NULL DEFAULT '[]',
    created_at  TEXT NOT NULL
);
CREATE TABLE nic_groups (
    vm         TEXT NOT NULL REFERENCES vms (name) ON UPDATE CASCADE ON DELETE CASCADE,
    nic        INTEGER NOT NULL CHECK (nic >= 0),
    position   INTEGER NOT NULL,
    group_name TEXT NOT NULL REFERENCES security_groups (name) ON UPDATE RESTRICT ON DELETE RESTRICT,
    PRIMARY KEY (vm, nic, group_name)
);
CREATE INDEX nic_groups_by_group ON nic_groups (group_name);
INSERT INTO security_groups (name, description, rules, created_at) VALUES (
    'default', 'NICs in this group reach each other; nothing else gets in; everything goes out',
    '[{"direction":"in","protocol":"any","port_from":0,"port_to":0,"remote_cidr":"","remote_group":"default"}]',
    strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
)sql",
    // v7: a VM's process start, automatic restarts and last crash (vm show); tasks may end
    // 'cancelled' (SQLite cannot change a CHECK: copy the table, as v4 did).
    R"sql(
ALTER TABLE vms ADD COLUMN started_at TEXT NOT NULL DEFAULT '';
ALTER TABLE vms ADD COLUMN restarts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vms ADD COLUMN last_crash TEXT NOT NULL DEFAULT '';
CREATE TABLE tasks_v7 (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    target      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    progress    REAL NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
    message     TEXT NOT NULL DEFAULT '',
    error       TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL DEFAULT ''
);
INSERT INTO tasks_v7 (seq, kind, target, status, progress, message, error, created_at, finished_at)
    SELECT seq, kind, target, status, progress, message, error, created_at, finished_at FROM tasks;
DROP TABLE tasks;
ALTER TABLE tasks_v7 RENAME TO tasks;
CREATE INDEX tasks_by_status ON tasks (status, seq);
)sql",
    // v8: VM snapshots; the VM's name cascades, its files are the daemon's to free.
    R"sql(
CREATE TABLE snapshots (
    vm          TEXT NOT NULL REFERENCES vms (name) ON UPDATE CASCADE ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL CHECK (kind IN ('disk', 'memory')),
    engine      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('creating', 'ready', 'incomplete')),
    dir         TEXT NOT NULL DEFAULT '',
    size_bytes  INTEGER NOT NULL DEFAULT 0 CHECK (size_bytes >= 0),
    created_at  TEXT NOT NULL,
    vcpus       INTEGER NOT NULL DEFAULT 0,
    memory_mib  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (vm, name)
);
)sql",
    // v9: snapshot trees: each snapshot knows the one the VM came from when it was taken, and one
    // snapshot per VM is current (the VM's present state descends from it). Snapshots taken before
    // stay roots.
    R"sql(
ALTER TABLE snapshots ADD COLUMN parent TEXT NOT NULL DEFAULT '';
ALTER TABLE snapshots ADD COLUMN current INTEGER NOT NULL DEFAULT 0 CHECK (current IN (0, 1));
)sql",
    // v10 (branch contention): a VM's limits and shares, as JSON (inventory::VmLimits).
    R"sql(
ALTER TABLE vms ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';
)sql",
    // v11 (branch vncd): a VM's graphical display, WIDTHxHEIGHT in pixels; 0x0 = none (the default).
    R"sql(
ALTER TABLE vms ADD COLUMN display_width INTEGER NOT NULL DEFAULT 0 CHECK (display_width >= 0);
ALTER TABLE vms ADD COLUMN display_height INTEGER NOT NULL DEFAULT 0 CHECK (display_height >= 0);
)sql",
    // v12 (branch balloonkeep): the balloon target kept with the VM, in MiB; 0 = none (deflated).
    R"sql(
ALTER TABLE vms ADD COLUMN balloon_target_mib INTEGER NOT NULL DEFAULT 0 CHECK (balloon_target_mib >= 0);
)sql",
    // v13 (branch twohost): the VM generation ID of the VM's current run ('' = none: never started
    // on the emulated engine); a live migration carries it, a start draws a new one.
    R"sql(
ALTER TABLE vms ADD COLUMN generation_id TEXT NOT NULL DEFAULT '';
)sql",
};

Result<void> too_new(int version) {
    return fail(
        fmt::format("inventory schema version {} is newer than this corrald (knows up to {})",
                    version, k_schema_version));
}

Result<void> apply_step(Connection& db, int to_version) {
    // IMMEDIATE takes the write lock first, so two processes opening a new file cannot both
    // apply the same step: the second waits, then sees the new version and skips it.
    TRY_VOID(db.exec("BEGIN IMMEDIATE"));
    auto applied = [&]() -> Result<void> {
        const int current = TRY(schema_version(db));
        if (current >= to_version)
            return {};  // another process got there first
        if (current != to_version - 1)
            return fail(fmt::format("inventory schema is at version {}, expected {}", current,
                                    to_version - 1));
        TRY_VOID(db.exec(k_steps[static_cast<std::size_t>(to_version - 1)]));
        // PRAGMA takes no bound parameters; the version is this build's own constant.
        TRY_VOID(db.exec(fmt::format("PRAGMA user_version = {}", to_version)));
        return {};
    }();
    // A failed ROLLBACK needs no handling: the step's error is the one to report, and SQLite drops
    // a transaction still open when the connection closes.
    if (!applied) {
        ignore_error(db.exec("ROLLBACK"), "the migration step's error is the one to report");
        return fail(applied.error().with_context(
            fmt::format("migrating the inventory schema to version {}", to_version)));
    }
    if (auto committed = db.exec("COMMIT"); !committed) {
        ignore_error(db.exec("ROLLBACK"), "the COMMIT's error is the one to report");
        return committed;
    }
    return {};
}

}  // namespace

Result<int> schema_version(Connection& db) {
    return static_cast<int>(TRY(db.query_int64("PRAGMA user_version")));
}

Result<void> migrate(Connection& db, int target) {
    if (target < 0 || target > k_schema_version)
        return fail(fmt::format("no inventory schema version {}", target));
    const int current = TRY(schema_version(db));
    if (current > k_schema_version)
        return too_new(current);
    for (int version = current + 1; version <= target; ++version)
        TRY_VOID(apply_step(db, version));
    // A newer corrald may have migrated the file between our first look and now.
    const int final_version = TRY(schema_version(db));
    if (final_version > k_schema_version)
        return too_new(final_version);
    return {};
}

}  // namespace corral::inventory
