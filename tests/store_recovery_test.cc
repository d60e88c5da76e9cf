// Tests of Store against real SQLite files, one fresh directory per test:
// reports from stale or ended attempts, what survives a reopen, concurrent
// writers, the on-disk format and schema version, files that are not a store
// (garbage, a foreign database, a missing directory), and a failed COMMIT
// that stops the store.

#include "coordinator/store.h"

#include <sqlite3.h>

#include <atomic>
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
  Requeue(first.id);
  const TrialRecord current = Lease(Register(), 5000);
  ASSERT_EQ(current.attempt, 2);

  const std::string trial = "trial " + std::to_string(first.id);
  auto stale = [&](const auto& result) {
    EXPECT_THAT(result, StatusIs(absl::StatusCode::kFailedPrecondition,
                                 trial + ": attempt 1 is not current (current attempt 2"));
  };
  stale(store_->RecordMetrics(first.id, 1, 0, {{"loss", 1.0}}));
  stale(store_->FinishTrial(first.id, 1, 6000));
  stale(store_->FailTrial(first.id, 1, "lost", 6000));
  EXPECT_THAT(store_->RecordMetrics(first.id, 3, 0, {{"loss", 1.0}}),
              StatusIs(absl::StatusCode::kFailedPrecondition, "attempt 3 is not current"));

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

  EXPECT_THAT(store_->RecordMetrics(pending_id, 0, 0, {{"loss", 1.0}}),
              StatusIs(absl::StatusCode::kFailedPrecondition, "state pending"));
  ASSERT_THAT(store_->FinishTrial(leased.id, 1, 3000), IsOk());
  EXPECT_THAT(store_->RecordMetrics(leased.id, 1, 0, {{"loss", 1.0}}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "attempt 1 is not running (current attempt 1, state succeeded)"));
  EXPECT_EQ(Count("metrics"), 0);
}

TEST_F(StoreTest, ReopenedStoreRecoversEverything) {
  const int64_t sweep_id = CreateSweep("s", MakeTrials(3));
  const std::string worker = Register("node-a");
  const TrialRecord done = Lease(worker);
  ASSERT_THAT(store_->RecordMetrics(done.id, 1, 0, {{"loss", 3.0}}), IsOk());
  ASSERT_THAT(store_->RecordMetrics(done.id, 1, 1, {{"loss", 2.0}}), IsOk());
  ASSERT_THAT(store_->FinishTrial(done.id, 1, 3000), IsOk());
  const TrialRecord running = Lease(worker, 4000);

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
  EXPECT_EQ(store_->GetTrial(done.id)->last_epoch, 1);

  absl::StatusOr<std::vector<EpochMetrics>> metrics = store_->TrialMetrics(done.id);
  ASSERT_THAT(metrics, IsOk());
  ASSERT_EQ(metrics->size(), 2u);
  EXPECT_EQ((*metrics)[1].metrics[0].value, 2.0);

  absl::StatusOr<std::vector<int64_t>> held = store_->RunningTrials(worker);
  ASSERT_THAT(held, IsOk());
  EXPECT_THAT(*held, ElementsAre(running.id));

  // Work goes on where it stopped.
  const TrialRecord next = Lease(worker, 5000);
  EXPECT_EQ(next.index, 2);
  EXPECT_THAT(store_->RecordMetrics(running.id, 1, 0, {{"loss", 1.0}}), IsOk());
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
  CreateSweep("s", MakeTrials(2));
  const std::string worker = Register();
  const TrialRecord a = Lease(worker);
  const TrialRecord b = Lease(worker);
  constexpr int kEpochs = 50;
  std::atomic<int> rows_written{0};

  auto report = [&](const TrialRecord& trial) {
    for (int epoch = 0; epoch < kEpochs; ++epoch) {
      absl::StatusOr<int32_t> written = store_->RecordMetrics(
          trial.id, trial.attempt, epoch,
          {{"loss", 1.0 / (epoch + 1)}, {"ncc/fine", 0.5}, {"ncc/random", 0.1}, {"cdnv", 2.0}});
      EXPECT_THAT(written, IsOk());
      rows_written += written.value_or(0);
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
  EXPECT_EQ(sql.Int("PRAGMA user_version"), 1);
  // The CHECK constraints refuse a misspelt state even from `sqlite3 DB`.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, "UPDATE trials SET state = 'done'", nullptr, nullptr, nullptr),
            SQLITE_CONSTRAINT);
  sqlite3_close(db);
}

TEST_F(StoreTest, NewerSchemaVersionIsRefused) {
  store_.reset();
  DirectSql(path_).Exec("PRAGMA user_version = 2");
  StoreOptions options;
  options.path = path_;
  EXPECT_THAT(Store::Open(options),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "schema version 2 was written by a newer sslsweep; this build reads up "
                       "to version 1"));
  EXPECT_THAT(Store::Open(options), StatusIs(absl::StatusCode::kFailedPrecondition, path_));
  EXPECT_EQ(DirectSql(path_).Int("PRAGMA user_version"), 2);  // left as it was
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
// which lets the test fail the store's COMMITs through a commit hook.
sqlite3* g_opened_connection = nullptr;
std::atomic<bool> g_fail_commits{false};

int CaptureConnection(sqlite3* db, const char**, const sqlite3_api_routines*) {
  g_opened_connection = db;
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
  absl::Status failed = store_->FinishTrial(trial.id, trial.attempt, 3000);
  g_fail_commits = false;
  EXPECT_THAT(failed, StatusIs(absl::StatusCode::kInternal, "store stopped after a failed COMMIT"));

  // Every later call, read or write, gets the same error.
  EXPECT_EQ(store_->GetSweep(sweep_id).status(), failed);
  EXPECT_EQ(store_->RecordMetrics(trial.id, trial.attempt, 0, {{"loss", 1.0}}).status(), failed);
  EXPECT_EQ(store_->FinishTrial(trial.id, trial.attempt, 3000), failed);

  // A new store recovers from the file: the refused write never happened.
  g_opened_connection = nullptr;
  Reopen();
  absl::StatusOr<TrialRecord> recovered = store_->GetTrial(trial.id);
  ASSERT_THAT(recovered, IsOk());
  EXPECT_EQ(recovered->state, TrialState::kRunning);
  EXPECT_THAT(store_->FinishTrial(trial.id, trial.attempt, 4000), IsOk());
}

}  // namespace
}  // namespace sslsweep
