#include "daemon/inventory/sqlite_inventory.h"

#include <fmt/format.h>
#include <time.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "daemon/inventory/migrations.h"
#include "daemon/inventory/vm_limits_json.h"

namespace corral::inventory {

namespace {

using nlohmann::json;

// Column lists shared by the statements below; SQL text only, values are always bound.
#define CORRAL_VM_COLUMNS                                                                   \
    "name, engine, vcpus, memory_mib, image, disks, nics, restart_policy, cmdline, state, " \
    "state_reason, pid, run_dir, created_at, updated_at, started_at, restarts, last_crash, limits, " \
    "display_width, display_height, balloon_target_mib, generation_id"
#define CORRAL_NETWORK_COLUMNS                                                                \
    "name, kind, bridge, parent, vlan_id, subnet4, gateway4, dhcp_start, dhcp_end, subnet6, mtu, " \
    "dns_forwarders, created_at"
#define CORRAL_POOL_COLUMNS "name, driver, path, created_at"
#define CORRAL_IMAGE_COLUMNS \
    "name, pool, kernel, initrd, root_volume, cmdline, description, created_at"
#define CORRAL_TOKEN_COLUMNS "name, sha256, created_at, last_used_at"
#define CORRAL_SNAPSHOT_COLUMNS \
    "vm, name, description, kind, engine, status, dir, size_bytes, created_at, vcpus, memory_mib, parent, current"
#define CORRAL_TASK_COLUMNS \
    "seq, kind, target, status, progress, message, error, created_at, finished_at"

std::string system_utc_now() {
    const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&now, &tm);
    char text[32];
    std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

std::unexpected<Error> not_found(std::string_view what, const std::string& name) {
    return fail(fmt::format("no {} named {}", what, name), ENOENT);
}

std::unexpected<Error> already_exists(std::string_view what, const std::string& name) {
    const bool vowel =
        !what.empty() && std::string_view("aeiou").find(what[0]) != std::string_view::npos;
    return fail(fmt::format("{} {} named {} already exists", vowel ? "an" : "a", what, name),
                EEXIST);
}

std::int64_t clamp_to_int64(std::size_t value) {
    constexpr auto max = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    return static_cast<std::int64_t>(value > max ? max : value);
}

std::string task_id(std::int64_t seq) {
    return fmt::format("t-{}", seq);
}

/// The N of "t-N", or nothing for anything else.
std::optional<std::int64_t> task_seq(const std::string& id) {
    if (id.size() < 3 || id.compare(0, 2, "t-") != 0)
        return std::nullopt;
    std::int64_t seq = 0;
    const char* first = id.data() + 2;
    const char* last = id.data() + id.size();
    const auto [end, ec] = std::from_chars(first, last, seq);
    if (ec != std::errc() || end != last || seq <= 0)
        return std::nullopt;
    return seq;
}

std::string disks_to_json(const std::vector<DiskRef>& disks) {
    json array = json::array();
    for (const auto& disk : disks)
        array.push_back(
            {{"pool", disk.pool}, {"volume", disk.volume}, {"readonly", disk.readonly}});
    return array.dump();
}

std::string nics_to_json(const std::vector<NicRef>& nics) {
    json array = json::array();
    for (const auto& nic : nics) {
        json item = {{"bridge", nic.bridge}, {"tap", nic.tap}, {"mac", nic.mac}};
        // Only NICs on managed networks carry these (older rows and corralds never had them).
        if (!nic.network.empty()) item["network"] = nic.network;
        if (!nic.ipv4.empty()) item["ipv4"] = nic.ipv4;
        array.push_back(std::move(item));
    }
    return array.dump();
}

/// Parses a JSON array of objects stored by this file, calling `each` per element. Missing keys
/// read as defaults (a later version may add keys; an older one may lack them).
template <typename T, typename Each>
Result<std::vector<T>> parse_array(const std::string& text, const std::string& vm,
                                   std::string_view column, Each each) {
    auto malformed = [&] {
        return fail(
            fmt::format("inventory: VM {} has a malformed {} column: {}", vm, column, text));
    };
    const json array = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (array.is_discarded() || !array.is_array())
        return malformed();
    std::vector<T> out;
    try {
        for (const auto& element : array) {
            if (!element.is_object())
                return malformed();
            out.push_back(each(element));
        }
    } catch (const json::exception&) {  // a key with the wrong type
        return malformed();
    }
    return out;
}

std::string limits_to_json(const VmLimits& limits) {
    return vm_limits_json(limits).dump();
}

Result<VmLimits> limits_from_json(const std::string& text, const std::string& vm) {
    const json object = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (object.is_discarded() || !object.is_object())
        return fail(fmt::format("VM {}: its stored limits are not a JSON object", vm));
    try {
        return vm_limits_from_json(object);
    } catch (const json::exception&) {  // a key with the wrong type
        return fail(fmt::format("VM {}: its stored limits have a value of the wrong type", vm));
    }
}

Result<void> bind_vm(Statement& statement, const VmRecord& vm) {
    return statement.bind_all(vm.name, vm.engine, static_cast<std::int64_t>(vm.vcpus),
                              vm.memory_mib, vm.image, disks_to_json(vm.disks),
                              nics_to_json(vm.nics), vm.restart_policy, vm.cmdline, vm.state,
                              vm.state_reason, vm.pid, vm.run_dir, vm.created_at, vm.updated_at,
                              vm.started_at, vm.restarts, vm.last_crash, limits_to_json(vm.limits),
                              static_cast<std::int64_t>(vm.display_width),
                              static_cast<std::int64_t>(vm.display_height), vm.balloon_target_mib, vm.generation_id);
}

Result<VmRecord> read_vm(const Statement& row) {
    VmRecord vm;
    vm.name = row.column_text(0);
    vm.engine = row.column_text(1);
    vm.vcpus = static_cast<int>(row.column_int64(2));
    vm.memory_mib = row.column_int64(3);
    vm.image = row.column_text(4);
    vm.disks = TRY(parse_array<DiskRef>(row.column_text(5), vm.name, "disks", [](const json& e) {
        return DiskRef{e.value("pool", ""), e.value("volume", ""), e.value("readonly", false)};
    }));
    vm.nics = TRY(parse_array<NicRef>(row.column_text(6), vm.name, "nics", [](const json& e) {
        return NicRef{e.value("bridge", ""), e.value("tap", ""), e.value("mac", ""), e.value("network", ""),
                      e.value("ipv4", ""), {}};
    }));
    vm.restart_policy = row.column_text(7);
    vm.cmdline = row.column_text(8);
    vm.state = row.column_text(9);
    vm.state_reason = row.column_text(10);
    vm.pid = row.column_int64(11);
    vm.run_dir = row.column_text(12);
    vm.created_at = row.column_text(13);
    vm.updated_at = row.column_text(14);
    vm.started_at = row.column_text(15);
    vm.restarts = row.column_int64(16);
    vm.last_crash = row.column_text(17);
    vm.limits = TRY(limits_from_json(row.column_text(18), vm.name));
    vm.display_width = static_cast<int>(row.column_int64(19));
    vm.display_height = static_cast<int>(row.column_int64(20));
    vm.balloon_target_mib = row.column_int64(21);
    vm.generation_id = row.column_text(22);
    return vm;
}

PoolRecord read_pool(const Statement& row) {
    return PoolRecord{row.column_text(0), row.column_text(1), row.column_text(2),
                      row.column_text(3)};
}

ImageRecord read_image(const Statement& row) {
    return ImageRecord{row.column_text(0), row.column_text(1), row.column_text(2),
                       row.column_text(3), row.column_text(4), row.column_text(5),
                       row.column_text(6), row.column_text(7)};
}

TaskRecord read_task(const Statement& row) {
    return TaskRecord{task_id(row.column_int64(0)), row.column_text(1),   row.column_text(2),
                      row.column_text(3),           row.column_double(4), row.column_text(5),
                      row.column_text(6),           row.column_text(7),   row.column_text(8)};
}

/// Runs `on_exit` when the scope ends, however it ends.
template <typename F>
class ScopeExit {
public:
    explicit ScopeExit(F on_exit) : m_on_exit(std::move(on_exit)) {}
    ScopeExit(const ScopeExit&) = delete;
    ScopeExit& operator=(const ScopeExit&) = delete;
    ~ScopeExit() { m_on_exit(); }

private:
    F m_on_exit;
};

}  // namespace

Result<std::unique_ptr<SqliteInventory>> SqliteInventory::open(const std::string& path,
                                                               SqliteInventoryOptions options) {
    const std::string context = fmt::format("opening inventory {}", path);
    const auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(parent, ec);
        if (ec)
            return fail(fmt::format("{}: creating {}: {}", context, parent.string(), ec.message()),
                        ec.value());
    }
    Connection db = TRY_CONTEXT(Connection::open(path), context);
    // The busy timeout first: the pragmas and migrations below may wait for another process.
    TRY_CONTEXT(db.set_busy_timeout(options.busy_timeout), context);
    {
        Statement journal = TRY_CONTEXT(db.prepare("PRAGMA journal_mode = WAL"), context);
        if (!TRY_CONTEXT(journal.step(), context) || journal.column_text(0) != "wal")
            return fail(fmt::format("{}: cannot use write-ahead logging (journal mode is {})",
                                    context, journal.column_text(0)));
    }
    TRY_CONTEXT(db.exec("PRAGMA foreign_keys = ON"), context);
    TRY_CONTEXT(migrate(db), context);
    return std::unique_ptr<SqliteInventory>(
        new SqliteInventory(path, std::move(db), std::move(options)));
}

