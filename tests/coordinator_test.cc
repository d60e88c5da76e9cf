// The Coordinator's logic without a server: a real SQLite store in a temp
// directory and a FakeClock. Leases, failures, checkpoints and early
// termination are in coordinator_lease_test.cc.

#include "coordinator/coordinator.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator_test_util.h"

namespace sslsweep {
namespace {

using ::testing::HasSubstr;

constexpr char kSweep[] = R"(name: unit
method: grid
parameters:
  optim.lr: {values: [0.01, 0.001]}
  seed: {values: [1, 2]}
trial:
  epochs: 3
  data: {dataset: synthetic, train_samples: 64}
  optim: {batch_size: 32}
)";

class CoordinatorTest : public CoordinatorFixture {};

TEST_F(CoordinatorTest, SubmitExpandsTheGridIntoPendingTrials) {
  const int64_t id = Submit(kSweep);
  v1::GetSweepStatusRequest request;
  request.set_sweep_id(id);
  auto status = coordinator_->GetSweepStatus(request);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->sweep().trials_total(), 4);
  EXPECT_EQ(status->sweep().trials_pending(), 4);
  ASSERT_EQ(status->trials_size(), 4);
  EXPECT_EQ(status->trials(1).params(0).path(), "optim.lr");
  EXPECT_EQ(status->trials(1).params(0).value(), "0.01");
  EXPECT_EQ(status->trials(1).params(1).value(), "2");
  EXPECT_EQ(status->trials(0).epochs_total(), 3);
}

TEST_F(CoordinatorTest, BadSweepIsRejectedAndStoresNothing) {
  v1::SubmitSweepRequest request;
  request.set_source_name("bad.yaml");
  request.set_yaml("method: grid\nparameters:\n  optim.lrr: {values: [1]}\n");
  auto response = coordinator_->SubmitSweep(request);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(response.status().message(), HasSubstr("bad.yaml:3:"));
  request.set_yaml("");
  EXPECT_FALSE(coordinator_->SubmitSweep(request).ok());
  auto sweeps = coordinator_->ListSweeps({});
  ASSERT_TRUE(sweeps.ok());
  EXPECT_EQ(sweeps->sweeps_size(), 0);
}

