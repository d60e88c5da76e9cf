#include "coordinator/store_schema.h"

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace sslsweep {
namespace {

// PRAGMA application_id of an sslsweep store: "SSSW".
constexpr int64_t kApplicationId = 0x53535357;

absl::StatusOr<int64_t> QueryInt(sqlite3* db, const char* sql) {
  absl::StatusOr<std::unique_ptr<SqliteStatement>> statement = SqliteStatement::Prepare(db, sql);
  if (!statement.ok()) return statement.status();
  absl::StatusOr<bool> row = (*statement)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError(absl::StrCat("\"", sql, "\" returned no row"));
  return (*statement)->ColumnInt64(0);
}

// Version 1. States are readable TEXT so that `sqlite3 DB` users see them
// plainly; the CHECK constraints keep rows consistent with their state.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE sweeps (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  name          TEXT    NOT NULL,
  source_yaml   TEXT    NOT NULL,
  metric_name   TEXT    NOT NULL,
  metric_goal   TEXT    NOT NULL CHECK (metric_goal IN ('', 'minimize', 'maximize')),
  state         TEXT    NOT NULL CHECK (state IN ('running', 'finished', 'cancelled')),
  created_at_ms INTEGER NOT NULL,
  ended_at_ms   INTEGER,
  CHECK ((state = 'running') = (ended_at_ms IS NULL))
) STRICT;

CREATE TABLE workers (
  id                TEXT    PRIMARY KEY,
  number            INTEGER NOT NULL UNIQUE CHECK (number > 0),
  hostname          TEXT    NOT NULL,
  pid               INTEGER NOT NULL,
  registered_at_ms  INTEGER NOT NULL,
  last_heartbeat_ms INTEGER NOT NULL,
  CHECK (id = 'w-' || number)
) STRICT;

CREATE TABLE trials (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  sweep_id         INTEGER NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,
  idx              INTEGER NOT NULL CHECK (idx >= 0),
  state            TEXT    NOT NULL
                   CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
  attempt          INTEGER NOT NULL CHECK (attempt >= 0),
  worker_id        TEXT    REFERENCES workers (id),
  epochs           INTEGER NOT NULL CHECK (epochs >= 0),
  config_yaml      TEXT    NOT NULL,
  failure_reason   TEXT    NOT NULL DEFAULT '',
  lease_expires_ms INTEGER,
  created_at_ms    INTEGER NOT NULL,
  ended_at_ms      INTEGER,
  UNIQUE (sweep_id, idx),
  CHECK ((state = 'running') = (lease_expires_ms IS NOT NULL)),
  CHECK (state <> 'running' OR (worker_id IS NOT NULL AND attempt > 0)),
  CHECK ((state IN ('pending', 'running')) = (ended_at_ms IS NULL))
) STRICT;

-- LeaseNextTrial: the pending trial with the lowest (sweep_id, idx).
CREATE INDEX trials_pending ON trials (sweep_id, idx) WHERE state = 'pending';
-- Heartbeat and RunningTrials.
CREATE INDEX trials_running_by_worker ON trials (worker_id) WHERE state = 'running';

CREATE TABLE trial_params (
  trial_id INTEGER NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
  path     TEXT    NOT NULL CHECK (path <> ''),
  value    TEXT    NOT NULL,
  position INTEGER NOT NULL CHECK (position >= 0),
  PRIMARY KEY (trial_id, path)
) STRICT, WITHOUT ROWID;

-- Grouping and pivoting results by a swept parameter.
CREATE INDEX trial_params_by_path ON trial_params (path, value);

CREATE TABLE attempts (
  trial_id      INTEGER NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
  attempt       INTEGER NOT NULL CHECK (attempt >= 1),
  worker_id     TEXT    NOT NULL REFERENCES workers (id),
  started_at_ms INTEGER NOT NULL,
  ended_at_ms   INTEGER,
  outcome       TEXT    CHECK (outcome IN ('succeeded', 'failed', 'cancelled')),
  reason        TEXT    NOT NULL DEFAULT '',
  PRIMARY KEY (trial_id, attempt),
  CHECK ((outcome IS NULL) = (ended_at_ms IS NULL))
) STRICT, WITHOUT ROWID;

-- One row per (trial, epoch, metric), never two: the key makes a retried
-- report a no-op. The key's order serves reads by trial.
CREATE TABLE metrics (
  trial_id INTEGER NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
  epoch    INTEGER NOT NULL CHECK (epoch >= 0),
  name     TEXT    NOT NULL CHECK (name <> ''),
  value    REAL    NOT NULL,
  attempt  INTEGER NOT NULL CHECK (attempt >= 1),
  PRIMARY KEY (trial_id, epoch, name)
) STRICT, WITHOUT ROWID;
)sql";

