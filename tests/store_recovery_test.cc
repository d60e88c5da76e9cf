// Tests of Store against real SQLite files, one fresh directory per test:
// reports from stale or ended attempts, what survives a reopen, concurrent
// writers, the on-disk format and schema version, the migration of a
// version 1 file, files that are not a store (garbage, a foreign database, a
// missing directory), and a failed COMMIT that stops the store.

#include "coordinator/store.h"

#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/store_test_util.h"

namespace sslsweep {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST_F(StoreTest, StaleAttemptIsRejectedAndWritesNothing) {
  const int64_t sweep_id = CreateSweep("s", MakeTrials(1));
  const std::string stale_worker = Register();
  const TrialRecord first = Lease(stale_worker);
  LoseLease(first);
  const TrialRecord current = Lease(Register(), first.lease_expires_ms + 5);
  ASSERT_EQ(current.attempt, 2);

  const std::string trial = "trial " + std::to_string(first.id);
  auto stale = [&](const auto& result) {
    EXPECT_THAT(result, StatusIs(absl::StatusCode::kFailedPrecondition,
                                 trial + ": attempt 1 is not current (current attempt 2"));
  };
  stale(Report(first, 0, {{"loss", 1.0}}));
  stale(store_->RecordCheckpoint(stale_worker, first.id, 1, 0));
  stale(Finish(first, 6000));
  stale(Fail(first, FailureKind::kCrash, "lost", 6000));
  stale(Fail(first, FailureKind::kReleased, "leaving", 6000));
  stale(store_->PruneTrial(first.id, 1, "pruned", 6000));
  EXPECT_THAT(store_->RecordMetrics(stale_worker, first.id, 3, 0, {{"loss", 1.0}}),
              StatusIs(absl::StatusCode::kFailedPrecondition, "attempt 3 is not current"));
  // The current attempt, but from a worker that does not hold it.
  EXPECT_THAT(store_->RecordMetrics(stale_worker, first.id, 2, 0, {{"loss", 1.0}}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       trial + ": attempt 2 is held by " + current.worker_id + ", not " +
                           stale_worker + " (current attempt 2, state running)"));

