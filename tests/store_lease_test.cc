// Tests of the Store's scheduling and fault tolerance against real SQLite
// files: priorities and max_concurrent, expired and renewed leases, retries
// up to max_attempts, failure kinds and retried reports of them,
// quarantine, exactly-once metrics across attempts, cancelling one trial,
// and group commit under concurrent writers. Time is the `now_ms` the tests
// pass; nothing sleeps.

#include "coordinator/store.h"

#include <sqlite3.h>

#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/store_test_util.h"

namespace sslsweep {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

// Scheduling and fault tolerance, with the helpers of StoreTest.
class StoreLeaseTest : public StoreTest {};

TEST_F(StoreLeaseTest, LeasesByPriorityThenSweepThenIndex) {
  const int64_t low = CreateSweepWith("low", 1, 0);
  const int64_t high = CreateSweepWith("high", 2, 5);
  const int64_t high_later = CreateSweepWith("high-later", 1, 5);
  const int64_t negative = CreateSweepWith("negative", 1, -1);
  const std::string worker = Register();

  std::vector<std::pair<int64_t, int32_t>> order;
  while (std::optional<TrialRecord> trial = TryLease(worker)) {
    order.emplace_back(trial->sweep_id, trial->index);
  }
  EXPECT_THAT(order, ElementsAre(Pair(high, 0), Pair(high, 1), Pair(high_later, 0),
                                 Pair(low, 0), Pair(negative, 0)));
}

TEST_F(StoreLeaseTest, MaxConcurrentCapsEachSweepsRunningTrials) {
  const int64_t capped = CreateSweepWith("capped", 4, 1, /*max_concurrent=*/2);
  const int64_t other = CreateSweepWith("other", 1, 0);
  const std::string worker = Register();

  const TrialRecord first = Lease(worker);
  const TrialRecord second = Lease(worker);
  EXPECT_EQ(first.sweep_id, capped);
  EXPECT_EQ(second.sweep_id, capped);
  EXPECT_EQ(Lease(worker).sweep_id, other);  // capped is at its limit
  EXPECT_FALSE(TryLease(worker).has_value());

  ASSERT_THAT(Finish(first), IsOk());
  const TrialRecord third = Lease(worker);
  EXPECT_EQ(third.sweep_id, capped);
  EXPECT_EQ(third.index, 2);
  EXPECT_FALSE(TryLease(worker).has_value());
  EXPECT_EQ(store_->GetSweep(capped)->trial_counts[static_cast<int>(TrialState::kRunning)], 2);
}

TEST_F(StoreLeaseTest, QuarantinedWorkerIsRefusedUntilUnquarantined) {
  const int64_t sweep_id = CreateSweep("s", MakeTrials(4));
  const std::string worker = Register();
  const FailurePolicy policy = QuarantineAfter(2);

  const TrialRecord a = Lease(worker);
  absl::StatusOr<FailOutcome> first = Fail(a, FailureKind::kCrash, "CUDA error", 3000, policy);
  ASSERT_THAT(first, IsOk());
  EXPECT_TRUE(first->requeued);
  EXPECT_FALSE(first->worker_quarantined);
  EXPECT_EQ(Worker(worker).consecutive_failures, 1);

  // Divergence and bad configurations are the trial's fault, not the worker's.
  const TrialRecord b = Lease(worker);
  ASSERT_THAT(Fail(b, FailureKind::kDiverged, "loss is NaN", 3000, policy), IsOk());
  const TrialRecord c = Lease(worker);
  ASSERT_THAT(Fail(c, FailureKind::kConfig, "no such optimizer", 3000, policy), IsOk());
  EXPECT_EQ(Worker(worker).consecutive_failures, 1);

  const TrialRecord d = Lease(worker);
  absl::StatusOr<FailOutcome> second = Fail(d, FailureKind::kCrash, "OOM", 3000, policy);
  ASSERT_THAT(second, IsOk());
  EXPECT_TRUE(second->worker_quarantined);

  const std::string reason =
      "2 failed attempts in a row; last: trial " + std::to_string(d.id) + " attempt 1: OOM";
  WorkerRecord quarantined = Worker(worker);
  EXPECT_TRUE(quarantined.quarantined);
  EXPECT_EQ(quarantined.quarantine_reason, reason);
  EXPECT_EQ(quarantined.consecutive_failures, 2);
  EXPECT_THAT(store_->LeaseNextTrial(worker, 4000, kLeaseMs),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "worker " + worker + " is quarantined: " + reason));
  absl::StatusOr<HeartbeatOutcome> beat = store_->Heartbeat(worker, 4000, kLeaseMs);
  ASSERT_THAT(beat, IsOk());
  EXPECT_TRUE(beat->quarantined);
  EXPECT_EQ(store_->GetSweep(sweep_id)->trial_counts[static_cast<int>(TrialState::kPending)], 2);

