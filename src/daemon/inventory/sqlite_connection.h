#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "base/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace corral::inventory {

/// One prepared statement, finalized on destruction. Move-only. Values go in through bind_*
/// (1-based parameter indexes, as in SQLite), never into the SQL text.
class Statement {
public:
    Statement() = default;

    Result<void> bind_text(int index, std::string_view text);
    Result<void> bind_int64(int index, std::int64_t value);
    Result<void> bind_double(int index, double value);
    Result<void> bind_null(int index);

    /// Binds the arguments to ?1, ?2, ... in order (strings, integers, doubles).
    template <typename... Args>
    Result<void> bind_all(const Args&... args) {
        int index = 0;
        Result<void> result;
        ((result = result ? bind_one(++index, args) : result), ...);
        return result;
    }

    /// Advances the statement: true when a row is ready to read, false when it has finished.
    Result<bool> step();
    /// Steps a statement that returns no rows to its end.
    Result<void> run();

    std::string column_text(int column) const;
    std::int64_t column_int64(int column) const;
    double column_double(int column) const;

    /// SQLite's extended result code of the last failed step (e.g. SQLITE_CONSTRAINT_PRIMARYKEY).
    int error_code() const { return m_error_code; }
    /// True if the last step failed on a PRIMARY KEY or UNIQUE constraint.
    bool failed_on_unique() const;
    /// True if the last step failed on a FOREIGN KEY constraint.
    bool failed_on_foreign_key() const;

private:
    friend class Connection;
    struct Finalizer {
        void operator()(sqlite3_stmt* stmt) const;
    };
    Statement(sqlite3* db, sqlite3_stmt* stmt) : m_db(db), m_stmt(stmt) {}

    template <typename T>
    Result<void> bind_one(int index, const T& value) {
        if constexpr (std::is_same_v<T, bool> || std::is_integral_v<T>) {
            return bind_int64(index, static_cast<std::int64_t>(value));
        } else if constexpr (std::is_floating_point_v<T>) {
            return bind_double(index, static_cast<double>(value));
        } else {
            return bind_text(index, std::string_view(value));
        }
    }
    Error error(std::string_view what) const;

    sqlite3* m_db = nullptr;  // not owned; the Connection outlives its statements
    std::unique_ptr<sqlite3_stmt, Finalizer> m_stmt;
    int m_error_code = 0;
};

/// One SQLite connection (sqlite3*), closed on destruction. Move-only. Not thread-safe by
/// itself: its owner serializes access (SqliteInventory holds a mutex).
class Connection {
public:
    /// Opens (creating if missing) the database file at `path`; its folder must exist.
    static Result<Connection> open(const std::string& path);

    /// Runs SQL that carries no values: schema, pragmas, BEGIN/COMMIT. Values use prepare().
    Result<void> exec(std::string_view sql);
    Result<Statement> prepare(std::string_view sql);
    /// Runs a query that returns one integer (e.g. "PRAGMA user_version").
    Result<std::int64_t> query_int64(std::string_view sql);

    Result<void> set_busy_timeout(std::chrono::milliseconds timeout);
    std::int64_t last_insert_rowid() const;
    /// Rows changed by the last INSERT/UPDATE/DELETE.
    std::int64_t changes() const;
    bool in_transaction() const;

    sqlite3* handle() const { return m_db.get(); }

private:
    struct Closer {
        void operator()(sqlite3* db) const;
    };
    explicit Connection(sqlite3* db) : m_db(db) {}
    Error error(std::string_view what) const;

    std::unique_ptr<sqlite3, Closer> m_db;
};

}  // namespace corral::inventory