SqliteInventory::SqliteInventory(std::string path, Connection db, SqliteInventoryOptions options)
    : m_path(std::move(path)), m_options(std::move(options)), m_db(std::move(db)) {}

SqliteInventory::~SqliteInventory() = default;

std::string SqliteInventory::now() const {
    return m_options.clock ? m_options.clock() : system_utc_now();
}

Result<void> SqliteInventory::in_transaction(const std::function<Result<void>()>& body) {
    const bool outermost = m_transaction_depth == 0;
    // Savepoint names are SQL identifiers made from our own counter, not from input.
    const std::string savepoint = fmt::format("corral_{}", m_transaction_depth);
    // IMMEDIATE: take the write lock now (waiting up to busy_timeout) rather than fail with
    // SQLITE_BUSY when a read turns into a write halfway through.
    TRY_VOID(m_db.exec(outermost ? std::string("BEGIN IMMEDIATE") : "SAVEPOINT " + savepoint));
    ++m_transaction_depth;
    bool open = true;
    auto undo = [&] {
        if (!open)
            return;
        open = false;
        // The body's error (or exception) is what the caller gets; an undo that fails on top of
        // it leaves the transaction open, and SQLite drops it when the connection closes.
        constexpr const char* why = "undoing a failed transaction body: its error is the one that counts";
        if (outermost) {
            ignore_error(m_db.exec("ROLLBACK"), why);
        } else {
            ignore_error(m_db.exec("ROLLBACK TO " + savepoint), why);
            ignore_error(m_db.exec("RELEASE " + savepoint), why);
        }
    };
    ScopeExit on_exit([&] {
        undo();  // only does something if the body threw
        --m_transaction_depth;
    });

    auto result = body();
    if (!result) {
        undo();
        return result;
    }
    if (outermost && !m_db.in_transaction())
        return fail("inventory: SQLite rolled the transaction back after an error");
    auto committed = m_db.exec(outermost ? std::string("COMMIT") : "RELEASE " + savepoint);
    if (!committed) {
        undo();
        return committed;
    }
    open = false;
    return {};
}