  // Another worker is unaffected; lifting the quarantine lets this one lease again.
  EXPECT_TRUE(TryLease(Register()).has_value());
  ASSERT_THAT(store_->UnquarantineWorker(worker), IsOk());
  WorkerRecord lifted = Worker(worker);
  EXPECT_FALSE(lifted.quarantined);
  EXPECT_EQ(lifted.quarantine_reason, "");
  EXPECT_EQ(lifted.consecutive_failures, 0);
  const TrialRecord e = Lease(worker, 5000);
  EXPECT_THAT(store_->UnquarantineWorker(worker), IsOk());  // not quarantined: OK

  // A success resets the count.
  ASSERT_THAT(Fail(e, FailureKind::kCrash, "OOM", 5000, policy), IsOk());
  EXPECT_EQ(Worker(worker).consecutive_failures, 1);
  ASSERT_THAT(Finish(Lease(worker, 6000)), IsOk());
  EXPECT_EQ(Worker(worker).consecutive_failures, 0);
}

TEST_F(StoreLeaseTest, ExpiredLeasesAreRequeuedUntilMaxAttempts) {
  const int64_t sweep_id = CreateSweepWith("s", 1, 0, 0, /*max_attempts=*/2);
  const std::string lost_first = Register();
  const std::string lost_second = Register();
  const TrialRecord first = Lease(lost_first, 2000);

  // A lease is held until the end of its last millisecond.
  absl::StatusOr<std::vector<ExpiredLease>> none =
      store_->ExpireLeases(first.lease_expires_ms, FailurePolicy());
  ASSERT_THAT(none, IsOk());
  EXPECT_THAT(*none, IsEmpty());

  absl::StatusOr<std::vector<ExpiredLease>> expired =
      store_->ExpireLeases(first.lease_expires_ms + 1, QuarantineAfter(1));
  ASSERT_THAT(expired, IsOk());
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_EQ((*expired)[0].trial_id, first.id);
  EXPECT_EQ((*expired)[0].attempt, 1);
  EXPECT_EQ((*expired)[0].worker_id, lost_first);
  EXPECT_TRUE((*expired)[0].requeued);
  EXPECT_TRUE((*expired)[0].worker_quarantined);

  TrialRecord requeued = Trial(first.id);
  EXPECT_EQ(requeued.state, TrialState::kPending);
  EXPECT_EQ(requeued.failures, 1);
  EXPECT_EQ(requeued.max_attempts, 2);
  EXPECT_EQ(requeued.worker_id, "");
  EXPECT_EQ(requeued.lease_expires_ms, 0);
  EXPECT_EQ(AttemptColumn(first, 1, "outcome"), "lost");
  EXPECT_EQ(AttemptColumn(first, 1, "reason"),
            "lost worker " + lost_first + ": its lease expired at 12000 ms");
  EXPECT_EQ(Worker(lost_first).quarantine_reason,
            "1 failed attempt in a row; last: trial " + std::to_string(first.id) +
                " attempt 1: lost worker " + lost_first + ": its lease expired at 12000 ms");

  const TrialRecord second = Lease(lost_second, 20000);
  EXPECT_EQ(second.attempt, 2);
  expired = store_->ExpireLeases(second.lease_expires_ms + 1, FailurePolicy());
  ASSERT_THAT(expired, IsOk());
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_FALSE((*expired)[0].requeued);
  EXPECT_FALSE((*expired)[0].worker_quarantined);

  TrialRecord failed = Trial(first.id);
  EXPECT_EQ(failed.state, TrialState::kFailed);
  EXPECT_EQ(failed.failures, 2);
  EXPECT_EQ(failed.failure_reason, "lost worker " + lost_second + "; failed 2 of 2 attempts");
  EXPECT_EQ(failed.worker_id, lost_second);
  EXPECT_EQ(store_->GetSweep(sweep_id)->state, SweepState::kFinished);
  EXPECT_EQ(Worker(lost_second).consecutive_failures, 1);
}

