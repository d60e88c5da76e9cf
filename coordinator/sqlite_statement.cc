#include "coordinator/sqlite_statement.h"

#include <sqlite3.h>

#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"

namespace sslsweep {
namespace {

absl::StatusCode CodeFor(int extended_code) {
  switch (extended_code) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
      return absl::StatusCode::kAlreadyExists;
    default:
      break;
  }
  switch (extended_code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::StatusCode::kUnavailable;  // another connection holds a lock
    case SQLITE_CONSTRAINT:
    case SQLITE_NOTADB:
    case SQLITE_CANTOPEN:
    case SQLITE_SCHEMA:
      return absl::StatusCode::kFailedPrecondition;
    case SQLITE_CORRUPT:
      return absl::StatusCode::kDataLoss;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return absl::StatusCode::kPermissionDenied;
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
      return absl::StatusCode::kInvalidArgument;
    case SQLITE_INTERRUPT:
      return absl::StatusCode::kCancelled;
    case SQLITE_ABORT:
      return absl::StatusCode::kAborted;
    default:  // SQLITE_ERROR, SQLITE_IOERR, SQLITE_MISUSE, SQLITE_RANGE, ...
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

absl::Status SqliteStatus(int code, sqlite3* db, absl::string_view context) {
  if (code == SQLITE_OK || code == SQLITE_ROW || code == SQLITE_DONE) {
    return absl::OkStatus();
  }
  // The connection's message is only about `code` if it is its last error.
  const bool db_has_message = db != nullptr && sqlite3_extended_errcode(db) == code;
  const char* message = db_has_message ? sqlite3_errmsg(db) : sqlite3_errstr(code);
  return absl::Status(CodeFor(code),
                      absl::StrCat(context, ": ", message, " (SQLite code ", code, ")"));
}

void SqliteCloser::operator()(sqlite3* db) const { sqlite3_close_v2(db); }

absl::Status ExecuteSql(sqlite3* db, const char* sql) {
  return SqliteStatus(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), db,
                      absl::StrCat("executing \"", sql, "\""));
}

absl::StatusOr<std::unique_ptr<SqliteStatement>> SqliteStatement::Prepare(
    sqlite3* db, absl::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const int code = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (code != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return SqliteStatus(code, db, absl::StrCat("preparing \"", sql, "\""));
  }
  return absl::WrapUnique(new SqliteStatement(db, stmt));
}

SqliteStatement::SqliteStatement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}

SqliteStatement::~SqliteStatement() { sqlite3_finalize(stmt_); }

absl::string_view SqliteStatement::Sql() const { return sqlite3_sql(stmt_); }

void SqliteStatement::NoteBind(int code, int index) {
  if (code != SQLITE_OK && bind_status_.ok()) {
    bind_status_ = SqliteStatus(code, db_, absl::StrCat("binding ?", index, " of \"", Sql(), "\""));
  }
}

void SqliteStatement::BindInt64(int index, int64_t value) {
  NoteBind(sqlite3_bind_int64(stmt_, index, value), index);
}

void SqliteStatement::BindDouble(int index, double value) {
  NoteBind(sqlite3_bind_double(stmt_, index, value), index);
}

void SqliteStatement::BindText(int index, absl::string_view value) {
  // A null pointer would bind SQL NULL; an empty string_view may carry one.
  const char* data = value.data() != nullptr ? value.data() : "";
  NoteBind(sqlite3_bind_text64(stmt_, index, data, value.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
           index);
}

void SqliteStatement::BindNull(int index) { NoteBind(sqlite3_bind_null(stmt_, index), index); }

absl::StatusOr<bool> SqliteStatement::Step() {
  if (!bind_status_.ok()) return bind_status_;
  const int code = sqlite3_step(stmt_);
  if (code == SQLITE_ROW) return true;
  if (code == SQLITE_DONE) return false;
  return SqliteStatus(code, db_, absl::StrCat("running \"", Sql(), "\""));
}

absl::Status SqliteStatement::ForEachRow(
    absl::FunctionRef<absl::Status(const SqliteStatement&)> row) {
  while (true) {
    absl::StatusOr<bool> more = Step();
    if (!more.ok()) return more.status();
    if (!*more) return absl::OkStatus();
    absl::Status status = row(*this);
    if (!status.ok()) return status;
  }
}

absl::StatusOr<int> SqliteStatement::Run() {
  while (true) {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return sqlite3_changes(db_);
  }
}

void SqliteStatement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_status_ = absl::OkStatus();
}

int64_t SqliteStatement::ColumnInt64(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

double SqliteStatement::ColumnDouble(int column) const {
  return sqlite3_column_double(stmt_, column);
}

std::string SqliteStatement::ColumnText(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return std::string();
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

bool SqliteStatement::ColumnIsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

ScopedStatement::ScopedStatement(SqliteStatement* statement) : statement_(statement) {}

ScopedStatement::ScopedStatement(ScopedStatement&& other) noexcept
    : statement_(std::exchange(other.statement_, nullptr)) {}

ScopedStatement::~ScopedStatement() {
  if (statement_ != nullptr) statement_->Reset();
}

StatementCache::StatementCache(sqlite3* db) : db_(db) {}

absl::StatusOr<ScopedStatement> StatementCache::Get(absl::string_view sql) {
  auto it = statements_.find(std::string(sql));
  if (it == statements_.end()) {
    absl::StatusOr<std::unique_ptr<SqliteStatement>> prepared = SqliteStatement::Prepare(db_, sql);
    if (!prepared.ok()) return prepared.status();
    it = statements_.emplace(std::string(sql), *std::move(prepared)).first;
  }
  return ScopedStatement(it->second.get());
}

}  // namespace sslsweep
