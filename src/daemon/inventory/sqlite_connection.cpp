#include "daemon/inventory/sqlite_connection.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <limits>

namespace corral::inventory {

namespace {

Error sqlite_error(sqlite3* db, std::string_view what) {
    const char* message = db ? sqlite3_errmsg(db) : "out of memory";
    return Error(fmt::format("{}: {}", what, message));
}

}  // namespace

void Statement::Finalizer::operator()(sqlite3_stmt* stmt) const {
    sqlite3_finalize(stmt);
}

Error Statement::error(std::string_view what) const {
    return sqlite_error(m_db, what);
}

Result<void> Statement::bind_text(int index, std::string_view text) {
    if (sqlite3_bind_text64(m_stmt.get(), index, text.data(), text.size(), SQLITE_TRANSIENT,
                            SQLITE_UTF8) != SQLITE_OK)
        return fail(error(fmt::format("binding parameter {}", index)));
    return {};
}

Result<void> Statement::bind_int64(int index, std::int64_t value) {
    if (sqlite3_bind_int64(m_stmt.get(), index, value) != SQLITE_OK)
        return fail(error(fmt::format("binding parameter {}", index)));
    return {};
}

Result<void> Statement::bind_double(int index, double value) {
    if (sqlite3_bind_double(m_stmt.get(), index, value) != SQLITE_OK)
        return fail(error(fmt::format("binding parameter {}", index)));
    return {};
}

Result<void> Statement::bind_null(int index) {
    if (sqlite3_bind_null(m_stmt.get(), index) != SQLITE_OK)
        return fail(error(fmt::format("binding parameter {}", index)));
    return {};
}

Result<bool> Statement::step() {
    const int rc = sqlite3_step(m_stmt.get());
    if (rc == SQLITE_ROW)
        return true;
    if (rc == SQLITE_DONE)
        return false;
    m_error_code = sqlite3_extended_errcode(m_db);
    // Leave the statement reusable and the connection's error message intact for error().
    Error failure = error(fmt::format("running \"{}\"", sqlite3_sql(m_stmt.get())));
    sqlite3_reset(m_stmt.get());
    return fail(std::move(failure));
}

Result<void> Statement::run() {
    while (TRY(step())) {
    }
    return {};
}

std::string Statement::column_text(int column) const {
    const auto* text = sqlite3_column_text(m_stmt.get(), column);
    if (!text)
        return {};
    return std::string(reinterpret_cast<const char*>(text),
                       static_cast<std::size_t>(sqlite3_column_bytes(m_stmt.get(), column)));
}

std::int64_t Statement::column_int64(int column) const {
    return sqlite3_column_int64(m_stmt.get(), column);
}

double Statement::column_double(int column) const {
    return sqlite3_column_double(m_stmt.get(), column);
}

bool Statement::failed_on_unique() const {
    return m_error_code == SQLITE_CONSTRAINT_PRIMARYKEY || m_error_code == SQLITE_CONSTRAINT_UNIQUE;
}

bool Statement::failed_on_foreign_key() const {
    return m_error_code == SQLITE_CONSTRAINT_FOREIGNKEY;
}

void Connection::Closer::operator()(sqlite3* db) const {
    // close_v2 defers the close until any statement still alive is finalized.
    sqlite3_close_v2(db);
}

Error Connection::error(std::string_view what) const {
    return sqlite_error(m_db.get(), what);
}

Result<Connection> Connection::open(const std::string& path) {
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(
        path.c_str(), &raw,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_EXRESCODE,
        nullptr);
    Connection connection(raw);  // owns raw even when open failed
    if (rc != SQLITE_OK)
        return fail(connection.error(fmt::format("opening {}", path)));
    return connection;
}

Result<void> Connection::exec(std::string_view sql) {
    const std::string text(sql);
    if (sqlite3_exec(m_db.get(), text.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK)
        return fail(error(fmt::format("running \"{}\"", text)));
    return {};
}

Result<Statement> Connection::prepare(std::string_view sql) {
    sqlite3_stmt* raw = nullptr;
    if (sql.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
        return fail("SQL statement too long");
    if (sqlite3_prepare_v2(m_db.get(), sql.data(), static_cast<int>(sql.size()), &raw, nullptr) !=
        SQLITE_OK)
        return fail(error(fmt::format("preparing \"{}\"", sql)));
    return Statement(m_db.get(), raw);
}

Result<std::int64_t> Connection::query_int64(std::string_view sql) {
    Statement statement = TRY(prepare(sql));
    if (!TRY(statement.step()))
        return fail(fmt::format("\"{}\" returned no row", sql));
    return statement.column_int64(0);
}

Result<void> Connection::set_busy_timeout(std::chrono::milliseconds timeout) {
    if (sqlite3_busy_timeout(m_db.get(), static_cast<int>(timeout.count())) != SQLITE_OK)
        return fail(error("setting the busy timeout"));
    return {};
}

std::int64_t Connection::last_insert_rowid() const {
    return sqlite3_last_insert_rowid(m_db.get());
}

std::int64_t Connection::changes() const {
    return sqlite3_changes64(m_db.get());
}

bool Connection::in_transaction() const {
    return sqlite3_get_autocommit(m_db.get()) == 0;
}

}  // namespace corral::inventory