TEST_F(StoreLeaseTest, RenewAllLeasesGivesEveryRunningAttemptAGracePeriod) {
  CreateSweep("s", MakeTrials(3));
  const TrialRecord a = Lease(Register(), 2000);
  const TrialRecord b = Lease(Register(), 9000);

  absl::StatusOr<int32_t> renewed = store_->RenewAllLeases(50000);
  ASSERT_THAT(renewed, IsOk());
  EXPECT_EQ(*renewed, 2);
  EXPECT_EQ(Trial(a.id).lease_expires_ms, 50000);
  EXPECT_EQ(Trial(b.id).lease_expires_ms, 50000);
  EXPECT_THAT(*store_->ExpireLeases(50000, FailurePolicy()), IsEmpty());
  EXPECT_EQ(store_->ExpireLeases(50001, FailurePolicy())->size(), 2u);
}

TEST_F(StoreLeaseTest, MetricsAreStoredOnceAcrossAttempts) {
  CreateSweep("s", MakeTrials(1));
  const TrialRecord first = Lease(Register());
  ASSERT_THAT(Report(first, 0, {{"loss", 3.0}}), IsOk());
  ASSERT_THAT(Report(first, 1, {{"loss", 2.0}}), IsOk());
  ASSERT_THAT(store_->RecordCheckpoint(first.worker_id, first.id, first.attempt, 1), IsOk());
  EXPECT_THAT(store_->RecordCheckpoint(first.worker_id, first.id, first.attempt, 6),
              StatusIs(absl::StatusCode::kInvalidArgument, "the trial trains 5"));
  EXPECT_THAT(store_->RecordCheckpoint(first.worker_id, first.id, first.attempt, -1),
              StatusIs(absl::StatusCode::kInvalidArgument, "must be >= 0"));
  LoseLease(first);

  // The next attempt resumes from the checkpoint and measures epoch 1 again.
  const TrialRecord second = Lease(Register(), 30000);
  EXPECT_EQ(second.checkpoint_epoch, 1);
  EXPECT_EQ(second.last_epoch, 1);
  absl::StatusOr<RecordedMetrics> again = Report(second, 1, {{"loss", 2.2}});
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->rows_written, 0);
  EXPECT_EQ(Report(second, 2, {{"loss", 1.0}})->rows_written, 1);

  DirectSql sql(path_);
  EXPECT_EQ(sql.Int("SELECT count(*) FROM metrics"), 3);
  EXPECT_EQ(sql.Text("SELECT value FROM metrics WHERE epoch = 1"), "2.0");
  EXPECT_EQ(sql.Text("SELECT group_concat(attempt) FROM (SELECT attempt FROM metrics "
                     "ORDER BY epoch)"),
            "1,1,2");
}