// --- VMs ---

Result<VmRecord> SqliteInventory::create_vm(const VmRecord& vm) {
    std::lock_guard lock(m_mutex);
    VmRecord stored = vm;
    stored.created_at = stored.updated_at = now();
    stored.started_at = stored.pid != 0 ? stored.created_at : "";
    Statement insert = TRY(m_db.prepare(
        "INSERT INTO vms (" CORRAL_VM_COLUMNS
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)"));
    TRY_VOID(bind_vm(insert, stored));
    TRY_VOID(in_transaction([&]() -> Result<void> {
        if (auto ran = insert.run(); !ran) {
            if (insert.failed_on_unique())
                return already_exists("VM", vm.name);
            return fail(ran.error().with_context(fmt::format("storing VM {}", vm.name)));
        }
        for (std::size_t i = 0; i < stored.nics.size(); ++i)
            TRY_VOID(store_nic_groups(stored.name, i, stored.nics[i].groups));
        return {};
    }));
    return stored;
}

Result<VmRecord> SqliteInventory::get_vm(const std::string& name) {
    std::lock_guard lock(m_mutex);
    Statement select = TRY(m_db.prepare("SELECT " CORRAL_VM_COLUMNS " FROM vms WHERE name = ?1"));
    TRY_VOID(select.bind_all(name));
    if (!TRY(select.step()))
        return not_found("VM", name);
    VmRecord vm = TRY(read_vm(select));
    TRY_VOID(load_nic_groups(vm));
    return vm;
}

Result<std::vector<VmRecord>> SqliteInventory::list_vms() {
    std::lock_guard lock(m_mutex);
    Statement select = TRY(m_db.prepare("SELECT " CORRAL_VM_COLUMNS " FROM vms ORDER BY name"));
    std::vector<VmRecord> vms;
    while (TRY(select.step()))
        vms.push_back(TRY(read_vm(select)));
    for (auto& vm : vms)
        TRY_VOID(load_nic_groups(vm));
    return vms;
}

Result<VmRecord> SqliteInventory::update_vm(const VmRecord& vm) {
    std::lock_guard lock(m_mutex);
    VmRecord stored = vm;
    stored.updated_at = now();
    // started_at follows the process: now for a new pid, none without one, else as it was.
    stored.started_at = stored.updated_at;
    Statement update = TRY(m_db.prepare(
        "UPDATE vms SET engine = ?2, vcpus = ?3, memory_mib = ?4, image = ?5, disks = ?6, "
        "nics = ?7, restart_policy = ?8, cmdline = ?9, state = ?10, state_reason = ?11, "
        "pid = ?12, run_dir = ?13, updated_at = ?15, "
        "started_at = CASE WHEN ?12 = 0 THEN '' WHEN ?12 = pid THEN started_at ELSE ?16 END, "
        "restarts = ?17, last_crash = ?18, limits = ?19, display_width = ?20, display_height = ?21, "
        "balloon_target_mib = ?22, generation_id = ?23 WHERE name = ?1 RETURNING created_at, started_at"));
    TRY_VOID(bind_vm(update, stored));  // ?14 (created_at) is bound but unused: it never changes
    TRY_VOID(in_transaction([&]() -> Result<void> {
        if (!TRY(update.step()))
            return not_found("VM", vm.name);
        stored.created_at = update.column_text(0);
        stored.started_at = update.column_text(1);
        TRY_VOID(update.run());
        // Groups are set_nic_groups()'s; only a NIC that no longer exists loses them.
        Statement trim = TRY(m_db.prepare("DELETE FROM nic_groups WHERE vm = ?1 AND nic >= ?2"));
        TRY_VOID(trim.bind_all(vm.name, clamp_to_int64(vm.nics.size())));
        return trim.run();
    }));
    TRY_VOID(load_nic_groups(stored));
    return stored;
}

Result<void> SqliteInventory::delete_vm(const std::string& name) {
    std::lock_guard lock(m_mutex);
    Statement remove = TRY(m_db.prepare("DELETE FROM vms WHERE name = ?1"));
    TRY_VOID(remove.bind_all(name));
    TRY_VOID(remove.run());
    if (m_db.changes() == 0)
        return not_found("VM", name);
    return {};
}

Result<std::vector<std::string>> SqliteInventory::vms_using_volume(const std::string& pool,
                                                                   const std::string& volume) {
    std::lock_guard lock(m_mutex);
    Statement select =
        TRY(m_db.prepare("SELECT DISTINCT vms.name FROM vms, json_each(vms.disks) AS disk "
                         "WHERE json_extract(disk.value, '$.pool') = ?1 "
                         "AND json_extract(disk.value, '$.volume') = ?2 ORDER BY vms.name"));
    TRY_VOID(select.bind_all(pool, volume));
    std::vector<std::string> names;
    while (TRY(select.step()))
        names.push_back(select.column_text(0));
    return names;
}

// --- Networks ---

Result<NetworkRecord> SqliteInventory::read_network(const Statement& row) {
    NetworkRecord network;
    network.name = row.column_text(0);
    network.kind = row.column_text(1);
    network.bridge = row.column_text(2);
    network.parent = row.column_text(3);
    network.vlan_id = static_cast<int>(row.column_int64(4));
    network.subnet4 = row.column_text(5);
    network.gateway4 = row.column_text(6);
    network.dhcp_start = row.column_text(7);
    network.dhcp_end = row.column_text(8);
    network.subnet6 = row.column_text(9);
    network.mtu = static_cast<int>(row.column_int64(10));
    const json forwarders = json::parse(row.column_text(11), nullptr, /*allow_exceptions=*/false);
    if (!forwarders.is_array())
        return fail(fmt::format("inventory: network {} has a malformed dns_forwarders column: {}",
                                network.name, row.column_text(11)));
    for (const auto& server : forwarders)
        if (server.is_string())
            network.dns_forwarders.push_back(server.get<std::string>());
    network.created_at = row.column_text(12);
    Statement reservations = TRY(m_db.prepare(
        "SELECT mac, ipv4, hostname FROM reservations WHERE network = ?1 ORDER BY ipv4, mac"));
    TRY_VOID(reservations.bind_all(network.name));
    while (TRY(reservations.step()))
        network.reservations.push_back(ReservationRecord{reservations.column_text(0),
                                                         reservations.column_text(1),
                                                         reservations.column_text(2)});
    return network;
}

Result<void> SqliteInventory::store_reservations(const NetworkRecord& network) {
    Statement remove = TRY(m_db.prepare("DELETE FROM reservations WHERE network = ?1"));
    TRY_VOID(remove.bind_all(network.name));
    TRY_VOID(remove.run());
    for (size_t i = 0; i < network.reservations.size(); ++i) {
        const auto& reservation = network.reservations[i];
        Statement insert = TRY(m_db.prepare(
            "INSERT INTO reservations (network, mac, ipv4, hostname) VALUES (?1, ?2, ?3, ?4)"));
        TRY_VOID(insert.bind_all(network.name, reservation.mac, reservation.ipv4, reservation.hostname));
        if (auto ran = insert.run(); !ran) {
            if (insert.failed_on_unique())
                return fail(fmt::format("reservations[{}]: MAC {} or address {} is reserved twice on network {}",
                                        i, reservation.mac, reservation.ipv4, network.name),
                            EEXIST);
            return ran;
        }
    }
    return {};
}

Result<NetworkRecord> SqliteInventory::create_network(const NetworkRecord& network) {
    std::lock_guard lock(m_mutex);
    NetworkRecord stored = network;
    stored.created_at = now();
    TRY_VOID(in_transaction([&]() -> Result<void> {
        Statement insert = TRY(m_db.prepare("INSERT INTO networks (" CORRAL_NETWORK_COLUMNS
                                            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"));
        TRY_VOID(insert.bind_all(stored.name, stored.kind, stored.bridge, stored.parent,
                                 static_cast<std::int64_t>(stored.vlan_id), stored.subnet4, stored.gateway4,
                                 stored.dhcp_start, stored.dhcp_end, stored.subnet6,
                                 static_cast<std::int64_t>(stored.mtu), json(stored.dns_forwarders).dump(),
                                 stored.created_at));
        if (auto ran = insert.run(); !ran) {
            if (insert.failed_on_unique()) {
                if (get_network(network.name))
                    return already_exists("network", network.name);
                return fail(fmt::format("bridge {} already belongs to another network", network.bridge), EEXIST);
            }
            return fail(ran.error().with_context(fmt::format("storing network {}", network.name)));
        }
        return store_reservations(stored);
    }));
    return stored;
}

Result<NetworkRecord> SqliteInventory::get_network(const std::string& name) {
    std::lock_guard lock(m_mutex);
    Statement select =
        TRY(m_db.prepare("SELECT " CORRAL_NETWORK_COLUMNS " FROM networks WHERE name = ?1"));
    TRY_VOID(select.bind_all(name));
    if (!TRY(select.step()))
        return not_found("network", name);
    return read_network(select);
}

Result<std::vector<NetworkRecord>> SqliteInventory::list_networks() {
    std::lock_guard lock(m_mutex);
    Statement select =
        TRY(m_db.prepare("SELECT " CORRAL_NETWORK_COLUMNS " FROM networks ORDER BY name"));
    std::vector<NetworkRecord> networks;
    while (TRY(select.step()))
        networks.push_back(TRY(read_network(select)));
    return networks;
}

Result<NetworkRecord> SqliteInventory::update_network(const NetworkRecord& network) {
    std::lock_guard lock(m_mutex);
    NetworkRecord stored = network;
    TRY_VOID(in_transaction([&]() -> Result<void> {
        Statement update = TRY(m_db.prepare(
            "UPDATE networks SET kind = ?2, bridge = ?3, parent = ?4, vlan_id = ?5, subnet4 = ?6, "
            "gateway4 = ?7, dhcp_start = ?8, dhcp_end = ?9, subnet6 = ?10, mtu = ?11, dns_forwarders = ?12 "
            "WHERE name = ?1 RETURNING created_at"));
        TRY_VOID(update.bind_all(stored.name, stored.kind, stored.bridge, stored.parent,
                                 static_cast<std::int64_t>(stored.vlan_id), stored.subnet4, stored.gateway4,
                                 stored.dhcp_start, stored.dhcp_end, stored.subnet6,
                                 static_cast<std::int64_t>(stored.mtu), json(stored.dns_forwarders).dump()));
        auto stepped = update.step();
        if (!stepped) {
            if (update.failed_on_unique())
                return fail(fmt::format("bridge {} already belongs to another network", network.bridge), EEXIST);
            return fail(stepped.error());
        }
        if (!*stepped)
            return not_found("network", network.name);
        stored.created_at = update.column_text(0);
        TRY_VOID(update.run());
        return store_reservations(stored);
    }));
    return stored;
}

Result<void> SqliteInventory::delete_network(const std::string& name) {
    std::lock_guard lock(m_mutex);
    return in_transaction([&]() -> Result<void> {
        const auto users = TRY(vms_using_network(name));
        if (!users.empty())
            return fail(fmt::format("network {} is used by VM {}", name, users.front()), EBUSY);
        Statement remove = TRY(m_db.prepare("DELETE FROM networks WHERE name = ?1"));
        TRY_VOID(remove.bind_all(name));
        TRY_VOID(remove.run());
        if (m_db.changes() == 0)
            return not_found("network", name);
        return {};
    });
}

Result<std::vector<std::string>> SqliteInventory::vms_using_network(const std::string& name) {
    std::lock_guard lock(m_mutex);
    Statement select =
        TRY(m_db.prepare("SELECT DISTINCT vms.name FROM vms, json_each(vms.nics) AS nic "
                         "WHERE json_extract(nic.value, '$.network') = ?1 ORDER BY vms.name"));
    TRY_VOID(select.bind_all(name));
    std::vector<std::string> names;
    while (TRY(select.step()))
        names.push_back(select.column_text(0));
    return names;
}

// --- Pools ---

Result<PoolRecord> SqliteInventory::create_pool(const PoolRecord& pool) {
    std::lock_guard lock(m_mutex);
    PoolRecord stored = pool;
    stored.created_at = now();
    Statement insert =
        TRY(m_db.prepare("INSERT INTO pools (" CORRAL_POOL_COLUMNS ") VALUES (?1, ?2, ?3, ?4)"));
    TRY_VOID(insert.bind_all(stored.name, stored.driver, stored.path, stored.created_at));
    if (auto ran = insert.run(); !ran) {
        if (insert.failed_on_unique())
            return already_exists("pool", pool.name);
        return fail(ran.error().with_context(fmt::format("storing pool {}", pool.name)));
    }
    return stored;
}

Result<PoolRecord> SqliteInventory::get_pool(const std::string& name) {
    std::lock_guard lock(m_mutex);
    Statement select =
        TRY(m_db.prepare("SELECT " CORRAL_POOL_COLUMNS " FROM pools WHERE name = ?1"));
    TRY_VOID(select.bind_all(name));
    if (!TRY(select.step()))
        return not_found("pool", name);
    return read_pool(select);
}

Result<std::vector<PoolRecord>> SqliteInventory::list_pools() {
    std::lock_guard lock(m_mutex);
    Statement select = TRY(m_db.prepare("SELECT " CORRAL_POOL_COLUMNS " FROM pools ORDER BY name"));
    std::vector<PoolRecord> pools;
    while (TRY(select.step()))
        pools.push_back(read_pool(select));
    return pools;
}

Result<PoolRecord> SqliteInventory::update_pool(const PoolRecord& pool) {
    std::lock_guard lock(m_mutex);
    PoolRecord stored = pool;
    Statement update = TRY(m_db.prepare(
        "UPDATE pools SET driver = ?2, path = ?3 WHERE name = ?1 RETURNING created_at"));
    TRY_VOID(update.bind_all(pool.name, pool.driver, pool.path));
    if (!TRY(update.step()))
        return not_found("pool", pool.name);
    stored.created_at = update.column_text(0);
    TRY_VOID(update.run());
    return stored;
}

Result<void> SqliteInventory::delete_pool(const std::string& name) {
    std::lock_guard lock(m_mutex);
    return in_transaction([&]() -> Result<void> {
        // Name the image that holds the pool rather than report a bare constraint failure.
        Statement images =
            TRY(m_db.prepare("SELECT name FROM images WHERE pool = ?1 ORDER BY name LIMIT 1"));
        TRY_VOID(images.bind_all(name));
        if (TRY(images.step()))
            return fail(fmt::format("pool {} is used by image {}", name, images.column_text(0)),
                        EBUSY);
        Statement remove = TRY(m_db.prepare("DELETE FROM pools WHERE name = ?1"));
        TRY_VOID(remove.bind_all(name));
        if (auto ran = remove.run(); !ran) {
            if (remove.failed_on_foreign_key())
                return fail(fmt::format("pool {} is still in use", name), EBUSY);
            return ran;
        }
        if (m_db.changes() == 0)
            return not_found("pool", name);
        return {};
    });
}

// --- Images ---

Result<ImageRecord> SqliteInventory::create_image(const ImageRecord& image) {
    std::lock_guard lock(m_mutex);
    ImageRecord stored = image;
    stored.created_at = now();
    Statement insert = TRY(m_db.prepare("INSERT INTO images (" CORRAL_IMAGE_COLUMNS
                                        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
    TRY_VOID(insert.bind_all(stored.name, stored.pool, stored.kernel, stored.initrd,
                             stored.root_volume, stored.cmdline, stored.description,
                             stored.created_at));
    if (auto ran = insert.run(); !ran) {
        if (insert.failed_on_unique())
            return already_exists("image", image.name);
        if (insert.failed_on_foreign_key())
            return not_found("pool", image.pool);
        return fail(ran.error().with_context(fmt::format("storing image {}", image.name)));
    }
    return stored;
}

Result<ImageRecord> SqliteInventory::get_image(const std::string& name) {
    std::lock_guard lock(m_mutex);
    Statement select =
        TRY(m_db.prepare("SELECT " CORRAL_IMAGE_COLUMNS " FROM images WHERE name = ?1"));
    TRY_VOID(select.bind_all(name));
    if (!TRY(select.step()))
        return not_found("image", name);
    return read_image(select);
}

Result<std::vector<ImageRecord>> SqliteInventory::list_images() {
    std::lock_guard lock(m_mutex);
    Statement select =
        TRY(m_db.prepare("SELECT " CORRAL_IMAGE_COLUMNS " FROM images ORDER BY name"));
    std::vector<ImageRecord> images;
    while (TRY(select.step()))
        images.push_back(read_image(select));
    return images;
}

Result<ImageRecord> SqliteInventory::update_image(const ImageRecord& image) {
    std::lock_guard lock(m_mutex);
    ImageRecord stored = image;
    Statement update = TRY(m_db.prepare(
        "UPDATE images SET pool = ?2, kernel = ?3, initrd = ?4, root_volume = ?5, cmdline = ?6, "
        "description = ?7 WHERE name = ?1 RETURNING created_at"));
    TRY_VOID(update.bind_all(image.name, image.pool, image.kernel, image.initrd, image.root_volume,
                             image.cmdline, image.description));
    auto stepped = update.step();
    if (!stepped) {
        if (update.failed_on_foreign_key())
            return not_found("pool", image.pool);
        return fail(stepped.error());
    }
    if (!*stepped)
        return not_found("image", image.name);
    stored.created_at = update.column_text(0);
    TRY_VOID(update.run());
    return stored;
}

Result<void> SqliteInventory::delete_image(const std::string& name) {
    std::lock_guard lock(m_mutex);
    Statement remove = TRY(m_db.prepare("DELETE FROM images WHERE name = ?1"));
    TRY_VOID(remove.bind_all(name));
    TRY_VOID(remove.run());
    if (m_db.changes() == 0)
        return not_found("image", name);
    return {};
}

// --- Tasks ---

Result<TaskRecord> SqliteInventory::create_task(const std::string& kind,
                                                const std::string& target) {
    std::lock_guard lock(m_mutex);
    TaskRecord task;
    task.kind = kind;
    task.target = target;
    task.created_at = now();
    Statement insert =
        TRY(m_db.prepare("INSERT INTO tasks (kind, target, status, progress, created_at) "
                         "VALUES (?1, ?2, ?3, 0, ?4) RETURNING seq"));
    TRY_VOID(insert.bind_all(kind, target, task.status, task.created_at));
    if (!TRY(insert.step()))
        return fail("inventory: storing a task returned no id");
    task.id = task_id(insert.column_int64(0));
    TRY_VOID(insert.run());
    return task;
}

Result<TaskRecord> SqliteInventory::update_task(const TaskRecord& task) {
    if (task.status != k_task_queued && task.status != k_task_running &&
        task.status != k_task_succeeded && task.status != k_task_failed && task.status != k_task_cancelled)
        return fail(fmt::format("task status must be queued, running, succeeded, failed or cancelled, not '{}'",
                                task.status),
                    EINVAL);
    if (!(task.progress >= 0.0 && task.progress <= 1.0))  // also rejects NaN
        return fail(fmt::format("task progress must be from 0 to 1, not {}", task.progress),
                    EINVAL);
    const auto seq = task_seq(task.id);
    if (!seq)
        return fail(fmt::format("no task {}", task.id), ENOENT);

    std::lock_guard lock(m_mutex);
    TaskRecord stored = task;
    if (stored.status != k_task_running && stored.status != k_task_queued && stored.finished_at.empty())
        stored.finished_at = now();
    Statement update = TRY(m_db.prepare(
        "UPDATE tasks SET status = ?2, progress = ?3, message = ?4, error = ?5, finished_at = ?6 "
        "WHERE seq = ?1 RETURNING kind, target, created_at"));
    TRY_VOID(update.bind_all(*seq, stored.status, stored.progress, stored.message, stored.error,
                             stored.finished_at));
    if (!TRY(update.step()))
        return fail(fmt::format("no task {}", task.id), ENOENT);
    stored.kind = update.column_text(0);
    stored.target = update.column_text(1);
    stored.created_at = update.column_text(2);
    TRY_VOID(update.run());
    return stored;
}

Result<TaskRecord> SqliteInventory::get_task(const std::string& id) {
    const auto seq = task_seq(id);
    if (!seq)
        return fail(fmt::format("no task {}", id), ENOENT);
    std::lock_guard lock(m_mutex);
    Statement select =
        TRY(m_db.prepare("SELECT " CORRAL_TASK_COLUMNS " FROM tasks WHERE seq = ?1"));
    TRY_VOID(select.bind_all(*seq));
    if (!TRY(select.step()))
        return fail(fmt::format("no task {}", id), ENOENT);
    return read_task(select);
}

Result<std::vector<TaskRecord>> SqliteInventory::list_tasks(std::size_t limit) {
    std::lock_guard lock(m_mutex);
    Statement select =
        TRY(m_db.prepare("SELECT " CORRAL_TASK_COLUMNS " FROM tasks ORDER BY seq DESC LIMIT ?1"));
    TRY_VOID(select.bind_all(clamp_to_int64(limit)));
    std::vector<TaskRecord> tasks;
    while (TRY(select.step()))
        tasks.push_back(read_task(select));
    return tasks;
}

Result<std::size_t> SqliteInventory::prune_tasks(std::size_t keep_last_n) {
    std::lock_guard lock(m_mutex);
    Statement remove =
        TRY(m_db.prepare("DELETE FROM tasks WHERE status NOT IN ('running', 'queued') AND seq NOT IN "
                         "(SELECT seq FROM tasks ORDER BY seq DESC LIMIT ?1)"));
    TRY_VOID(remove.bind_all(clamp_to_int64(keep_last_n)));
    TRY_VOID(remove.run());
    return static_cast<std::size_t>(m_db.changes());
}

// --- Snapshots ---

namespace {

SnapshotRecord read_snapshot(const Statement& row) {
    SnapshotRecord snapshot;
    snapshot.vm = row.column_text(0);
    snapshot.name = row.column_text(1);
    snapshot.description = row.column_text(2);
    snapshot.kind = row.column_text(3);
    snapshot.engine = row.column_text(4);
    snapshot.status = row.column_text(5);
    snapshot.dir = row.column_text(6);
    snapshot.size_bytes = row.column_int64(7);
    snapshot.created_at = row.column_text(8);
    snapshot.vcpus = static_cast<int>(row.column_int64(9));
    snapshot.memory_mib = row.column_int64(10);
    snapshot.parent = row.column_text(11);
    snapshot.current = row.column_int64(12) != 0;
    return snapshot;
}

}  // namespace

Result<SnapshotRecord> SqliteInventory::create_snapshot(const SnapshotRecord& snapshot) {
    std::lock_guard lock(m_mutex);
    SnapshotRecord stored = snapshot;
    stored.created_at = now();
    Statement insert = TRY(m_db.prepare("INSERT INTO snapshots (" CORRAL_SNAPSHOT_COLUMNS
                                        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 0)"));
    // A new snapshot becomes current only when it is complete (set_current_snapshot()).
    stored.current = false;
    TRY_VOID(insert.bind_all(stored.vm, stored.name, stored.description, stored.kind, stored.engine,
                             stored.status, stored.dir, stored.size_bytes, stored.created_at,
                             static_cast<std::int64_t>(stored.vcpus), stored.memory_mib, stored.parent));
    if (auto ran = insert.run(); !ran) {
        if (insert.failed_on_unique())
            return fail(fmt::format("VM {} already has a snapshot named {}", snapshot.vm, snapshot.name),
                        EEXIST);
        if (insert.failed_on_foreign_key())
            return not_found("VM", snapshot.vm);
        return fail(ran.error().with_context(fmt::format("storing snapshot {}", snapshot.name)));
    }
    return stored;
}

Result<SnapshotRecord> SqliteInventory::get_snapshot(const std::string& vm, const std::string& name) {
    std::lock_guard lock(m_mutex);
    Statement select = TRY(m_db.prepare("SELECT " CORRAL_SNAPSHOT_COLUMNS
                                        " FROM snapshots WHERE vm = ?1 AND name = ?2"));
    TRY_VOID(select.bind_all(vm, name));
    if (!TRY(select.step()))
        return fail(fmt::format("VM {} has no snapshot named {}", vm, name), ENOENT);
    return read_snapshot(select);
}

Result<std::vector<SnapshotRecord>> SqliteInventory::list_snapshots(const std::string& vm) {
    std::lock_guard lock(m_mutex);
    Statement select = TRY(m_db.prepare("SELECT " CORRAL_SNAPSHOT_COLUMNS " FROM snapshots "
                                        "WHERE ?1 = '' OR vm = ?1 ORDER BY vm, created_at, rowid"));
    TRY_VOID(select.bind_all(vm));
    std::vector<SnapshotRecord> snapshots;
    while (TRY(select.step()))
        snapshots.push_back(read_snapshot(select));
    return snapshots;
}

Result<SnapshotRecord> SqliteInventory::update_snapshot(const SnapshotRecord& snapshot) {
    std::lock_guard lock(m_mutex);
    Statement update = TRY(m_db.prepare("UPDATE snapshots SET description = ?3, status = ?4, dir = ?5, "
                                        "size_bytes = ?6 WHERE vm = ?1 AND name = ?2"));
    TRY_VOID(update.bind_all(snapshot.vm, snapshot.name, snapshot.description, snapshot.status, snapshot.dir,
                             snapshot.size_bytes));
    if (auto ran = update.run(); !ran)
        return fail(ran.error().with_context(fmt::format("storing snapshot {}", snapshot.name)));
    if (m_db.changes() == 0)
        return fail(fmt::format("VM {} has no snapshot named {}", snapshot.vm, snapshot.name), ENOENT);
    return get_snapshot(snapshot.vm, snapshot.name);
}

Result<void> SqliteInventory::set_current_snapshot(const std::string& vm, const std::string& name) {
    std::lock_guard lock(m_mutex);
    return in_transaction([&]() -> Result<void> {
        if (!name.empty()) {
            Statement exists = TRY(m_db.prepare("SELECT 1 FROM snapshots WHERE vm = ?1 AND name = ?2"));
            TRY_VOID(exists.bind_all(vm, name));
            if (!TRY(exists.step())) return fail(fmt::format("VM {} has no snapshot named {}", vm, name), ENOENT);
        }
        Statement mark = TRY(m_db.prepare("UPDATE snapshots SET current = (name = ?2) WHERE vm = ?1"));
        TRY_VOID(mark.bind_all(vm, name));
        return mark.run();
    });
}

Result<void> SqliteInventory::delete_snapshot(const std::string& vm, const std::string& name) {
    std::lock_guard lock(m_mutex);
    return in_transaction([&]() -> Result<void> {
        Statement select = TRY(m_db.prepare("SELECT parent, current FROM snapshots WHERE vm = ?1 AND name = ?2"));
        TRY_VOID(select.bind_all(vm, name));
        if (!TRY(select.step())) return fail(fmt::format("VM {} has no snapshot named {}", vm, name), ENOENT);
        const std::string parent = select.column_text(0);
        const bool current = select.column_int64(1) != 0;
        Statement adopt = TRY(m_db.prepare("UPDATE snapshots SET parent = ?3 WHERE vm = ?1 AND parent = ?2"));
        TRY_VOID(adopt.bind_all(vm, name, parent));
        TRY_VOID(adopt.run());
        if (current && !parent.empty()) {
            Statement inherit = TRY(m_db.prepare("UPDATE snapshots SET current = 1 WHERE vm = ?1 AND name = ?2"));
            TRY_VOID(inherit.bind_all(vm, parent));
            TRY_VOID(inherit.run());
        }
        Statement remove = TRY(m_db.prepare("DELETE FROM snapshots WHERE vm = ?1 AND name = ?2"));
        TRY_VOID(remove.bind_all(vm, name));
        return remove.run();
    });
}

// --- Tokens ---

Result<TokenRecord> SqliteInventory::create_token(const TokenRecord& token) {
    std::lock_guard lock(m_mutex);
    TokenRecord stored = token;
    stored.created_at = now();
    stored.last_used_at.clear();
    Statement insert = TRY(m_db.prepare("INSERT INTO tokens (" CORRAL_TOKEN_COLUMNS
                                        ") VALUES (?1, ?2, ?3, ?4)"));
    TRY_VOID(insert.bind_all(stored.name, stored.sha256, stored.created_at, stored.last_used_at));
    if (auto ran = insert.run(); !ran) {
        // Only the name can collide in practice: the hash is of 32 random bytes.
        if (insert.failed_on_unique())
            return already_exists("token", token.name);
        return fail(ran.error().with_context(fmt::format("storing token {}", token.name)));
    }
    return stored;
}

Result<std::vector<TokenRecord>> SqliteInventory::list_tokens() {
    std::lock_guard lock(m_mutex);
    Statement select =
        TRY(m_db.prepare("SELECT " CORRAL_TOKEN_COLUMNS " FROM tokens ORDER BY name"));
    std::vector<TokenRecord> tokens;
    while (TRY(select.step()))
        tokens.push_back(TokenRecord{select.column_text(0), select.column_text(1),
                                     select.column_text(2), select.column_text(3)});
    return tokens;
}

Result<void> SqliteInventory::delete_token(const std::string& name) {
    std::lock_guard lock(m_mutex);
    Statement remove = TRY(m_db.prepare("DELETE FROM tokens WHERE name = ?1"));
    TRY_VOID(remove.bind_all(name));
    TRY_VOID(remove.run());
    if (m_db.changes() == 0)
        return not_found("token", name);
    return {};
}

Result<void> SqliteInventory::touch_token(const std::string& name) {
    std::lock_guard lock(m_mutex);
    Statement update = TRY(m_db.prepare("UPDATE tokens SET last_used_at = ?2 WHERE name = ?1"));
    TRY_VOID(update.bind_all(name, now()));
    TRY_VOID(update.run());
    if (m_db.changes() == 0)
        return not_found("token", name);
    return {};
}

Result<void> SqliteInventory::transaction(const std::function<Result<void>(Inventory&)>& changes) {
    std::lock_guard lock(m_mutex);
    return in_transaction([&] { return changes(*this); });
}

}  // namespace corral::inventory
