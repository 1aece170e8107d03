#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "daemon/inventory/inventory.h"
#include "daemon/inventory/sqlite_connection.h"

namespace corral::inventory {

struct SqliteInventoryOptions {
    /// How long a write waits for another process's write lock on the same file.
    std::chrono::milliseconds busy_timeout{5000};
    /// The current time as ISO-8601 UTC; defaults to the system clock. Tests pin it.
    std::function<std::string()> clock;
};

/// The inventory in one SQLite file (WAL mode, foreign keys on, schema migrated on open).
///
/// Threads: one connection, serialized by a recursive mutex held for each call, and for the whole
/// of transaction(), so a transaction's function may call back into this object (or the
/// Inventory& it is given) on its own thread while other threads wait. Processes: several
/// SqliteInventory objects (or processes) may open the same file; SQLite's file locks order their
/// writes and busy_timeout bounds the wait, after which a call fails (errno 0, "database is
/// locked").
class SqliteInventory final : public Inventory {
public:
    /// Opens the database at `path`, creating it and its parent folder if missing, and brings its
    /// schema up to date. Fails if the schema is newer than this build knows.
    static Result<std::unique_ptr<SqliteInventory>> open(const std::string& path,
                                                         SqliteInventoryOptions options = {});

    SqliteInventory(const SqliteInventory&) = delete;
    SqliteInventory& operator=(const SqliteInventory&) = delete;
    ~SqliteInventory() override;

    const std::string& path() const { return m_path; }

    Result<VmRecord> create_vm(const VmRecord& vm) override;
    Result<VmRecord> get_vm(const std::string& name) override;
    Result<std::vector<VmRecord>> list_vms() override;
    Result<VmRecord> update_vm(const VmRecord& vm) override;
    Result<void> delete_vm(const std::string& name) override;
    Result<std::vector<std::string>> vms_using_volume(const std::string& pool,
                                                      const std::string& volume) override;

    Result<SnapshotRecord> create_snapshot(const SnapshotRecord& snapshot) override;
    Result<SnapshotRecord> get_snapshot(const std::string& vm, const std::string& name) override;
    Result<std::vector<SnapshotRecord>> list_snapshots(const std::string& vm) override;
    Result<SnapshotRecord> update_snapshot(const SnapshotRecord& snapshot) override;
    Result<void> set_current_snapshot(const std::string& vm, const std::string& name) override;
    Result<void> delete_snapshot(const std::string& vm, const std::string& name) override;

    Result<NetworkRecord> create_network(const NetworkRecord& network) override;
    Result<NetworkRecord> get_network(const std::string& name) override;
    Result<std::vector<NetworkRecord>> list_networks() override;
    Result<NetworkRecord> update_network(const NetworkRecord& network) override;
    Result<void> delete_network(const std::string& name) override;
    Result<std::vector<std::string>> vms_using_network(const std::string& name) override;

    Result<SecurityGroupRecord> create_security_group(const SecurityGroupRecord& group) override;
    Result<SecurityGroupRecord> get_security_group(const std::string& name) override;
    Result<std::vector<SecurityGroupRecord>> list_security_groups() override;
    Result<SecurityGroupRecord> update_security_group(const SecurityGroupRecord& group) override;
    Result<void> delete_security_group(const std::string& name) override;
    Result<std::vector<std::string>> vms_using_security_group(const std::string& name) override;
    Result<VmRecord> set_nic_groups(const std::string& vm, std::size_t nic,
                                    const std::vector<std::string>& groups) override;

    Result<PoolRecord> create_pool(const PoolRecord& pool) override;
    Result<PoolRecord> get_pool(const std::string& name) override;
    Result<std::vector<PoolRecord>> list_pools() override;
    Result<PoolRecord> update_pool(const PoolRecord& pool) override;
    Result<void> delete_pool(const std::string& name) override;

    Result<ImageRecord> create_image(const ImageRecord& image) override;
    Result<ImageRecord> get_image(const std::string& name) override;
    Result<std::vector<ImageRecord>> list_images() override;
    Result<ImageRecord> update_image(const ImageRecord& image) override;
    Result<void> delete_image(const std::string& name) override;

    Result<TaskRecord> create_task(const std::string& kind, const std::string& target) override;
    Result<TaskRecord> update_task(const TaskRecord& task) override;
    Result<TaskRecord> get_task(const std::string& id) override;
    Result<std::vector<TaskRecord>> list_tasks(std::size_t limit = SIZE_MAX) override;
    Result<std::size_t> prune_tasks(std::size_t keep_last_n) override;

    Result<TokenRecord> create_token(const TokenRecord& token) override;
    Result<std::vector<TokenRecord>> list_tokens() override;
    Result<void> delete_token(const std::string& name) override;
    Result<void> touch_token(const std::string& name) override;

    Result<void> transaction(const std::function<Result<void>(Inventory&)>& changes) override;

private:
    SqliteInventory(std::string path, Connection db, SqliteInventoryOptions options);

    /// Runs `body` in a transaction (a savepoint when one is already open). Needs m_mutex.
    Result<void> in_transaction(const std::function<Result<void>()>& body);
    std::string now() const;
    /// Replaces the reservations of network `name`. Needs m_mutex and a transaction.
    Result<void> store_reservations(const NetworkRecord& network);
    /// Reads the network in the current row of a SELECT of CORRAL_NETWORK_COLUMNS.
    Result<NetworkRecord> read_network(const Statement& row);

    /// Fills vm.nics[i].groups from nic_groups. Needs m_mutex.
    Result<void> load_nic_groups(VmRecord& vm);
    /// Replaces the groups of NIC `nic` of `vm` (no checks). Needs m_mutex and a transaction.
    Result<void> store_nic_groups(const std::string& vm, std::size_t nic, const std::vector<std::string>& groups);

    std::string m_path;
    SqliteInventoryOptions m_options;
    // Lock order: m_mutex, then SQLite's own locks. Recursive so that transaction() bodies can
    // call the public methods.
    std::recursive_mutex m_mutex;
    Connection m_db;
    int m_transaction_depth = 0;
};

}  // namespace corral::inventory