TEST_F(StoreLeaseTest, CrashesAreRetriedUntilMaxAttempts) {
  const int64_t sweep_id = CreateSweepWith("s", 1, 0, 0, /*max_attempts=*/2);
  const std::string worker = Register();
  const FailurePolicy never = QuarantineAfter(0);

  const TrialRecord first = Lease(worker);
  absl::StatusOr<FailOutcome> retried = Fail(first, FailureKind::kCrash, "segfault", 3000, never);
  ASSERT_THAT(retried, IsOk());
  EXPECT_TRUE(retried->requeued);
  EXPECT_EQ(Trial(first.id).failures, 1);
  EXPECT_EQ(Trial(first.id).failure_reason, "");
  EXPECT_EQ(AttemptColumn(first, 1, "failure_kind"), "crash");
  EXPECT_EQ(AttemptColumn(first, 1, "requeued"), "1");

  // A released attempt goes back to the queue and counts against nothing.
  const TrialRecord released = Lease(worker, 4000);
  absl::StatusOr<FailOutcome> back = Fail(released, FailureKind::kReleased, "draining", 4500, never);
  ASSERT_THAT(back, IsOk());
  EXPECT_TRUE(back->requeued);
  EXPECT_EQ(Trial(first.id).failures, 1);
  EXPECT_EQ(Trial(first.id).state, TrialState::kPending);
  EXPECT_EQ(AttemptColumn(released, 2, "outcome"), "released");
  EXPECT_EQ(Worker(worker).consecutive_failures, 1);

  const TrialRecord last = Lease(worker, 5000);
  EXPECT_EQ(last.attempt, 3);
  absl::StatusOr<FailOutcome> final_failure =
      Fail(last, FailureKind::kCrash, "segfault again", 6000, never);
  ASSERT_THAT(final_failure, IsOk());
  EXPECT_FALSE(final_failure->requeued);
  EXPECT_FALSE(final_failure->worker_quarantined);
  const TrialRecord failed = Trial(first.id);
  EXPECT_EQ(failed.state, TrialState::kFailed);
  EXPECT_EQ(failed.failures, 2);
  EXPECT_EQ(failed.failure_reason, "failed 2 of 2 attempts; last: segfault again");
  EXPECT_EQ(Worker(worker).consecutive_failures, 2);
  EXPECT_FALSE(Worker(worker).quarantined);
  EXPECT_EQ(store_->GetSweep(sweep_id)->state, SweepState::kFinished);
}

TEST_F(StoreLeaseTest, DivergedAndConfigFailuresEndTheTrialAtOnce) {
  CreateSweep("s", MakeTrials(2));
  const std::string worker = Register();
  const TrialRecord diverged = Lease(worker);
  const TrialRecord misconfigured = Lease(worker);

  absl::StatusOr<FailOutcome> outcome = Fail(diverged, FailureKind::kDiverged, "loss is NaN");
  ASSERT_THAT(outcome, IsOk());
  EXPECT_FALSE(outcome->requeued);
  ASSERT_THAT(Fail(misconfigured, FailureKind::kConfig, "unknown key"), IsOk());

  EXPECT_EQ(Trial(diverged.id).state, TrialState::kFailed);
  EXPECT_EQ(Trial(diverged.id).failure_reason, "loss is NaN");
  EXPECT_EQ(Trial(diverged.id).failures, 0);
  EXPECT_EQ(Trial(misconfigured.id).failure_reason, "unknown key");
  EXPECT_EQ(AttemptColumn(misconfigured, 1, "failure_kind"), "config");
  EXPECT_EQ(Worker(worker).consecutive_failures, 0);
  EXPECT_EQ(store_->GetSweep(diverged.sweep_id)->state, SweepState::kFinished);
}