  EXPECT_EQ(Count("metrics"), 0);
  absl::StatusOr<TrialRecord> after = store_->GetTrial(first.id);
  ASSERT_THAT(after, IsOk());
  EXPECT_EQ(after->state, TrialState::kRunning);
  EXPECT_EQ(after->attempt, 2);
  EXPECT_EQ(store_->GetSweep(sweep_id)->state, SweepState::kRunning);
}

TEST_F(StoreTest, ReportsForATrialThatIsNotRunningAreRejected) {
  CreateSweep("s", MakeTrials(2));
  const TrialRecord leased = Lease(Register());
  absl::StatusOr<std::vector<TrialRecord>> trials = store_->ListTrials(leased.sweep_id);
  ASSERT_THAT(trials, IsOk());
  const int64_t pending_id = (*trials)[1].id;

  EXPECT_THAT(store_->RecordMetrics(leased.worker_id, pending_id, 0, 0, {{"loss", 1.0}}),
              StatusIs(absl::StatusCode::kFailedPrecondition, "state pending"));
  ASSERT_THAT(Finish(leased), IsOk());
  EXPECT_THAT(Report(leased, 0, {{"loss", 1.0}}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "attempt 1 is not running (current attempt 1, state succeeded)"));
  EXPECT_EQ(Count("metrics"), 0);
}

TEST_F(StoreTest, ReopenedStoreRecoversEverything) {
  const int64_t sweep_id = CreateSweep("s", MakeTrials(3));
  const std::string worker = Register("node-a");
  const TrialRecord done = Lease(worker);
  ASSERT_THAT(Report(done, 0, {{"loss", 3.0}}), IsOk());
  ASSERT_THAT(Report(done, 1, {{"loss", 2.0}}), IsOk());
  ASSERT_THAT(Finish(done), IsOk());
  const TrialRecord running = Lease(worker, 4000);
  ASSERT_THAT(store_->RecordCheckpoint(worker, running.id, running.attempt, 2), IsOk());

  Reopen();

  absl::StatusOr<SweepRecord> sweep = store_->GetSweep(sweep_id);
  ASSERT_THAT(sweep, IsOk());
  EXPECT_EQ(sweep->trial_counts[static_cast<int>(TrialState::kSucceeded)], 1);
  EXPECT_EQ(sweep->trial_counts[static_cast<int>(TrialState::kRunning)], 1);
  EXPECT_EQ(sweep->trial_counts[static_cast<int>(TrialState::kPending)], 1);

  absl::StatusOr<TrialRecord> recovered = store_->GetTrial(running.id);
  ASSERT_THAT(recovered, IsOk());
  EXPECT_EQ(recovered->state, TrialState::kRunning);
  EXPECT_EQ(recovered->attempt, 1);
  EXPECT_EQ(recovered->worker_id, worker);
  EXPECT_EQ(recovered->lease_expires_ms, 4000 + kLeaseMs);
  EXPECT_EQ(recovered->checkpoint_epoch, 2);
  EXPECT_EQ(store_->GetTrial(done.id)->last_epoch, 1);

  absl::StatusOr<std::vector<EpochMetrics>> metrics = store_->TrialMetrics(done.id);
  ASSERT_THAT(metrics, IsOk());
  ASSERT_EQ(metrics->size(), 2u);
  EXPECT_EQ((*metrics)[1].metrics[0].value, 2.0);

  EXPECT_THAT(RunningTrialsOf(worker), ElementsAre(running.id));

  // Work goes on where it stopped.
  const TrialRecord next = Lease(worker, 5000);
  EXPECT_EQ(next.index, 2);
  EXPECT_THAT(Report(running, 0, {{"loss", 1.0}}), IsOk());
}

TEST_F(StoreTest, WorkerIdsStayUniqueAcrossReopen) {
  EXPECT_EQ(Register("a"), "w-1");
  EXPECT_EQ(Register("b"), "w-2");
  Reopen();
  EXPECT_EQ(Register("c"), "w-3");

  absl::StatusOr<std::vector<WorkerRecord>> workers = store_->ListWorkers();
  ASSERT_THAT(workers, IsOk());
  ASSERT_EQ(workers->size(), 3u);
  EXPECT_EQ((*workers)[0].id, "w-1");
  EXPECT_EQ((*workers)[0].hostname, "a");
  EXPECT_EQ((*workers)[0].pid, 4242);
  EXPECT_EQ((*workers)[0].registered_at_ms, 1000);
  EXPECT_EQ((*workers)[2].hostname, "c");
}

TEST_F(StoreTest, ConcurrentMetricReportsAreAllStored) {
  constexpr int kEpochs = 50;
  CreateSweep("s", MakeTrials(2, kEpochs));
  const std::string worker = Register();
  const TrialRecord a = Lease(worker);
  const TrialRecord b = Lease(worker);
  std::atomic<int> rows_written{0};

  auto report = [&](const TrialRecord& trial) {
    for (int epoch = 0; epoch < kEpochs; ++epoch) {
      absl::StatusOr<RecordedMetrics> written = Report(
          trial, epoch,
          {{"loss", 1.0 / (epoch + 1)}, {"ncc/fine", 0.5}, {"ncc/random", 0.1}, {"cdnv", 2.0}});
      EXPECT_THAT(written, IsOk());
      rows_written += written.ok() ? written->rows_written : 0;
    }
  };
  std::thread first(report, a);
  std::thread second(report, b);
  first.join();
  second.join();

  EXPECT_EQ(rows_written.load(), 2 * kEpochs * 4);
  EXPECT_EQ(Count("metrics"), 2 * kEpochs * 4);
}

TEST_F(StoreTest, StatesAreReadableTextWithChecks) {
  CreateSweep("s", MakeTrials(1));
  DirectSql sql(path_);
  EXPECT_EQ(sql.Text("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(sql.Int("PRAGMA user_version"), 4);
  // The CHECK constraints refuse a misspelt state even from `sqlite3 DB`.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, "UPDATE trials SET state = 'done'", nullptr, nullptr, nullptr),
            SQLITE_CONSTRAINT);
  sqlite3_close(db);
}

TEST_F(StoreTest, NewerSchemaVersionIsRefused) {
  store_.reset();
  DirectSql(path_).Exec("PRAGMA user_version = 5");
  StoreOptions options;
  options.path = path_;
  EXPECT_THAT(Store::Open(options),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "schema version 5 was written by a newer sslsweep; this build reads up "
                       "to version 4"));
  EXPECT_THAT(Store::Open(options), StatusIs(absl::StatusCode::kFailedPrecondition, path_));
  EXPECT_EQ(DirectSql(path_).Int("PRAGMA user_version"), 5);  // left as it was
}

// Schema version 1 as its release wrote it. Copied, not shared with
// store_schema.cc: this is the file format users hold, whatever the code
// says now.
constexpr char kVersionOneSchema[] = R"sql(
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

// A store file as version 1 left it: two sweeps, trials in every v1 state
// (one running), parameters, attempts, metrics, two workers, and trial ids
// handed out up to 40.
constexpr char kVersionOneRows[] = R"sql(
PRAGMA application_id = 1397969751;
PRAGMA user_version = 1;
INSERT INTO sweeps VALUES (1, 'old', 'name: old', 'loss', 'minimize', 'running', 100, NULL);
INSERT INTO sweeps VALUES (2, 'gone', 'name: gone', '', '', 'cancelled', 100, 900);
INSERT INTO workers VALUES ('w-1', 1, 'node-a', 11, 100, 500);
INSERT INTO workers VALUES ('w-2', 2, 'node-b', 12, 100, 600);
INSERT INTO trials (id, sweep_id, idx, state, attempt, worker_id, epochs, config_yaml,
                    failure_reason, lease_expires_ms, created_at_ms, ended_at_ms) VALUES
  (1, 1, 0, 'succeeded', 1, 'w-1', 2, 'lr: 1', '', NULL, 100, 300),
  (2, 1, 1, 'running', 1, 'w-2', 2, 'lr: 2', '', 5000, 100, NULL),
  (3, 1, 2, 'pending', 0, NULL, 2, 'lr: 3', '', NULL, 100, NULL),
  (4, 1, 3, 'failed', 1, 'w-1', 2, 'lr: 4', 'loss is NaN', NULL, 100, 400),
  (5, 2, 0, 'cancelled', 0, NULL, 1, 'seed: 0', '', NULL, 100, 900);
UPDATE sqlite_sequence SET seq = 40 WHERE name = 'trials';
INSERT INTO trial_params VALUES (1, 'lr', '1', 0), (2, 'lr', '2', 0), (3, 'lr', '3', 0),
                                (4, 'lr', '4', 0), (5, 'seed', '0', 0), (1, 'depth', '3', 1);
INSERT INTO attempts VALUES (1, 1, 'w-1', 150, 300, 'succeeded', ''),
                            (2, 1, 'w-2', 200, NULL, NULL, ''),
                            (4, 1, 'w-1', 150, 400, 'failed', 'loss is NaN');
INSERT INTO metrics VALUES (1, 0, 'loss', 2.0, 1), (1, 1, 'loss', 1.5, 1), (2, 0, 'loss', 3.0, 1);
)sql";