// Version 2: retries, quarantine, priorities and early termination.
// Columns that only add go through ADD COLUMN; a changed CHECK (the new
// trial state and attempt outcomes) needs the table rebuilt, the way
// https://sqlite.org/lang_altertable.html#otheralter prescribes: foreign keys
// are off (Configure turns them on only after Migrate), the new table is
// filled, the old one dropped and the new one renamed, and
// PRAGMA foreign_key_check runs before the commit.
constexpr char kSchemaV2[] = R"sql(
ALTER TABLE sweeps ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1);
ALTER TABLE sweeps ADD COLUMN max_concurrent INTEGER NOT NULL DEFAULT 0
  CHECK (max_concurrent >= 0);
ALTER TABLE sweeps ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;

-- LeaseNextTrial walks running sweeps by (priority DESC, id).
CREATE INDEX sweeps_running_by_priority ON sweeps (priority DESC, id) WHERE state = 'running';

ALTER TABLE workers ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0
  CHECK (consecutive_failures >= 0);
ALTER TABLE workers ADD COLUMN quarantined_at_ms INTEGER;
ALTER TABLE workers ADD COLUMN quarantine_reason TEXT NOT NULL DEFAULT ''
  CHECK ((quarantined_at_ms IS NULL) = (quarantine_reason = ''));

CREATE TABLE new_trials (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  sweep_id         INTEGER NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,
  idx              INTEGER NOT NULL CHECK (idx >= 0),
  state            TEXT    NOT NULL
                   CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'cancelled',
                                    'pruned')),
  attempt          INTEGER NOT NULL CHECK (attempt >= 0),
  failures         INTEGER NOT NULL DEFAULT 0 CHECK (failures BETWEEN 0 AND attempt),
  worker_id        TEXT    REFERENCES workers (id),
  epochs           INTEGER NOT NULL CHECK (epochs >= 0),
  config_yaml      TEXT    NOT NULL,
  failure_reason   TEXT    NOT NULL DEFAULT '',
  lease_expires_ms INTEGER,
  checkpoint_epoch INTEGER CHECK (checkpoint_epoch BETWEEN 0 AND epochs),
  created_at_ms    INTEGER NOT NULL,
  ended_at_ms      INTEGER,
  UNIQUE (sweep_id, idx),
  CHECK ((state = 'running') = (lease_expires_ms IS NOT NULL)),
  CHECK (state <> 'running' OR (worker_id IS NOT NULL AND attempt > 0)),
  CHECK ((state IN ('pending', 'running')) = (ended_at_ms IS NULL))
) STRICT;

INSERT INTO new_trials (id, sweep_id, idx, state, attempt, failures, worker_id, epochs,
                        config_yaml, failure_reason, lease_expires_ms, checkpoint_epoch,
                        created_at_ms, ended_at_ms)
SELECT id, sweep_id, idx, state, attempt, 0, worker_id, epochs, config_yaml, failure_reason,
       lease_expires_ms, NULL, created_at_ms, ended_at_ms
FROM trials;

-- AUTOINCREMENT: ids stay never reused, also those above the highest row.
DELETE FROM sqlite_sequence WHERE name = 'new_trials';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'new_trials', seq FROM sqlite_sequence WHERE name = 'trials';