TEST_F(StoreLeaseTest, RepeatedFailTrialReturnsTheSameOutcome) {
  CreateSweep("s", MakeTrials(2));
  const std::string worker = Register();
  const FailurePolicy policy = QuarantineAfter(1);
  const TrialRecord crashed = Lease(worker);

  absl::StatusOr<FailOutcome> outcome = Fail(crashed, FailureKind::kCrash, "OOM", 3000, policy);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_TRUE(outcome->requeued);
  EXPECT_TRUE(outcome->worker_quarantined);

  // The trial moved on: requeued, then leased to another worker.
  absl::StatusOr<FailOutcome> retry = Fail(crashed, FailureKind::kCrash, "OOM", 3100, policy);
  ASSERT_THAT(retry, IsOk());
  EXPECT_TRUE(retry->requeued);
  EXPECT_TRUE(retry->worker_quarantined);
  const TrialRecord next = Lease(Register(), 4000);
  ASSERT_EQ(next.id, crashed.id);
  retry = Fail(crashed, FailureKind::kCrash, "OOM", 4100, policy);
  ASSERT_THAT(retry, IsOk());
  EXPECT_TRUE(retry->requeued);

  // The retry changed nothing.
  const TrialRecord now = Trial(crashed.id);
  EXPECT_EQ(now.state, TrialState::kRunning);
  EXPECT_EQ(now.attempt, 2);
  EXPECT_EQ(now.failures, 1);
  EXPECT_EQ(Worker(worker).consecutive_failures, 1);
  EXPECT_EQ(AttemptColumn(crashed, 1, "ended_at_ms"), "3000");

  // Not the same call: another kind or reason is a stale report.
  EXPECT_THAT(Fail(crashed, FailureKind::kCrash, "other", 4200, policy),
              StatusIs(absl::StatusCode::kFailedPrecondition, "attempt 1 is not current"));
  EXPECT_THAT(Fail(crashed, FailureKind::kDiverged, "OOM", 4200, policy),
              StatusIs(absl::StatusCode::kFailedPrecondition, "attempt 1 is not current"));

  const TrialRecord leaving = Lease(next.worker_id, 5000);
  ASSERT_THAT(Fail(leaving, FailureKind::kReleased, "shutdown"), IsOk());
  absl::StatusOr<FailOutcome> released = Fail(leaving, FailureKind::kReleased, "shutdown");
  ASSERT_THAT(released, IsOk());
  EXPECT_TRUE(released->requeued);
  EXPECT_FALSE(released->worker_quarantined);
}

TEST_F(StoreLeaseTest, CancelTrialEndsOneTrial) {
  const int64_t sweep_id = CreateSweep("s", MakeTrials(3));
  const std::string worker = Register();
  const TrialRecord running = Lease(worker);
  const int64_t pending_id = (*store_->ListTrials(sweep_id))[2].id;

  EXPECT_EQ(store_->CancelTrial(pending_id, 3000).value_or(false), true);
  EXPECT_EQ(store_->CancelTrial(running.id, 3000).value_or(false), true);
  EXPECT_EQ(store_->CancelTrial(running.id, 3100).value_or(true), false);  // already ended
  EXPECT_EQ(Trial(running.id).state, TrialState::kCancelled);
  EXPECT_EQ(AttemptColumn(running, 1, "outcome"), "cancelled");
  EXPECT_THAT(RunningTrialsOf(worker), IsEmpty());
  EXPECT_THAT(Report(running, 0, {{"loss", 1.0}}),
              StatusIs(absl::StatusCode::kFailedPrecondition, "state cancelled"));
  EXPECT_EQ(store_->GetSweep(sweep_id)->state, SweepState::kRunning);

  const TrialRecord last = Lease(worker, 4000);
  EXPECT_EQ(store_->CancelTrial(last.id, 5000).value_or(false), true);
  absl::StatusOr<SweepRecord> sweep = store_->GetSweep(sweep_id);
  EXPECT_EQ(sweep->state, SweepState::kFinished);
  EXPECT_EQ(sweep->trial_counts[static_cast<int>(TrialState::kCancelled)], 3);
}

// Counts the COMMITs of the store's writing connection.
std::atomic<int> g_commits{0};
int CountCommit(void*) {
  ++g_commits;
  return 0;
}
int HookWritingConnection(sqlite3* db, const char**, const sqlite3_api_routines*) {
  if (sqlite3_db_readonly(db, "main") == 0) sqlite3_commit_hook(db, &CountCommit, nullptr);
  return SQLITE_OK;
}