// Writes a version 1 store file at `path` the way that release did (WAL).
void WriteVersionOneFile(const std::string& path, const std::string& extra_sql = "") {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  const std::string sql = std::string("PRAGMA journal_mode = WAL;") + kVersionOneSchema +
                          kVersionOneRows + extra_sql;
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << (error != nullptr ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

std::string SchemaOf(const std::string& path) {
  return DirectSql(path).Text(
      "SELECT group_concat(sql, ';\n') FROM (SELECT sql FROM sqlite_schema "
      "WHERE sql IS NOT NULL ORDER BY type, name)");
}

TEST_F(StoreTest, VersionOneFileIsMigratedKeepingEveryRow) {
  const std::string fresh_schema = SchemaOf(path_);
  store_.reset();
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + suffix);
  WriteVersionOneFile(path_);
  store_ = OpenStore();
  ASSERT_NE(store_, nullptr);

  DirectSql sql(path_);
  EXPECT_EQ(sql.Int("PRAGMA user_version"), 4);
  EXPECT_EQ(sql.Text("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(sql.Int("SELECT count(*) FROM pragma_foreign_key_check"), 0);
  EXPECT_EQ(SchemaOf(path_), fresh_schema);  // as if created at version 4
  EXPECT_EQ(sql.Int("SELECT count(*) FROM trials WHERE ranks <> 1"), 0);
  EXPECT_EQ(Count("sweeps"), 2);
  EXPECT_EQ(Count("trials"), 5);
  EXPECT_EQ(Count("trial_params"), 6);
  EXPECT_EQ(Count("attempts"), 3);
  EXPECT_EQ(Count("metrics"), 3);
  EXPECT_EQ(sql.Text("SELECT reason FROM attempts WHERE trial_id = 4"), "loss is NaN");

  absl::StatusOr<SweepRecord> sweep = store_->GetSweep(1);
  ASSERT_THAT(sweep, IsOk());
  EXPECT_EQ(sweep->max_attempts, 3);
  EXPECT_EQ(sweep->max_concurrent, 0);
  EXPECT_EQ(sweep->priority, 0);
  for (TrialState state : {TrialState::kPending, TrialState::kRunning, TrialState::kSucceeded,
                           TrialState::kFailed}) {
    EXPECT_EQ(sweep->trial_counts[static_cast<int>(state)], 1) << TrialStateName(state);
  }
  absl::StatusOr<TrialRecord> running = store_->GetTrial(2);
  ASSERT_THAT(running, IsOk());
  EXPECT_EQ(running->state, TrialState::kRunning);
  EXPECT_EQ(running->worker_id, "w-2");
  EXPECT_EQ(running->lease_expires_ms, 5000);
  EXPECT_EQ(running->failures, 0);
  EXPECT_EQ(running->checkpoint_epoch, -1);
  EXPECT_EQ(running->last_epoch, 0);
  EXPECT_EQ(store_->GetTrial(4)->failure_reason, "loss is NaN");
  EXPECT_EQ(store_->GetTrial(1)->params.size(), 2u);
  absl::StatusOr<WorkerRecord> worker = store_->GetWorker("w-2");
  ASSERT_THAT(worker, IsOk());
  EXPECT_EQ(worker->hostname, "node-b");
  EXPECT_FALSE(worker->quarantined);
  EXPECT_THAT(worker->running_trial_ids, ElementsAre(2));

  // Work goes on: the running attempt reports, version 2 states are taken,
  // and trial ids continue after the highest ever handed out.
  const TrialRecord held = *running;
  EXPECT_EQ(Report(held, 0, {{"loss", 9.0}})->rows_written, 0);
  EXPECT_EQ(Report(held, 1, {{"loss", 2.5}})->rows_written, 1);
  ASSERT_THAT(Finish(held), IsOk());
  const TrialRecord pending = Lease("w-1", 6000);
  EXPECT_EQ(pending.id, 3);
  ASSERT_THAT(store_->PruneTrial(pending.id, pending.attempt, "below the median", 7000), IsOk());
  EXPECT_EQ(store_->GetSweep(1)->state, SweepState::kFinished);
  const int64_t next_sweep = CreateSweep("new", MakeTrials(1));
  EXPECT_EQ(store_->ListTrials(next_sweep)->front().id, 41);
}

TEST_F(StoreTest, FailedMigrationLeavesTheVersionOneFile) {
  store_.reset();
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + suffix);
  // A metric of a trial that does not exist (written with foreign keys off).
  WriteVersionOneFile(path_, "INSERT INTO metrics VALUES (99, 0, 'loss', 1.0, 1);");
  StoreOptions options;
  options.path = path_;
  EXPECT_THAT(Store::Open(options),
              StatusIs(absl::StatusCode::kDataLoss,
                       "migrating to schema version 2: 1 rows reference missing parents"));
  DirectSql sql(path_);
  EXPECT_EQ(sql.Int("PRAGMA user_version"), 1);
  EXPECT_EQ(sql.Int("SELECT count(*) FROM trials"), 5);
  EXPECT_EQ(sql.Int("SELECT count(*) FROM pragma_table_info('trials') WHERE name = 'failures'"),
            0);
}

TEST_F(StoreTest, GarbageFileIsRefusedAndLeftAlone) {
  const std::string garbage = dir_ + "/notes.txt";
  const std::string content(4096, 'x');
  std::ofstream(garbage) << content;
  StoreOptions options;
  options.path = garbage;
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options);
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kFailedPrecondition, "file is not a database"));
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kFailedPrecondition, garbage));
  std::ifstream in(garbage);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), content);
}