DROP TABLE trials;
ALTER TABLE new_trials RENAME TO trials;

-- LeaseNextTrial: a sweep's pending trial with the lowest idx.
CREATE INDEX trials_pending ON trials (sweep_id, idx) WHERE state = 'pending';
-- Heartbeat and the running trials of a worker.
CREATE INDEX trials_running_by_worker ON trials (worker_id) WHERE state = 'running';
-- LeaseNextTrial: a sweep's running trials, against its max_concurrent.
CREATE INDEX trials_running_by_sweep ON trials (sweep_id) WHERE state = 'running';
-- ExpireLeases: running trials whose lease ended.
CREATE INDEX trials_running_by_lease ON trials (lease_expires_ms) WHERE state = 'running';

CREATE TABLE new_attempts (
  trial_id           INTEGER NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
  attempt            INTEGER NOT NULL CHECK (attempt >= 1),
  worker_id          TEXT    NOT NULL REFERENCES workers (id),
  started_at_ms      INTEGER NOT NULL,
  ended_at_ms        INTEGER,
  outcome            TEXT    CHECK (outcome IN ('succeeded', 'failed', 'lost', 'released',
                                                'pruned', 'cancelled')),
  failure_kind       TEXT    CHECK (failure_kind IN ('crash', 'diverged', 'config')),
  reason             TEXT    NOT NULL DEFAULT '',
  requeued           INTEGER NOT NULL DEFAULT 0 CHECK (requeued IN (0, 1)),
  quarantined_worker INTEGER NOT NULL DEFAULT 0 CHECK (quarantined_worker IN (0, 1)),
  PRIMARY KEY (trial_id, attempt),
  CHECK ((outcome IS NULL) = (ended_at_ms IS NULL)),
  CHECK (failure_kind IS NULL OR outcome = 'failed'),
  CHECK (requeued = 0 OR outcome IN ('failed', 'lost', 'released'))
) STRICT, WITHOUT ROWID;

INSERT INTO new_attempts (trial_id, attempt, worker_id, started_at_ms, ended_at_ms, outcome,
                          reason)
SELECT trial_id, attempt, worker_id, started_at_ms, ended_at_ms, outcome, reason FROM attempts;

DROP TABLE attempts;
ALTER TABLE new_attempts RENAME TO attempts;
)sql";

// Version 3: data-parallel trials, leased as gangs. Rank 0 of an attempt is
// its trials/attempts row's worker as before; the other ranks are rows of
// attempt_ranks, each with its own lease, which a trigger ends with the
// attempt.
constexpr char kSchemaV3[] = R"sql(
ALTER TABLE trials ADD COLUMN ranks INTEGER NOT NULL DEFAULT 1 CHECK (ranks BETWEEN 1 AND 1024);

-- The last LeaseTrial of the worker that found nothing to run: a worker that
-- asked within the idle window and holds nothing may join a gang. NULL once
-- it is given a trial.
ALTER TABLE workers ADD COLUMN idle_polled_at_ms INTEGER;

-- attempts: the failure kind 'peer_lost' (a changed CHECK: rebuilt as in
-- version 2), and where rank 0's trainer listens for the other ranks (its
-- c10d TCPStore).
CREATE TABLE new_attempts (
  trial_id           INTEGER NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
  attempt            INTEGER NOT NULL CHECK (attempt >= 1),
  worker_id          TEXT    NOT NULL REFERENCES workers (id),
  started_at_ms      INTEGER NOT NULL,
  ended_at_ms        INTEGER,
  outcome            TEXT    CHECK (outcome IN ('succeeded', 'failed', 'lost', 'released',
                                                'pruned', 'cancelled')),
  failure_kind       TEXT    CHECK (failure_kind IN ('crash', 'diverged', 'config',
                                                     'peer_lost')),
  reason             TEXT    NOT NULL DEFAULT '',
  requeued           INTEGER NOT NULL DEFAULT 0 CHECK (requeued IN (0, 1)),
  quarantined_worker INTEGER NOT NULL DEFAULT 0 CHECK (quarantined_worker IN (0, 1)),
  master_address     TEXT,
  master_port        INTEGER CHECK (master_port BETWEEN 1 AND 65535),
  PRIMARY KEY (trial_id, attempt),
  CHECK ((outcome IS NULL) = (ended_at_ms IS NULL)),
  CHECK (failure_kind IS NULL OR outcome = 'failed'),
  CHECK (requeued = 0 OR outcome IN ('failed', 'lost', 'released')),
  CHECK ((master_address IS NULL) = (master_port IS NULL))
) STRICT, WITHOUT ROWID;