TEST_F(StoreLeaseTest, GroupCommitStoresEveryWriteAndUndoesOnlyTheFailedOnes) {
  constexpr int kThreads = 8;
  constexpr int kEpochs = 200;
  const int64_t sweep_id = CreateSweep("s", MakeTrials(kThreads + 1, kEpochs));
  store_.reset();
  auto entry = reinterpret_cast<void (*)()>(&HookWritingConnection);
  ASSERT_EQ(sqlite3_auto_extension(entry), SQLITE_OK);
  store_ = OpenStore();
  sqlite3_cancel_auto_extension(entry);
  ASSERT_NE(store_, nullptr);

  // One trial whose first attempt went stale: its reports must all fail.
  const TrialRecord stale = Lease(Register());
  LoseLease(stale);
  const TrialRecord current = Lease(Register(), stale.lease_expires_ms + 5);
  ASSERT_EQ(current.id, stale.id);
  std::vector<TrialRecord> trials;
  for (int i = 0; i < kThreads; ++i) trials.push_back(Lease(Register(), 30000));
  // A write that fails halfway: its first row is in before the trigger
  // aborts the second, and only its savepoint's rollback takes it out.
  DirectSql(path_).Exec(
      "CREATE TRIGGER poison BEFORE INSERT ON metrics WHEN NEW.name = 'poison' "
      "BEGIN SELECT RAISE(ABORT, 'poisoned metric'); END");
  g_commits = 0;

  std::atomic<int> rows_written{0};
  std::atomic<int> refused{0};
  std::atomic<int> poisoned{0};
  auto report = [&](const TrialRecord& trial) {
    for (int epoch = 0; epoch < kEpochs; ++epoch) {
      absl::StatusOr<RecordedMetrics> written =
          Report(trial, epoch, {{"loss", 1.0 / (epoch + 1)}, {"ncc", 0.5}});
      EXPECT_THAT(written, IsOk());
      if (written.ok()) {
        rows_written += written->rows_written;
        EXPECT_EQ(written->sweep_id, sweep_id);
      }
      // Between good writes, one that the fence refuses and one that fails
      // after writing.
      if (Report(stale, epoch, {{"loss", 7.0}}).status().code() ==
          absl::StatusCode::kFailedPrecondition) {
        ++refused;
      }
      absl::Status failed = Report(trial, epoch, {{"half", 1.0}, {"poison", 2.0}}).status();
      if (absl::StrContains(failed.message(), "poisoned metric")) ++poisoned;
    }
  };
  // Reads go on meanwhile, on their own connection.
  std::atomic<bool> writing{true};
  std::thread reader([&] {
    int32_t last_epoch = -1;
    while (writing.load()) {
      absl::StatusOr<TrialRecord> trial = store_->GetTrial(trials[0].id);
      ASSERT_THAT(trial, IsOk());
      EXPECT_GE(trial->last_epoch, last_epoch);
      last_epoch = trial->last_epoch;
    }
  });
  std::vector<std::thread> threads;
  for (const TrialRecord& trial : trials) threads.emplace_back(report, trial);
  for (std::thread& thread : threads) thread.join();
  writing = false;
  reader.join();

  constexpr int kWrites = 3 * kThreads * kEpochs;
  EXPECT_EQ(rows_written.load(), kThreads * kEpochs * 2);
  EXPECT_EQ(refused.load(), kThreads * kEpochs);
  EXPECT_EQ(poisoned.load(), kThreads * kEpochs);
  EXPECT_EQ(DirectSql(path_).Int("SELECT count(*) FROM metrics WHERE name = 'half'"), 0);
  EXPECT_LT(g_commits.load(), kWrites);  // writes shared commits
  EXPECT_GT(g_commits.load(), 0);

  // A read right after a write sees it; a reopened store sees every row.
  ASSERT_THAT(Report(current, 0, {{"loss", 2.0}}), IsOk());
  EXPECT_EQ(store_->TrialMetrics(current.id)->size(), 1u);
  Reopen();
  for (const TrialRecord& trial : trials) {
    absl::StatusOr<std::vector<EpochMetrics>> metrics = store_->TrialMetrics(trial.id);
    ASSERT_THAT(metrics, IsOk());
    ASSERT_EQ(metrics->size(), static_cast<size_t>(kEpochs));
    EXPECT_EQ(metrics->back().epoch, kEpochs - 1);
    EXPECT_EQ(metrics->back().metrics.size(), 2u);
  }
  EXPECT_EQ(Count("metrics"), kThreads * kEpochs * 2 + 1);
}

}  // namespace
}  // namespace sslsweep