TEST_F(CoordinatorTest, DryRunListsTheTrialsAndStoresNothing) {
  v1::SubmitSweepRequest request;
  request.set_source_name("sweep.yaml");
  request.set_yaml(kSweep);
  request.set_dry_run(true);
  auto response = coordinator_->SubmitSweep(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->sweep_id(), 0);
  EXPECT_EQ(response->trial_count(), 4);
  ASSERT_EQ(response->trials_size(), 4);
  const v1::PlannedTrial& last = response->trials(3);
  EXPECT_EQ(last.index(), 3);
  EXPECT_EQ(last.epochs(), 3);
  EXPECT_EQ(last.ranks(), 1);
  ASSERT_EQ(last.params_size(), 2);
  EXPECT_EQ(last.params(0).path(), "optim.lr");
  EXPECT_EQ(last.params(0).value(), "0.001");
  EXPECT_EQ(last.params(1).path(), "seed");
  EXPECT_EQ(last.params(1).value(), "2");
  auto sweeps = coordinator_->ListSweeps({});
  ASSERT_TRUE(sweeps.ok());
  EXPECT_EQ(sweeps->sweeps_size(), 0);
  // A dry run validates as a submission does.
  request.set_yaml("method: grid\nparameters:\n  optim.lrr: {values: [1]}\n");
  EXPECT_EQ(coordinator_->SubmitSweep(request).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CoordinatorTest, StatusShowsTheMetricElapsedTimeAndEta) {
  const int64_t sweep = Submit(std::string(kSweep) +
                               "metric: {name: ncc_test_acc/fine/embedding, goal: maximize}\n");
  const std::string worker = Register();
  clock_.AdvanceMs(5'000);
  const v1::TrialAssignment trial = Lease(worker);
  for (int epoch = 0; epoch <= 1; ++epoch) {
    v1::ReportMetricsRequest report;
    report.set_worker_id(worker);
    report.set_trial_id(trial.trial_id());
    report.set_attempt(trial.attempt());
    report.set_epoch(epoch);
    auto add = [&](const char* name, double value) {
      v1::Metric* m = report.add_metrics();
      m->set_name(name);
      m->set_value(value);
    };
    add("ncc_test_acc/fine/embedding", 0.5 + 0.1 * epoch);
    if (epoch > 0) add("time/epoch_seconds", 20.0);
    ASSERT_TRUE(coordinator_->ReportMetrics(report).ok());
  }
  const v1::GetSweepStatusResponse status = Status(sweep);
  EXPECT_EQ(status.sweep().metric_name(), "ncc_test_acc/fine/embedding");
  const v1::TrialStatus& running = status.trials(0);
  EXPECT_DOUBLE_EQ(running.metric_value(), 0.6);
  EXPECT_EQ(running.started_at_ms(), clock_.NowMs());
  EXPECT_EQ(running.ended_at_ms(), 0);
  EXPECT_DOUBLE_EQ(running.eta_seconds(), 2 * 20.0);  // 2 of 3 epochs left
  const v1::TrialStatus& pending = status.trials(1);
  EXPECT_TRUE(std::isnan(pending.metric_value()));
  EXPECT_EQ(pending.started_at_ms(), 0);
  EXPECT_EQ(pending.eta_seconds(), -1);
}

TEST_F(CoordinatorTest, LeaseReportFinishAndResults) {
  const int64_t sweep = Submit(kSweep);
  const std::string worker = Register();
  v1::TrialAssignment trial = Lease(worker);
  EXPECT_EQ(trial.attempt(), 1);
  EXPECT_EQ(trial.sweep_id(), sweep);
  EXPECT_THAT(trial.config_yaml(), HasSubstr("lr: 0.01"));

  auto first = Report(worker, trial, 0, 0.25);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->rows_written(), 1);
  auto retry = Report(worker, trial, 0, 0.25);
  ASSERT_TRUE(retry.ok());
  EXPECT_EQ(retry->rows_written(), 0);  // exactly once
  ASSERT_TRUE(Report(worker, trial, 3, 0.75).ok());

  v1::FinishTrialRequest finish;
  finish.set_worker_id(worker);
  finish.set_trial_id(trial.trial_id());
  finish.set_attempt(trial.attempt());
  ASSERT_TRUE(coordinator_->FinishTrial(finish).ok());

  v1::GetResultsRequest request;
  request.set_sweep_id(sweep);
  auto results = coordinator_->GetResults(request);
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_THAT(results->param_columns(), ::testing::ElementsAre("optim.lr", "seed"));
  ASSERT_THAT(results->metric_columns(),
              ::testing::ElementsAre("ncc_test_acc/fine/embedding"));
  ASSERT_EQ(results->rows_size(), 4);
  EXPECT_EQ(results->rows(0).state(), v1::TRIAL_SUCCEEDED);
  EXPECT_EQ(results->rows(0).epoch(), 3);
  EXPECT_DOUBLE_EQ(results->rows(0).metrics(0), 0.75);
  EXPECT_EQ(results->rows(1).epoch(), -1);
  EXPECT_TRUE(std::isnan(results->rows(1).metrics(0)));
}

TEST_F(CoordinatorTest, StaleOrForeignReportsAreRefused) {
  Submit(kSweep);
  const std::string worker = Register();
  const std::string other = Register();
  v1::TrialAssignment trial = Lease(worker);

  v1::TrialAssignment stale = trial;
  stale.set_attempt(trial.attempt() + 1);
  EXPECT_EQ(Report(worker, stale, 0, 0.5).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Report(other, trial, 0, 0.5).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto metrics = store_->TrialMetrics(trial.trial_id());
  ASSERT_TRUE(metrics.ok());
  EXPECT_TRUE(metrics->empty());
}

TEST_F(CoordinatorTest, MalformedFieldsNameTheField) {
  Submit(kSweep);
  const std::string worker = Register();
  v1::TrialAssignment trial = Lease(worker);
  EXPECT_THAT(Report(worker, trial, -1, 0.5).status().message(), HasSubstr("epoch"));
  EXPECT_THAT(Report(worker, trial, 0, NAN).status().message(), HasSubstr("not finite"));
  EXPECT_THAT(Report("", trial, 0, 0.5).status().message(), HasSubstr("worker_id"));

  v1::GetSweepStatusRequest status;
  status.set_sweep_id(0);
  EXPECT_THAT(coordinator_->GetSweepStatus(status).status().message(), HasSubstr("sweep_id"));
  status.set_sweep_id(99);
  EXPECT_EQ(coordinator_->GetSweepStatus(status).status().code(), absl::StatusCode::kNotFound);

  v1::LeaseTrialRequest lease;
  lease.set_worker_id("w-999");
  EXPECT_EQ(coordinator_->LeaseTrial(lease).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CoordinatorTest, HeartbeatTellsWorkerToStopCancelledTrials) {
  const int64_t sweep = Submit(kSweep);
  const std::string worker = Register();
  v1::TrialAssignment trial = Lease(worker);
  v1::HeartbeatRequest beat;
  beat.set_worker_id(worker);
  beat.add_running_trial_ids(trial.trial_id());
  auto before = coordinator_->Heartbeat(beat);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->stop_trial_ids_size(), 0);

  v1::CancelSweepRequest cancel;
  cancel.set_sweep_id(sweep);
  auto cancelled = coordinator_->CancelSweep(cancel);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->trials_cancelled(), 4);
  auto after = coordinator_->Heartbeat(beat);
  ASSERT_TRUE(after.ok());
  EXPECT_THAT(after->stop_trial_ids(), ::testing::ElementsAre(trial.trial_id()));
}

TEST_F(CoordinatorTest, DivergedTrialFailsAtOnceWithItsReasonAndSweepFinishes) {
  const int64_t sweep = Submit(
      "method: grid\nparameters:\n  seed: {value: 1}\n"
      "trial: {data: {dataset: synthetic, train_samples: 64}, optim: {batch_size: 32}}\n");
  const std::string worker = Register();
  v1::TrialAssignment trial = Lease(worker);
  v1::FailTrialRequest fail;
  fail.set_worker_id(worker);
  fail.set_trial_id(trial.trial_id());
  fail.set_attempt(trial.attempt());
  fail.set_reason("sslsweep-train exit code 4: diverged: loss is nan at epoch 2 step 7");
  fail.set_kind(v1::FAILURE_DIVERGED);
  auto failed = coordinator_->FailTrial(fail);
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_FALSE(failed->will_retry());
  v1::GetSweepStatusRequest request;
  request.set_sweep_id(sweep);
  auto status = coordinator_->GetSweepStatus(request);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->sweep().state(), v1::SWEEP_FINISHED);
  EXPECT_EQ(status->trials(0).state(), v1::TRIAL_FAILED);
  EXPECT_THAT(status->trials(0).failure_reason(), HasSubstr("loss is nan"));
  EXPECT_EQ(status->trials(0).attempt(), 1);
}

}  // namespace
}  // namespace sslsweep