INSERT INTO new_attempts (trial_id, attempt, worker_id, started_at_ms, ended_at_ms, outcome,
                          failure_kind, reason, requeued, quarantined_worker)
SELECT trial_id, attempt, worker_id, started_at_ms, ended_at_ms, outcome, failure_kind, reason,
       requeued, quarantined_worker
FROM attempts;

DROP TABLE attempts;
ALTER TABLE new_attempts RENAME TO attempts;

CREATE TABLE attempt_ranks (
  trial_id         INTEGER NOT NULL,
  attempt          INTEGER NOT NULL,
  rank             INTEGER NOT NULL CHECK (rank >= 1),
  worker_id        TEXT    NOT NULL REFERENCES workers (id),
  lease_expires_ms INTEGER,  -- NULL once the attempt ended
  delivered        INTEGER NOT NULL DEFAULT 0 CHECK (delivered IN (0, 1)),
  PRIMARY KEY (trial_id, attempt, rank),
  FOREIGN KEY (trial_id, attempt) REFERENCES attempts (trial_id, attempt) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- Heartbeat, LeaseTrial: the ranks a worker holds now.
CREATE INDEX attempt_ranks_held_by_worker ON attempt_ranks (worker_id)
  WHERE lease_expires_ms IS NOT NULL;
-- ExpireLeases: ranks whose lease ended.
CREATE INDEX attempt_ranks_by_lease ON attempt_ranks (lease_expires_ms)
  WHERE lease_expires_ms IS NOT NULL;

-- However an attempt ends (finished, failed, lost, cancelled, pruned), its
-- ranks are no longer held.
CREATE TRIGGER attempt_ranks_end AFTER UPDATE OF outcome ON attempts
WHEN NEW.outcome IS NOT NULL
BEGIN
  UPDATE attempt_ranks SET lease_expires_ms = NULL
  WHERE trial_id = NEW.trial_id AND attempt = NEW.attempt AND lease_expires_ms IS NOT NULL;
END;
)sql";

// Version 4: views for the shapes that sqlite3 and pandas users query most
// (docs/schema.md, "Views"). Views only: nothing stored changes.
constexpr char kSchemaV4[] = R"sql(
-- Each trial with its swept parameters as one "path=value ..." text.
CREATE VIEW trial_overview AS
SELECT t.sweep_id, t.id AS trial_id, t.idx, t.state, t.attempt, t.failures, t.ranks,
       t.worker_id, t.failure_reason,
       (SELECT group_concat(path || '=' || value, ' ')
          FROM (SELECT path, value FROM trial_params
                WHERE trial_id = t.id ORDER BY position)) AS params
FROM trials t;

-- Every metric row, its name split into <metric>/<target>/<layer> (target
-- and layer NULL for a name of fewer than three parts, e.g. loss/total).
CREATE VIEW metric_rows AS
SELECT t.sweep_id, m.trial_id, m.epoch, m.name,
       CASE WHEN instr(m.name, '/') = 0 THEN m.name
            ELSE substr(m.name, 1, instr(m.name, '/') - 1) END AS metric,
       CASE WHEN instr(substr(m.name, instr(m.name, '/') + 1), '/') = 0 THEN NULL
            ELSE substr(substr(m.name, instr(m.name, '/') + 1), 1,
                        instr(substr(m.name, instr(m.name, '/') + 1), '/') - 1) END AS target,
       CASE WHEN instr(substr(m.name, instr(m.name, '/') + 1), '/') = 0 THEN NULL
            ELSE substr(substr(m.name, instr(m.name, '/') + 1),
                        instr(substr(m.name, instr(m.name, '/') + 1), '/') + 1) END AS layer,
       m.value, m.attempt
