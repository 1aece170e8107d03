#include "storage/backup/catalogue.h"

#include <fmt/format.h>

namespace corral::storage::backup {

using inventory::Connection;
using inventory::Statement;

namespace {

constexpr const char* k_schema = R"(
CREATE TABLE IF NOT EXISTS backups (
  id TEXT PRIMARY KEY,
  vm TEXT NOT NULL,
  created INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('writing', 'complete')),
  disks INTEGER NOT NULL DEFAULT 0,
  logical_bytes INTEGER NOT NULL DEFAULT 0,
  chunks INTEGER NOT NULL DEFAULT 0,
  new_chunks INTEGER NOT NULL DEFAULT 0,
  new_bytes INTEGER NOT NULL DEFAULT 0,
  verify_state TEXT NOT NULL DEFAULT '',
  verified_at INTEGER NOT NULL DEFAULT 0,
  verify_error TEXT NOT NULL DEFAULT '',
  boot_state TEXT NOT NULL DEFAULT '',
  booted_at INTEGER NOT NULL DEFAULT 0,
  boot_seconds REAL NOT NULL DEFAULT 0,
  boot_error TEXT NOT NULL DEFAULT '',
  read_mode TEXT NOT NULL DEFAULT '',
  read_bytes INTEGER NOT NULL DEFAULT 0,
  base TEXT NOT NULL DEFAULT '',
  full_reason TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS chunk_refs (
  backup TEXT NOT NULL REFERENCES backups(id) ON DELETE CASCADE,
  chunk TEXT NOT NULL,
  PRIMARY KEY (backup, chunk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS chunk_refs_by_chunk ON chunk_refs(chunk);
)";

constexpr const char* k_columns =
    "id, vm, created, state, disks, logical_bytes, chunks, new_chunks, new_bytes, verify_state, "
    "verified_at, verify_error, boot_state, booted_at, boot_seconds, boot_error, read_mode, read_bytes, base, "
    "full_reason";

/// The schema version this code writes (PRAGMA user_version): 1 had no boot check columns
/// (catalogues made before `backup verify --boot`; their user_version is 0), 2 no read columns
/// (made before incremental backups; their backups show read_mode "").
constexpr int k_schema_version = 3;
/// Columns added after version 1, with their definitions (ALTER TABLE ADD COLUMN keeps the rows).
constexpr std::pair<const char*, const char*> k_added_columns[] = {
    {"boot_state", "TEXT NOT NULL DEFAULT ''"},
    {"booted_at", "INTEGER NOT NULL DEFAULT 0"},
    {"boot_seconds", "REAL NOT NULL DEFAULT 0"},
    {"boot_error", "TEXT NOT NULL DEFAULT ''"},
    {"read_mode", "TEXT NOT NULL DEFAULT ''"},
    {"read_bytes", "INTEGER NOT NULL DEFAULT 0"},
    {"base", "TEXT NOT NULL DEFAULT ''"},
    {"full_reason", "TEXT NOT NULL DEFAULT ''"},
};

BackupRecord read_record(const Statement& s) {
    BackupRecord r;
    r.id = s.column_text(0);
    r.vm = s.column_text(1);
    r.created = s.column_int64(2);
    r.state = s.column_text(3);
    r.disks = static_cast<uint64_t>(s.column_int64(4));
    r.logical_bytes = static_cast<uint64_t>(s.column_int64(5));
    r.chunks = static_cast<uint64_t>(s.column_int64(6));
    r.new_chunks = static_cast<uint64_t>(s.column_int64(7));
    r.new_bytes = static_cast<uint64_t>(s.column_int64(8));
    r.verify_state = s.column_text(9);
    r.verified_at = s.column_int64(10);
    r.verify_error = s.column_text(11);
    r.boot_state = s.column_text(12);
    r.booted_at = s.column_int64(13);
    r.boot_seconds = s.column_double(14);
    r.boot_error = s.column_text(15);
    r.read_mode = s.column_text(16);
    r.read_bytes = static_cast<uint64_t>(s.column_int64(17));
    r.base = s.column_text(18);
    r.full_reason = s.column_text(19);
    return r;
}

/// Runs `body` inside BEGIN IMMEDIATE ... COMMIT, rolling back when it fails.
template <typename F>
Result<void> transaction(Connection& db, F&& body) {
    TRY_VOID(db.exec("BEGIN IMMEDIATE"));
    Result<void> result = body();
    if (!result) {
        ignore_error(db.exec("ROLLBACK"), "the first error is the one to report");
        return result;
    }
    return db.exec("COMMIT");
}

/// Brings a catalogue of an older version up to k_schema_version in one transaction; a catalogue
/// that is up to date is left alone. Older corrald and corral-backup binaries keep reading it
/// (they name the columns they select).
Result<void> migrate(Connection& db) {
    int version = 0;
    {
        Statement s = TRY(db.prepare("PRAGMA user_version"));
        if (TRY(s.step()))
            version = static_cast<int>(s.column_int64(0));
    }
    if (version >= k_schema_version)
        return {};
    return transaction(db, [&]() -> Result<void> {
        std::unordered_set<std::string> have;
        {
            Statement s = TRY(db.prepare("SELECT name FROM pragma_table_info('backups')"));
            while (TRY(s.step()))
                have.insert(s.column_text(0));
        }
        for (const auto& [name, definition] : k_added_columns)
            if (!have.contains(name))
                TRY_VOID(db.exec(fmt::format("ALTER TABLE backups ADD COLUMN {} {}", name, definition)));
        return db.exec(fmt::format("PRAGMA user_version = {}", k_schema_version));
    });
}

}  // namespace

Result<Catalogue> Catalogue::open(const std::string& path) {
    Connection db = TRY(Connection::open(path));
    // Several processes (corrald, a CLI, a test) may use one repository: wait for each other.
    TRY_VOID(db.set_busy_timeout(std::chrono::seconds(30)));
    TRY_VOID(db.exec("PRAGMA foreign_keys = ON"));
    // FULL: a committed "complete" must survive a power cut, since the index it names already did.
    TRY_VOID(db.exec("PRAGMA synchronous = FULL"));
    {
        Statement wal = TRY(db.prepare("PRAGMA journal_mode = WAL"));
        TRY_VOID(wal.run());
    }
    TRY_VOID(db.exec(k_schema));
    TRY_VOID(migrate(db));
    return Catalogue(std::move(db));
}

Result<void> Catalogue::begin_backup(const std::string& id, const std::string& vm, int64_t created) {
    Statement s = TRY(m_db.prepare(
        "INSERT INTO backups (id, vm, created, state) VALUES (?1, ?2, ?3, 'writing')"));
    TRY_VOID(s.bind_all(id, vm, created));
    auto result = s.run();
    if (!result && s.failed_on_unique())
        return fail(fmt::format("backup '{}' exists already", id), EEXIST);
    return result;
}

Result<void> Catalogue::complete_backup(const std::string& id,
                                        const std::unordered_set<std::string>& chunks,
                                        const BackupTotals& totals) {
    return transaction(m_db, [&]() -> Result<void> {
        // One statement for all references: the names go in as one JSON array (chunk names are
        // hex, so joining them needs no escaping).
        std::string names = "[";
        for (const auto& chunk : chunks) {
            if (names.size() > 1)
                names += ',';
            names += '"' + chunk + '"';
        }
        names += ']';
        Statement ref = TRY(m_db.prepare(
            "INSERT INTO chunk_refs (backup, chunk) SELECT ?1, value FROM json_each(?2)"));
        TRY_VOID(ref.bind_all(id, names));
        TRY_VOID(ref.run());
        Statement done = TRY(m_db.prepare(
            "UPDATE backups SET state = 'complete', disks = ?2, logical_bytes = ?3, chunks = ?4, "
            "new_chunks = ?5, new_bytes = ?6, read_mode = ?7, read_bytes = ?8, base = ?9, full_reason = ?10 "
            "WHERE id = ?1 AND state = 'writing'"));
        TRY_VOID(done.bind_all(id, static_cast<int64_t>(totals.disks), static_cast<int64_t>(totals.logical_bytes),
                               static_cast<int64_t>(chunks.size()), static_cast<int64_t>(totals.new_chunks),
                               static_cast<int64_t>(totals.new_bytes), totals.read_mode,
                               static_cast<int64_t>(totals.read_bytes), totals.base, totals.full_reason));
        TRY_VOID(done.run());
        if (m_db.changes() != 1)
            return fail(fmt::format("backup '{}' is no longer being written (removed by gc?)", id),
                        ENOENT);
        return {};
    });
}

Result<std::vector<BackupRecord>> Catalogue::list(const std::optional<std::string>& vm) const {
    Statement s = TRY(m_db.prepare(fmt::format(
        "SELECT {} FROM backups WHERE state = 'complete' AND (?1 IS NULL OR vm = ?1) "
        // rowid: the order they were made in, for backups of the same second.
        "ORDER BY created, rowid",
        k_columns)));
    if (vm)
        TRY_VOID(s.bind_text(1, *vm));
    else
        TRY_VOID(s.bind_null(1));
    std::vector<BackupRecord> out;
    while (TRY(s.step()))
        out.push_back(read_record(s));
    return out;
}

Result<std::vector<std::string>> Catalogue::incomplete() const {
    Statement s = TRY(m_db.prepare("SELECT id FROM backups WHERE state = 'writing' ORDER BY id"));
    std::vector<std::string> out;
    while (TRY(s.step()))
        out.push_back(s.column_text(0));
    return out;
}

Result<std::optional<BackupRecord>> Catalogue::find(const std::string& id) const {
    Statement s = TRY(m_db.prepare(fmt::format("SELECT {} FROM backups WHERE id = ?1", k_columns)));
    TRY_VOID(s.bind_text(1, id));
    if (!TRY(s.step()))
        return std::optional<BackupRecord>();
    return std::optional<BackupRecord>(read_record(s));
}

Result<void> Catalogue::remove(const std::string& id) {
    return transaction(m_db, [&]() -> Result<void> {
        Statement refs = TRY(m_db.prepare("DELETE FROM chunk_refs WHERE backup = ?1"));
        TRY_VOID(refs.bind_text(1, id));
        TRY_VOID(refs.run());
        Statement row = TRY(m_db.prepare("DELETE FROM backups WHERE id = ?1"));
        TRY_VOID(row.bind_text(1, id));
        return row.run();
    });
}

Result<void> Catalogue::set_verified(const std::string& id, bool ok, int64_t at,
                                     const std::string& error) {
    Statement s = TRY(m_db.prepare(
        "UPDATE backups SET verify_state = ?2, verified_at = ?3, verify_error = ?4 WHERE id = ?1"));
    TRY_VOID(s.bind_all(id, std::string(ok ? "ok" : "bad"), at, error));
    return s.run();
}

Result<void> Catalogue::set_boot_verdict(const std::string& id, const BootVerdict& verdict) {
    Statement s =
        TRY(m_db.prepare("UPDATE backups SET boot_state = ?2, booted_at = ?3, boot_seconds = ?4, boot_error = ?5 "
                         "WHERE id = ?1"));
    TRY_VOID(
        s.bind_all(id, std::string(verdict.passed ? "passed" : "failed"), verdict.at, verdict.seconds, verdict.error));
    TRY_VOID(s.run());
    if (m_db.changes() != 1)
        return fail(fmt::format("no backup '{}' (deleted meanwhile?)", id), ENOENT);
    return {};
}

Result<std::unordered_set<std::string>> Catalogue::referenced_chunks() const {
    Statement s = TRY(m_db.prepare("SELECT DISTINCT chunk FROM chunk_refs"));
    std::unordered_set<std::string> out;
    while (TRY(s.step()))
        out.insert(s.column_text(0));
    return out;
}

}  // namespace corral::storage::backup