TEST_F(StoreTest, ForeignSqliteDatabaseIsRefused) {
  const std::string foreign = dir_ + "/other.db";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(foreign.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE notes (text TEXT)", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  StoreOptions options;
  options.path = foreign;
  EXPECT_THAT(Store::Open(options),
              StatusIs(absl::StatusCode::kFailedPrecondition, "not an sslsweep store"));
}

TEST_F(StoreTest, MissingDirectoryIsAnErrorNamingThePath) {
  StoreOptions options;
  options.path = dir_ + "/no/such/dir/sweeps.db";
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options);
  EXPECT_FALSE(store.ok());
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(options.path));
}

// Fault injection: SQLite hands every new connection to the auto-extension,
// which lets the test fail the store's COMMITs through a commit hook on its
// writing connection (the store also opens one read-only).
sqlite3* g_opened_connection = nullptr;
std::atomic<bool> g_fail_commits{false};

int CaptureConnection(sqlite3* db, const char**, const sqlite3_api_routines*) {
  if (sqlite3_db_readonly(db, "main") == 0) g_opened_connection = db;
  return SQLITE_OK;
}

int FailCommitWhenArmed(void*) { return g_fail_commits.load() ? 1 : 0; }

TEST_F(StoreTest, FailedCommitStopsTheStore) {
  const int64_t sweep_id = CreateSweep("s", MakeTrials(1));
  const TrialRecord trial = Lease(Register());
  store_.reset();
  auto entry = reinterpret_cast<void (*)()>(&CaptureConnection);
  ASSERT_EQ(sqlite3_auto_extension(entry), SQLITE_OK);
  store_ = OpenStore();
  sqlite3_cancel_auto_extension(entry);
  ASSERT_NE(store_, nullptr);
  ASSERT_NE(g_opened_connection, nullptr);
  sqlite3_commit_hook(g_opened_connection, &FailCommitWhenArmed, nullptr);

  g_fail_commits = true;
  absl::Status failed = Finish(trial);
  g_fail_commits = false;
  EXPECT_THAT(failed, StatusIs(absl::StatusCode::kInternal, "store stopped after a failed COMMIT"));

  // Every later call, read or write, gets the same error.
  EXPECT_EQ(store_->GetSweep(sweep_id).status(), failed);
  EXPECT_EQ(Report(trial, 0, {{"loss", 1.0}}).status(), failed);
  EXPECT_EQ(Finish(trial), failed);
  EXPECT_EQ(store_->ListWorkers().status(), failed);

  // A new store recovers from the file: the refused write never happened.
  g_opened_connection = nullptr;
  Reopen();
  absl::StatusOr<TrialRecord> recovered = store_->GetTrial(trial.id);
  ASSERT_THAT(recovered, IsOk());
  EXPECT_EQ(recovered->state, TrialState::kRunning);
  EXPECT_THAT(Finish(trial, 4000), IsOk());
}

}  // namespace
}  // namespace sslsweep