FROM metrics m JOIN trials t ON t.id = m.trial_id;

-- The rows of each trial's final epoch (its highest epoch with metrics).
CREATE VIEW final_metric_rows AS
SELECT r.* FROM metric_rows r
WHERE r.epoch = (SELECT max(e.epoch) FROM metrics e WHERE e.trial_id = r.trial_id);
)sql";

absl::Status MigrateToV1(sqlite3* db) { return ExecuteSql(db, kSchemaV1); }

// Runs `sql`, which rebuilds tables, inside Migrate's transaction with
// foreign keys off; the rebuilt tables must still satisfy every reference
// before it commits.
absl::Status RebuildTables(sqlite3* db, const char* sql, int from_version) {
  absl::Status status = ExecuteSql(db, sql);
  if (!status.ok()) return status;
  absl::StatusOr<int64_t> violations =
      QueryInt(db, "SELECT count(*) FROM pragma_foreign_key_check");
  if (!violations.ok()) return violations.status();
  if (*violations != 0) {
    return absl::DataLossError(absl::StrCat(
        *violations, " rows reference missing parents (PRAGMA foreign_key_check); the file "
                     "is left at version ", from_version));
  }
  return absl::OkStatus();
}

absl::Status MigrateToV2(sqlite3* db) { return RebuildTables(db, kSchemaV2, 1); }
absl::Status MigrateToV3(sqlite3* db) { return RebuildTables(db, kSchemaV3, 2); }
absl::Status MigrateToV4(sqlite3* db) { return ExecuteSql(db, kSchemaV4); }

// migration.apply takes a schema at version - 1 to `version`. A new file
// runs them all, so a new and a migrated file have the same schema.
struct Migration {
  int version;
  absl::Status (*apply)(sqlite3* db);
};

constexpr Migration kMigrations[] = {
    {1, &MigrateToV1},
    {2, &MigrateToV2},
    {3, &MigrateToV3},
    {4, &MigrateToV4},
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kStoreSchemaVersion,
              "every schema version needs its migration");

// The schema version of the file: 0 for a fresh file, an error for a file
// that some other program wrote.
absl::StatusOr<int64_t> StoreVersion(sqlite3* db) {
  absl::StatusOr<int64_t> version = QueryInt(db, "PRAGMA user_version");
  if (!version.ok()) return version.status();
  absl::StatusOr<int64_t> application_id = QueryInt(db, "PRAGMA application_id");
  if (!application_id.ok()) return application_id.status();
  absl::StatusOr<int64_t> objects = QueryInt(db, "SELECT count(*) FROM sqlite_schema");
  if (!objects.ok()) return objects.status();

  const bool fresh = *version == 0 && *application_id == 0 && *objects == 0;
  if (!fresh && *application_id != kApplicationId) {
    return absl::FailedPreconditionError(absl::StrCat(
        "not an sslsweep store: a SQLite database with application_id ", *application_id,
        " (expected ", kApplicationId, "), user_version ", *version, " and ", *objects,
        " schema objects"));
  }
  if (*version > kStoreSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "schema version ", *version, " was written by a newer sslsweep; this build reads up "
        "to version ", kStoreSchemaVersion));
  }
  return *version;
}

absl::Status SetJournalModeWal(sqlite3* db) {
  absl::StatusOr<std::unique_ptr<SqliteStatement>> statement =
      SqliteStatement::Prepare(db, "PRAGMA journal_mode = WAL");
  if (!statement.ok()) return statement.status();
  absl::StatusOr<bool> row = (*statement)->Step();
  if (!row.ok()) return row.status();
  const std::string mode = *row ? (*statement)->ColumnText(0) : "";
  if (mode != "wal") {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot use WAL journal mode (SQLite kept \"", mode, "\")"));
  }
  return absl::OkStatus();
}

