// The store's SQLite file: opening a connection with the settings the store
// relies on, and creating or migrating its schema. docs/schema.md documents
// the tables; every change to them is a new kStoreSchemaVersion with its own
// migration step in store_schema.cc.
//
// Thread contract: the functions are reentrant; the connections they return
// are not thread-safe (Store serialises the use of each).

#ifndef SSLSWEEP_COORDINATOR_STORE_SCHEMA_H_
#define SSLSWEEP_COORDINATOR_STORE_SCHEMA_H_

#include "absl/status/statusor.h"
#include "coordinator/sqlite_statement.h"
#include "coordinator/store.h"

namespace sslsweep {

// The schema version this build writes (PRAGMA user_version).
inline constexpr int kStoreSchemaVersion = 4;

// Opens or creates options.path in WAL mode with synchronous=FULL, foreign
// keys on and options.busy_timeout_ms, and migrates its schema to
// kStoreSchemaVersion (with foreign keys off, as a table rebuild needs). Every error message names the path. Fails with
// FailedPrecondition for a file written by a newer schema version (naming
// both versions), for a SQLite file that is not an sslsweep store, and for a
// file that is not a database at all.
absl::StatusOr<SqliteConnection> OpenStoreDatabase(const StoreOptions& options);

// Opens options.path read-only with options.busy_timeout_ms: the store's
// connection for reads, which in WAL mode never wait for a writer's commit.
// REQUIRES: OpenStoreDatabase succeeded on the same path. Errors name the
// path.
absl::StatusOr<SqliteConnection> OpenStoreReader(const StoreOptions& options);

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_STORE_SCHEMA_H_
