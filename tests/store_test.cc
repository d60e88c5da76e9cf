// Tests of Store against real SQLite files, one fresh directory per test:
// sweeps, trials, leasing, metrics and results. They read the file back
// through a second connection, as a `sqlite3 DB` user would, to check what is
// really stored. Reopening, stale attempts, refused files, migration, failed
// commits and concurrent writers are in store_recovery_test.cc; scheduling,
// retries, quarantine and group commit in store_lease_test.cc.

#include "coordinator/store.h"

#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/store_test_util.h"

namespace sslsweep {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

TEST_F(StoreTest, CreatesSweepWithTrialsAndParamsAndReadsThemBack) {
  std::vector<NewTrial> trials = MakeTrials(3);
  trials[2].params = {{"method.std_coeff", "25"}, {"optim.lr", "3e-3"}, {"backbone.depth", "5"}};
  const int64_t sweep_id = CreateSweep("vicreg-lr", trials);

  absl::StatusOr<SweepRecord> sweep = store_->GetSweep(sweep_id);
  ASSERT_THAT(sweep, IsOk());
  EXPECT_EQ(sweep->id, sweep_id);
  EXPECT_EQ(sweep->name, "vicreg-lr");
  EXPECT_EQ(sweep->source_yaml, "name: vicreg-lr\nmethod: grid\n");
  EXPECT_EQ(sweep->metric_name, "ncc_test_acc/fine/embedding");
  EXPECT_EQ(sweep->metric_goal, "maximize");
  EXPECT_EQ(sweep->max_attempts, 3);
  EXPECT_EQ(sweep->max_concurrent, 0);
  EXPECT_EQ(sweep->priority, 0);
  EXPECT_EQ(sweep->state, SweepState::kRunning);
  EXPECT_EQ(sweep->created_at_ms, 1000);
  EXPECT_EQ(sweep->trials_total, 3);
  EXPECT_EQ(sweep->trial_counts[static_cast<int>(TrialState::kPending)], 3);
  EXPECT_EQ(sweep->trial_counts[static_cast<int>(TrialState::kRunning)], 0);

  absl::StatusOr<std::vector<TrialRecord>> listed = store_->ListTrials(sweep_id);
  ASSERT_THAT(listed, IsOk());
  ASSERT_EQ(listed->size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const TrialRecord& trial = (*listed)[i];
    EXPECT_EQ(trial.sweep_id, sweep_id);
    EXPECT_EQ(trial.index, i);
    EXPECT_EQ(trial.state, TrialState::kPending);
    EXPECT_EQ(trial.attempt, 0);
    EXPECT_EQ(trial.worker_id, "");
    EXPECT_EQ(trial.last_epoch, -1);
    EXPECT_EQ(trial.epochs, 5);
    EXPECT_EQ(trial.config_yaml, trials[i].config_yaml);
    EXPECT_EQ(trial.lease_expires_ms, 0);
    EXPECT_EQ(trial.failures, 0);
    EXPECT_EQ(trial.max_attempts, 3);
    EXPECT_EQ(trial.checkpoint_epoch, -1);
    ASSERT_EQ(trial.params.size(), trials[i].params.size());
    for (size_t p = 0; p < trial.params.size(); ++p) {  // in the order given
      EXPECT_EQ(trial.params[p].path, trials[i].params[p].path);
      EXPECT_EQ(trial.params[p].value, trials[i].params[p].value);
    }
  }

  absl::StatusOr<TrialRecord> one = store_->GetTrial((*listed)[2].id);
  ASSERT_THAT(one, IsOk());
  EXPECT_EQ(one->index, 2);
  ASSERT_EQ(one->params.size(), 3u);
  EXPECT_EQ(one->params[0].path, "method.std_coeff");
  EXPECT_EQ(one->params[2].value, "5");

  absl::StatusOr<std::vector<SweepRecord>> sweeps = store_->ListSweeps();
  ASSERT_THAT(sweeps, IsOk());
  ASSERT_EQ(sweeps->size(), 1u);
  EXPECT_EQ((*sweeps)[0].trials_total, 3);

  DirectSql sql(path_);
  EXPECT_EQ(sql.Int("SELECT count(*) FROM trial_params"), 7);
  EXPECT_EQ(sql.Text("SELECT state FROM sweeps"), "running");
  EXPECT_EQ(sql.Text("SELECT group_concat(DISTINCT state) FROM trials"), "pending");
}

TEST_F(StoreTest, UnknownIdsAreNotFound) {
  EXPECT_THAT(store_->GetSweep(7), StatusIs(absl::StatusCode::kNotFound, "no sweep 7"));
  EXPECT_THAT(store_->ListTrials(7), StatusIs(absl::StatusCode::kNotFound, "no sweep 7"));
  EXPECT_THAT(store_->GetTrial(9), StatusIs(absl::StatusCode::kNotFound, "no trial 9"));
  EXPECT_THAT(store_->FinalMetrics(7), StatusIs(absl::StatusCode::kNotFound, "no sweep 7"));
  EXPECT_THAT(store_->TrialMetrics(9), StatusIs(absl::StatusCode::kNotFound, "no trial 9"));
  EXPECT_THAT(store_->CancelSweep(7, 1), StatusIs(absl::StatusCode::kNotFound, "no sweep 7"));
  EXPECT_THAT(store_->FinishTrial("w-1", 9, 1, 1),
              StatusIs(absl::StatusCode::kNotFound, "no trial 9"));
  EXPECT_THAT(store_->RecordMetrics("w-1", 9, 1, 0, {{"loss", 1.0}}),
              StatusIs(absl::StatusCode::kNotFound, "no trial 9"));
  EXPECT_THAT(store_->RecordCheckpoint("w-1", 9, 1, 0),
              StatusIs(absl::StatusCode::kNotFound, "no trial 9"));
  EXPECT_THAT(store_->FailTrial("w-1", 9, 1, FailureKind::kCrash, "x", 1, FailurePolicy()),
              StatusIs(absl::StatusCode::kNotFound, "no trial 9"));
  EXPECT_THAT(store_->PruneTrial(9, 1, "x", 1), StatusIs(absl::StatusCode::kNotFound, "no trial 9"));
  EXPECT_THAT(store_->CancelTrial(9, 1), StatusIs(absl::StatusCode::kNotFound, "no trial 9"));
  EXPECT_THAT(store_->MetricHistories(7, "loss"),
              StatusIs(absl::StatusCode::kNotFound, "no sweep 7"));
  EXPECT_THAT(store_->GetWorker("w-5"), StatusIs(absl::StatusCode::kNotFound, "no worker w-5"));
  EXPECT_THAT(store_->UnquarantineWorker("w-5"),
              StatusIs(absl::StatusCode::kNotFound, "no worker w-5"));
  EXPECT_THAT(store_->Heartbeat("w-5", 1, kLeaseMs),
              StatusIs(absl::StatusCode::kNotFound, "no worker w-5"));
  EXPECT_THAT(store_->LeaseNextTrial("w-5", 1, kLeaseMs),
              StatusIs(absl::StatusCode::kNotFound, "no worker w-5"));
}

TEST_F(StoreTest, InvalidSweepIsRejectedAndWritesNothing) {
  std::vector<NewTrial> duplicate_index = MakeTrials(2);
  duplicate_index[1].index = 0;
  EXPECT_THAT(store_->CreateSweep(MakeSweep("s"), duplicate_index, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, "trial index 0 appears twice"));

  std::vector<NewTrial> duplicate_param = MakeTrials(1);
  duplicate_param[0].params.push_back({"optim.lr", "1"});
  EXPECT_THAT(store_->CreateSweep(MakeSweep("s"), duplicate_param, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, "sets parameter 'optim.lr' twice"));

  NewSweep bad_goal = MakeSweep("s");
  bad_goal.metric_goal = "maximise";
  EXPECT_THAT(store_->CreateSweep(bad_goal, MakeTrials(1), 1),
              StatusIs(absl::StatusCode::kInvalidArgument, "'maximise'"));
  EXPECT_THAT(store_->CreateSweep(MakeSweep("s"), {}, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, "at least one trial"));
  NewSweep no_attempts = MakeSweep("s");
  no_attempts.max_attempts = 0;
  EXPECT_THAT(store_->CreateSweep(no_attempts, MakeTrials(1), 1),
              StatusIs(absl::StatusCode::kInvalidArgument, "max_attempts is 0; must be >= 1"));
  NewSweep negative_concurrency = MakeSweep("s");
  negative_concurrency.max_concurrent = -1;
  EXPECT_THAT(store_->CreateSweep(negative_concurrency, MakeTrials(1), 1),
              StatusIs(absl::StatusCode::kInvalidArgument, "max_concurrent is -1"));

  EXPECT_EQ(Count("sweeps"), 0);
  EXPECT_EQ(Count("trials"), 0);
  EXPECT_EQ(Count("trial_params"), 0);
}

TEST_F(StoreTest, LeasesFirstComeFirstServedAcrossSweeps) {
  const int64_t first = CreateSweep("first", MakeTrials(2));
  // Indices out of order on purpose: leasing follows the index, not insertion.
  const int64_t second = CreateSweep("second", {MakeTrial(1, "1"), MakeTrial(0, "2")});
  const std::string worker = Register();

  std::vector<std::pair<int64_t, int32_t>> order;
  for (int i = 0; i < 4; ++i) {
    TrialRecord trial = Lease(worker, 2000 + i);
    order.push_back({trial.sweep_id, trial.index});
    EXPECT_EQ(trial.state, TrialState::kRunning);
    EXPECT_EQ(trial.attempt, 1);
    EXPECT_EQ(trial.worker_id, worker);
    EXPECT_EQ(trial.lease_expires_ms, 2000 + i + kLeaseMs);
    EXPECT_EQ(trial.params.size(), 2u);
  }
  EXPECT_THAT(order, ElementsAre(std::make_pair(first, 0), std::make_pair(first, 1),
                                 std::make_pair(second, 0), std::make_pair(second, 1)));

  absl::StatusOr<std::optional<TrialRecord>> none = store_->LeaseNextTrial(worker, 3000, kLeaseMs);
  ASSERT_THAT(none, IsOk());
  EXPECT_FALSE(none->has_value());

  DirectSql sql(path_);
  EXPECT_EQ(sql.Int("SELECT count(*) FROM attempts WHERE attempt = 1 AND outcome IS NULL"), 4);
  EXPECT_EQ(sql.Text("SELECT group_concat(DISTINCT state) FROM trials"), "running");
}

TEST_F(StoreTest, LeaseValidatesItsArguments) {
  CreateSweep("s", MakeTrials(1));
  const std::string worker = Register();
  EXPECT_THAT(store_->LeaseNextTrial(worker, 1, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, "must be > 0"));
  EXPECT_THAT(store_->LeaseNextTrial("", 1, kLeaseMs),
              StatusIs(absl::StatusCode::kInvalidArgument, "worker id is empty"));
  EXPECT_EQ(DirectSql(path_).Int("SELECT count(*) FROM trials WHERE state = 'pending'"), 1);
}

TEST_F(StoreTest, EveryLeaseRaisesTheAttempt) {
  CreateSweep("s", MakeTrials(1));
  const std::string first = Register();
  const std::string second = Register();
  const TrialRecord leased = Lease(first);
  EXPECT_EQ(leased.attempt, 1);

  LoseLease(leased);
  const TrialRecord again = Lease(second, 5000);
  EXPECT_EQ(again.id, leased.id);
  EXPECT_EQ(again.attempt, 2);
  EXPECT_EQ(again.worker_id, second);

  DirectSql sql(path_);
  EXPECT_EQ(sql.Int("SELECT count(*) FROM attempts"), 2);
  EXPECT_EQ(sql.Text("SELECT worker_id FROM attempts WHERE attempt = 2"), second);
  EXPECT_EQ(sql.Int("SELECT started_at_ms FROM attempts WHERE attempt = 2"), 5000);
}

TEST_F(StoreTest, MetricsAreWrittenExactlyOnce) {
  CreateSweep("s", MakeTrials(1));
  const TrialRecord trial = Lease(Register());
  const std::vector<MetricValue> epoch0 = {
      {"loss", 2.5}, {"ncc_test_acc/fine/embedding", 0.61}, {"ncc_test_acc/random/embedding", 0.12}};

  absl::StatusOr<RecordedMetrics> written = Report(trial, 0, epoch0);
  ASSERT_THAT(written, IsOk());
  EXPECT_EQ(written->rows_written, 3);
  EXPECT_EQ(written->sweep_id, trial.sweep_id);

  absl::StatusOr<RecordedMetrics> retried = Report(trial, 0, epoch0);
  ASSERT_THAT(retried, IsOk());
  EXPECT_EQ(retried->rows_written, 0);

  // A retry that carries a new metric writes only that one; values already
  // stored are kept.
  absl::StatusOr<RecordedMetrics> partial =
      Report(trial, 0, {{"loss", 9.0}, {"knn_acc/fine/embedding", 0.7}});
  ASSERT_THAT(partial, IsOk());
  EXPECT_EQ(partial->rows_written, 1);

  DirectSql sql(path_);
  EXPECT_EQ(sql.Int("SELECT count(*) FROM metrics"), 4);
  EXPECT_EQ(sql.Text("SELECT value FROM metrics WHERE name = 'loss'"), "2.5");
  EXPECT_EQ(sql.Int("SELECT count(*) FROM metrics WHERE attempt = 1 AND epoch = 0"), 4);
}

TEST_F(StoreTest, InvalidMetricsAreRejectedAndWriteNothing) {
  CreateSweep("s", MakeTrials(1));
  const TrialRecord trial = Lease(Register());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();

  EXPECT_THAT(Report(trial, 0, {{"loss", 1.0}, {"cdnv", nan}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "metric 'cdnv' is nan"));
  EXPECT_THAT(Report(trial, 0, {{"loss", inf}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "metric 'loss' is inf"));
  EXPECT_THAT(Report(trial, 0, {{"", 1.0}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "empty name"));
  EXPECT_THAT(Report(trial, -1, {{"loss", 1.0}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "epoch must be >= 0"));
  EXPECT_THAT(Report(trial, 0, {{"loss", 1.0}, {"loss", 2.0}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "'loss' is reported twice"));
  EXPECT_THAT(Report(trial, 6, {{"loss", 1.0}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "metrics of epoch 6, but the trial trains 5 epochs"));
  EXPECT_EQ(Count("metrics"), 0);
  EXPECT_THAT(Report(trial, 5, {{"loss", 1.0}}), IsOk());
}

TEST_F(StoreTest, FinishAndFailEndTrialsAndTheLastOneFinishesTheSweep) {
  const int64_t sweep_id = CreateSweep("s", MakeTrials(2));
  const std::string worker = Register();
  const TrialRecord a = Lease(worker);
  const TrialRecord b = Lease(worker);

  ASSERT_THAT(Finish(a, 3000), IsOk());
  absl::StatusOr<SweepRecord> sweep = store_->GetSweep(sweep_id);
  ASSERT_THAT(sweep, IsOk());
  EXPECT_EQ(sweep->state, SweepState::kRunning);
  EXPECT_EQ(sweep->trial_counts[static_cast<int>(TrialState::kSucceeded)], 1);
  EXPECT_EQ(sweep->trial_counts[static_cast<int>(TrialState::kRunning)], 1);

  absl::StatusOr<FailOutcome> outcome = Fail(b, FailureKind::kDiverged, "loss is NaN at epoch 3", 4000);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_FALSE(outcome->requeued);
  EXPECT_FALSE(outcome->worker_quarantined);
  sweep = store_->GetSweep(sweep_id);
  ASSERT_THAT(sweep, IsOk());
  EXPECT_EQ(sweep->state, SweepState::kFinished);
  EXPECT_EQ(sweep->trial_counts[static_cast<int>(TrialState::kFailed)], 1);

  absl::StatusOr<TrialRecord> failed = store_->GetTrial(b.id);
  ASSERT_THAT(failed, IsOk());
  EXPECT_EQ(failed->state, TrialState::kFailed);
  EXPECT_EQ(failed->failure_reason, "loss is NaN at epoch 3");
  EXPECT_EQ(failed->lease_expires_ms, 0);
  EXPECT_EQ(failed->worker_id, worker);

  EXPECT_TRUE(RunningTrialsOf(worker).empty());

  DirectSql sql(path_);
  EXPECT_EQ(sql.Text("SELECT state FROM sweeps"), "finished");
  EXPECT_EQ(sql.Int("SELECT ended_at_ms FROM sweeps"), 4000);
  EXPECT_EQ(sql.Text("SELECT group_concat(outcome, ',') FROM (SELECT outcome FROM attempts "
                     "ORDER BY trial_id)"),
            "succeeded,failed");
  EXPECT_EQ(sql.Text("SELECT reason FROM attempts WHERE outcome = 'failed'"),
            "loss is NaN at epoch 3");
  EXPECT_EQ(sql.Int("SELECT ended_at_ms FROM trials WHERE id = " + std::to_string(a.id)), 3000);
}

TEST_F(StoreTest, RepeatedEndingsOfTheSameAttemptAreIdempotent) {
  CreateSweep("s", MakeTrials(2));
  const std::string worker = Register();
  const TrialRecord a = Lease(worker);
  const TrialRecord b = Lease(worker);

  ASSERT_THAT(Finish(a, 3000), IsOk());
  EXPECT_THAT(Finish(a, 3500), IsOk());
  ASSERT_THAT(Fail(b, FailureKind::kConfig, "bad lr", 3000), IsOk());
  EXPECT_THAT(Fail(b, FailureKind::kConfig, "bad lr", 3500), IsOk());

  // A different ending of an ended attempt is a conflict, not a retry.
  EXPECT_THAT(Fail(a, FailureKind::kDiverged, "late", 4000),
              StatusIs(absl::StatusCode::kFailedPrecondition, "state succeeded"));
  EXPECT_THAT(Finish(b, 4000), StatusIs(absl::StatusCode::kFailedPrecondition, "state failed"));
  EXPECT_THAT(Fail(b, FailureKind::kDiverged, "bad lr", 4000),
              StatusIs(absl::StatusCode::kFailedPrecondition, "state failed"));
  EXPECT_EQ(DirectSql(path_).Int("SELECT ended_at_ms FROM trials WHERE id = " +
                                 std::to_string(a.id)),
            3000);
}

TEST_F(StoreTest, CancelSweepCancelsPendingAndRunningTrials) {
  const int64_t cancelled = CreateSweep("cancelled", MakeTrials(3));
  const int64_t other = CreateSweep("other", MakeTrials(1));
  const std::string worker = Register();
  const TrialRecord running = Lease(worker);
  ASSERT_EQ(running.sweep_id, cancelled);

  absl::StatusOr<int32_t> changed = store_->CancelSweep(cancelled, 5000);
  ASSERT_THAT(changed, IsOk());
  EXPECT_EQ(*changed, 3);

  absl::StatusOr<SweepRecord> sweep = store_->GetSweep(cancelled);
  ASSERT_THAT(sweep, IsOk());
  EXPECT_EQ(sweep->state, SweepState::kCancelled);
  EXPECT_EQ(sweep->trial_counts[static_cast<int>(TrialState::kCancelled)], 3);
  EXPECT_EQ(store_->GetSweep(other)->state, SweepState::kRunning);

  EXPECT_THAT(Report(running, 0, {{"loss", 1.0}}),
              StatusIs(absl::StatusCode::kFailedPrecondition, "state cancelled"));
  EXPECT_THAT(Finish(running, 6000),
              StatusIs(absl::StatusCode::kFailedPrecondition, "state cancelled"));
  EXPECT_TRUE(RunningTrialsOf(worker).empty());

  // The next lease skips the cancelled sweep.
  EXPECT_EQ(Lease(worker).sweep_id, other);

  absl::StatusOr<int32_t> again = store_->CancelSweep(cancelled, 7000);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(*again, 0);

  DirectSql sql(path_);
  EXPECT_EQ(sql.Text("SELECT outcome FROM attempts WHERE trial_id = " +
                     std::to_string(running.id)),
            "cancelled");
  EXPECT_EQ(sql.Int("SELECT ended_at_ms FROM sweeps WHERE id = " + std::to_string(cancelled)),
            5000);
}

TEST_F(StoreTest, HeartbeatExtendsOnlyTheWorkersLeases) {
  CreateSweep("s", MakeTrials(2));
  const std::string first = Register();
  const std::string second = Register();
  const TrialRecord mine = Lease(first, 2000);
  const TrialRecord theirs = Lease(second, 2000);

  absl::StatusOr<HeartbeatOutcome> beat = store_->Heartbeat(first, 7000, kLeaseMs);
  ASSERT_THAT(beat, IsOk());
  EXPECT_THAT(beat->running_trial_ids, ElementsAre(mine.id));
  EXPECT_FALSE(beat->quarantined);
  EXPECT_EQ(store_->GetTrial(mine.id)->lease_expires_ms, 7000 + kLeaseMs);
  EXPECT_EQ(store_->GetTrial(theirs.id)->lease_expires_ms, 2000 + kLeaseMs);

  absl::StatusOr<std::vector<WorkerRecord>> workers = store_->ListWorkers();
  ASSERT_THAT(workers, IsOk());
  EXPECT_EQ((*workers)[0].last_heartbeat_ms, 7000);
  EXPECT_EQ((*workers)[1].last_heartbeat_ms, 1000);
  EXPECT_THAT((*workers)[0].running_trial_ids, ElementsAre(mine.id));
  EXPECT_THAT((*workers)[1].running_trial_ids, ElementsAre(theirs.id));
  EXPECT_THAT(store_->Heartbeat(first, 8000, -5),
              StatusIs(absl::StatusCode::kInvalidArgument, "must be > 0"));
  EXPECT_THAT(store_->Heartbeat("", 8000, kLeaseMs),
              StatusIs(absl::StatusCode::kInvalidArgument, "worker id is empty"));
  EXPECT_EQ(store_->GetTrial(mine.id)->lease_expires_ms, 7000 + kLeaseMs);
}

TEST_F(StoreTest, FinalMetricsTakesEachTrialsHighestEpoch) {
  const int64_t sweep_id = CreateSweep("s", MakeTrials(3));
  const std::string worker = Register();
  const TrialRecord t0 = Lease(worker);
  const TrialRecord t1 = Lease(worker);
  Lease(worker);  // index 2 reports nothing

  ASSERT_THAT(Report(t0, 0, {{"loss", 3.0}, {"ncc", 0.2}}), IsOk());
  ASSERT_THAT(Report(t0, 2, {{"ncc", 0.8}}), IsOk());
  ASSERT_THAT(Report(t0, 1, {{"ncc", 0.5}, {"loss", 2.0}}), IsOk());
  ASSERT_THAT(Report(t1, 0, {{"ncc", 0.3}, {"cdnv", 1.5}}), IsOk());

  absl::StatusOr<std::vector<EpochMetrics>> final_metrics = store_->FinalMetrics(sweep_id);
  ASSERT_THAT(final_metrics, IsOk());
  ASSERT_EQ(final_metrics->size(), 3u);
  EXPECT_EQ((*final_metrics)[0].trial_id, t0.id);
  EXPECT_EQ((*final_metrics)[0].epoch, 2);
  ASSERT_EQ((*final_metrics)[0].metrics.size(), 1u);
  EXPECT_EQ((*final_metrics)[0].metrics[0].name, "ncc");
  EXPECT_EQ((*final_metrics)[0].metrics[0].value, 0.8);
  EXPECT_EQ((*final_metrics)[1].trial_id, t1.id);
  EXPECT_EQ((*final_metrics)[1].epoch, 0);
  ASSERT_EQ((*final_metrics)[1].metrics.size(), 2u);
  EXPECT_EQ((*final_metrics)[1].metrics[0].name, "cdnv");  // sorted by name
  EXPECT_EQ((*final_metrics)[1].metrics[1].name, "ncc");
  EXPECT_EQ((*final_metrics)[2].epoch, -1);
  EXPECT_TRUE((*final_metrics)[2].metrics.empty());

  absl::StatusOr<std::vector<EpochMetrics>> history = store_->TrialMetrics(t0.id);
  ASSERT_THAT(history, IsOk());
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[1].epoch, 1);
  ASSERT_EQ((*history)[1].metrics.size(), 2u);
  EXPECT_EQ((*history)[1].metrics[0].name, "loss");
  EXPECT_EQ((*history)[1].metrics[0].value, 2.0);
  EXPECT_EQ(store_->GetTrial(t0.id)->last_epoch, 2);
}

TEST_F(StoreTest, ViewsSplitMetricNamesAndPickFinalEpochs) {
  CreateSweep("s", MakeTrials(2));
  const std::string worker = Register();
  const TrialRecord t0 = Lease(worker);
  ASSERT_THAT(Report(t0, 0, {{"ncc_test_acc/fine/embedding", 0.2}, {"loss/total", 9.0}}),
              IsOk());
  ASSERT_THAT(Report(t0, 1, {{"ncc_test_acc/fine/embedding", 0.5}, {"knn_test_acc/a/b/c", 0.4}}),
              IsOk());
  DirectSql sql(path_);
  EXPECT_EQ(sql.Text("SELECT params FROM trial_overview WHERE idx = 1"),
            "optim.lr=2e-3 backbone.depth=3");
  EXPECT_EQ(sql.Text("SELECT state FROM trial_overview WHERE idx = 0"), "running");
  EXPECT_EQ(sql.Text("SELECT metric || '|' || target || '|' || layer FROM metric_rows "
                     "WHERE epoch = 0 AND name = 'ncc_test_acc/fine/embedding'"),
            "ncc_test_acc|fine|embedding");
  // Fewer than three parts: no target or layer; more: the layer keeps the rest.
  EXPECT_EQ(sql.Text("SELECT metric || '|' || coalesce(target, 'NULL') || '|' || "
                     "coalesce(layer, 'NULL') FROM metric_rows WHERE name = 'loss/total'"),
            "loss|NULL|NULL");
  EXPECT_EQ(sql.Text("SELECT layer FROM metric_rows WHERE name = 'knn_test_acc/a/b/c'"), "b/c");
  EXPECT_EQ(sql.Int("SELECT count(*) FROM final_metric_rows"), 2);
  EXPECT_EQ(sql.Text("SELECT group_concat(value, ',') FROM (SELECT value FROM final_metric_rows "
                     "ORDER BY name)"),
            "0.4,0.5");
}

TEST_F(StoreTest, PrunedTrialsEndAndTheLastFinishesTheSweep) {
  const int64_t sweep_id = CreateSweep("s", MakeTrials(2));
  const std::string worker = Register();
  const TrialRecord kept = Lease(worker);
  const TrialRecord pruned = Lease(worker);

  ASSERT_THAT(Finish(kept), IsOk());
  ASSERT_THAT(store_->PruneTrial(pruned.id, pruned.attempt, "hyperband: below rung 1", 4000),
              IsOk());
  EXPECT_THAT(store_->PruneTrial(pruned.id, pruned.attempt, "hyperband: below rung 1", 4100),
              IsOk());  // a retry
  EXPECT_THAT(store_->PruneTrial(pruned.id, 2, "x", 4100),
              StatusIs(absl::StatusCode::kFailedPrecondition, "attempt 2 is not current"));

  absl::StatusOr<SweepRecord> sweep = store_->GetSweep(sweep_id);
  ASSERT_THAT(sweep, IsOk());
  EXPECT_EQ(sweep->state, SweepState::kFinished);
  EXPECT_EQ(sweep->trial_counts[static_cast<int>(TrialState::kPruned)], 1);
  EXPECT_EQ(sweep->trial_counts[static_cast<int>(TrialState::kSucceeded)], 1);
  EXPECT_EQ(Trial(pruned.id).state, TrialState::kPruned);
  EXPECT_EQ(Trial(pruned.id).failure_reason, "hyperband: below rung 1");
  EXPECT_EQ(AttemptColumn(pruned, 1, "outcome"), "pruned");
  EXPECT_THAT(Report(pruned, 3, {{"loss", 1.0}}),
              StatusIs(absl::StatusCode::kFailedPrecondition, "state pruned"));
  EXPECT_EQ(std::string(TrialStateName(TrialState::kPruned)), "pruned");
}

TEST_F(StoreTest, MetricHistoriesListEachTrialsValuesByEpoch) {
  const int64_t sweep_id = CreateSweep("s", MakeTrials(3));
  const std::string worker = Register();
  const TrialRecord t0 = Lease(worker);
  const TrialRecord t1 = Lease(worker);
  ASSERT_THAT(Report(t0, 2, {{"loss", 1.0}, {"acc", 0.9}}), IsOk());
  ASSERT_THAT(Report(t0, 0, {{"loss", 3.0}}), IsOk());
  ASSERT_THAT(Report(t0, 1, {{"acc", 0.5}}), IsOk());
  ASSERT_THAT(Report(t1, 0, {{"loss", 4.0}}), IsOk());
  ASSERT_THAT(Finish(t1), IsOk());

  absl::StatusOr<std::vector<MetricHistory>> histories = store_->MetricHistories(sweep_id, "loss");
  ASSERT_THAT(histories, IsOk());
  ASSERT_EQ(histories->size(), 3u);
  EXPECT_EQ((*histories)[0].trial_id, t0.id);
  EXPECT_EQ((*histories)[0].state, TrialState::kRunning);
  EXPECT_EQ((*histories)[0].attempt, 1);
  EXPECT_THAT((*histories)[0].values, ElementsAre(Pair(0, 3.0), Pair(2, 1.0)));
  EXPECT_EQ((*histories)[1].state, TrialState::kSucceeded);
  EXPECT_THAT((*histories)[1].values, ElementsAre(Pair(0, 4.0)));
  EXPECT_EQ((*histories)[2].state, TrialState::kPending);
  EXPECT_EQ((*histories)[2].attempt, 0);
  EXPECT_THAT((*histories)[2].values, IsEmpty());
}

}  // namespace
}  // namespace sslsweep