absl::Status Configure(sqlite3* db) {
  absl::Status status = SetJournalModeWal(db);
  // FULL syncs the WAL at every commit: an acknowledged write survives power loss.
  if (status.ok()) status = ExecuteSql(db, "PRAGMA synchronous = FULL");
  return status;
}

absl::Status ApplyMigrations(sqlite3* db, int64_t from_version) {
  for (const Migration& migration : kMigrations) {
    if (migration.version <= from_version) continue;
    absl::Status status = migration.apply(db);
    if (!status.ok()) {
      return absl::Status(status.code(), absl::StrCat("migrating to schema version ",
                                                      migration.version, ": ", status.message()));
    }
  }
  // Our own constants, not caller data: PRAGMA values cannot be bound.
  return ExecuteSql(db, absl::StrCat("PRAGMA application_id = ", kApplicationId,
                                     "; PRAGMA user_version = ", kStoreSchemaVersion)
                            .c_str());
}

// Re-reads the version under the write lock, since another process may have
// migrated the file since we looked.
absl::Status Migrate(sqlite3* db) {
  absl::Status status = ExecuteSql(db, "BEGIN IMMEDIATE");
  if (!status.ok()) return status;
  absl::StatusOr<int64_t> version = StoreVersion(db);
  status = version.ok() ? absl::OkStatus() : version.status();
  if (status.ok() && *version < kStoreSchemaVersion) status = ApplyMigrations(db, *version);
  if (status.ok()) return ExecuteSql(db, "COMMIT");
  ExecuteSql(db, "ROLLBACK").IgnoreError();  // the first error is the one to report
  return status;
}

absl::StatusOr<SqliteConnection> OpenConnection(const StoreOptions& options, int flags) {
  sqlite3* raw = nullptr;
  const int code =
      sqlite3_open_v2(options.path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  SqliteConnection db(raw);  // sqlite3_open_v2 may allocate a handle even when it fails
  if (code != SQLITE_OK) return SqliteStatus(code, db.get(), "opening");
  sqlite3_extended_result_codes(db.get(), 1);
  absl::Status status = SqliteStatus(sqlite3_busy_timeout(db.get(), options.busy_timeout_ms),
                                     db.get(), "setting busy_timeout");
  if (!status.ok()) return status;
  return db;
}

absl::Status SetUp(sqlite3* db) {
  // Look before touching anything: a newer or foreign file stays as it was.
  absl::StatusOr<int64_t> version = StoreVersion(db);
  if (!version.ok()) return version.status();
  absl::Status status = Configure(db);
  // A migration that rebuilds a table must run with foreign keys off (they
  // cannot change inside a transaction), so they go on only afterwards.
  if (status.ok()) status = ExecuteSql(db, "PRAGMA foreign_keys = OFF");
  if (status.ok()) status = Migrate(db);
  if (status.ok()) status = ExecuteSql(db, "PRAGMA foreign_keys = ON");
  return status;
}

absl::Status NamePath(const absl::Status& status, const std::string& path) {
  return absl::Status(status.code(), absl::StrCat("store ", path, ": ", status.message()));
}

}  // namespace

absl::StatusOr<SqliteConnection> OpenStoreDatabase(const StoreOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("store path is empty");
  if (options.busy_timeout_ms < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("store busy_timeout_ms is ", options.busy_timeout_ms, "; must be >= 0"));
  }
  absl::StatusOr<SqliteConnection> db =
      OpenConnection(options, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (!db.ok()) return NamePath(db.status(), options.path);
  absl::Status status = SetUp(db->get());
  if (!status.ok()) return NamePath(status, options.path);
  return db;
}

absl::StatusOr<SqliteConnection> OpenStoreReader(const StoreOptions& options) {
  absl::StatusOr<SqliteConnection> db = OpenConnection(options, SQLITE_OPEN_READONLY);
  if (!db.ok()) return NamePath(db.status(), options.path);
  return db;
}

}  // namespace sslsweep
