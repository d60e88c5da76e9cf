// SqliteStatement: a prepared SQLite statement owned RAII-style, with typed
// bind / step / column calls that report failures as absl::Status, and the
// one function that converts SQLite result codes into absl::Status.
// StatementCache prepares each SQL text once per connection and lends it out
// under a ScopedStatement that resets it when the borrower is done, so that
// no statement keeps a read transaction open between calls.
//
// Thread contract: none of these are thread-safe; the owner of the
// connection serialises every use (Store does, under its mutex).

#ifndef SSLSWEEP_COORDINATOR_SQLITE_STATEMENT_H_
#define SSLSWEEP_COORDINATOR_SQLITE_STATEMENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct sqlite3;
struct sqlite3_stmt;

namespace sslsweep {

// Converts a SQLite result code (primary or extended) into an absl::Status
// whose message is "<context>: <SQLite's message>". `db` supplies the
// detailed message of the connection's last error and may be null. Returns
// OK for SQLITE_OK, SQLITE_ROW and SQLITE_DONE.
absl::Status SqliteStatus(int code, sqlite3* db, absl::string_view context);

// Closes a connection; for std::unique_ptr.
struct SqliteCloser {
  void operator()(sqlite3* db) const;
};
using SqliteConnection = std::unique_ptr<sqlite3, SqliteCloser>;

// Runs SQL text that binds nothing and returns no rows needed by the caller
// (DDL, BEGIN / COMMIT, PRAGMA assignments); may hold several statements.
absl::Status ExecuteSql(sqlite3* db, const char* sql);

class SqliteStatement {
 public:
  // Compiles `sql` (a single statement) on `db`, which must outlive it.
  static absl::StatusOr<std::unique_ptr<SqliteStatement>> Prepare(
      sqlite3* db, absl::string_view sql);
  ~SqliteStatement();
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  // Parameters are 1-based, as in SQL's ?1. A failed bind is remembered and
  // returned by the next Step() / Run(), so callers check once.
  void BindInt64(int index, int64_t value);
  void BindDouble(int index, double value);
  void BindText(int index, absl::string_view value);
  void BindNull(int index);

  // Advances to the next row: true while a row is available, false once the
  // statement is done.
  absl::StatusOr<bool> Step();
  // Steps through every row, calling `row` on each; stops at its first error.
  absl::Status ForEachRow(absl::FunctionRef<absl::Status(const SqliteStatement&)> row);
  // Steps to completion, ignoring any rows; returns the number of rows the
  // statement inserted, updated or deleted (sqlite3_changes).
  absl::StatusOr<int> Run();
  // Makes the statement ready for a fresh execution with no bindings.
  void Reset();

  // Columns of the current row, 0-based. NULL reads as 0 or "".
  int64_t ColumnInt64(int column) const;
  double ColumnDouble(int column) const;
  std::string ColumnText(int column) const;
  bool ColumnIsNull(int column) const;

 private:
  SqliteStatement(sqlite3* db, sqlite3_stmt* stmt);
  void NoteBind(int code, int index);
  absl::string_view Sql() const;

  sqlite3* const db_;
  sqlite3_stmt* const stmt_;  // owned; finalized in the destructor
  absl::Status bind_status_;
};

// A statement lent by StatementCache; resets it when destroyed.
class ScopedStatement {
 public:
  explicit ScopedStatement(SqliteStatement* statement);
  ScopedStatement(ScopedStatement&& other) noexcept;
  ScopedStatement& operator=(ScopedStatement&&) = delete;
  ~ScopedStatement();

  SqliteStatement* operator->() const { return statement_; }

 private:
  SqliteStatement* statement_;
};

class StatementCache {
 public:
  // `db` must outlive the cache.
  explicit StatementCache(sqlite3* db);

  // Returns the statement for `sql`, compiling it on first use. At most one
  // borrower of a given SQL text at a time.
  absl::StatusOr<ScopedStatement> Get(absl::string_view sql);

 private:
  sqlite3* const db_;
  std::unordered_map<std::string, std::unique_ptr<SqliteStatement>> statements_;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_SQLITE_STATEMENT_H_
