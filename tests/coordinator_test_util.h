// A Coordinator over a real SQLite store and checkpoint directory in a temp
// directory, driven by a FakeClock, with one-line helpers for the calls
// tests make most. Restart() rebuilds the Coordinator (and reopens the
// store) on the same files, as a coordinator process restarted after
// kill -9 would.

#ifndef SSLSWEEP_TESTS_COORDINATOR_TEST_UTIL_H_
#define SSLSWEEP_TESTS_COORDINATOR_TEST_UTIL_H_

#include <memory>
#include <string>
#include <vector>
#include <utility>

#include "coordinator/coordinator.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace sslsweep {

// A grid of 2 learning rates (0.01, 0.001) x 2 seeds (1, 2) named `name`,
// whose trials take the indexes 1..4 in that order; its metric is
// ncc_test_acc/fine/embedding (maximize).
inline std::string LrBySeedSweep(const std::string& name) {
  return "name: " + name + R"(
method: grid
metric: {name: ncc_test_acc/fine/embedding, goal: maximize}
parameters:
  optim.lr: {values: [0.01, 0.001]}
  seed: {values: [1, 2]}
trial:
  epochs: 2
  data: {dataset: synthetic, train_samples: 64}
  optim: {batch_size: 32}
)";
}

class CoordinatorFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    db_path_ = FreshTempDir("db") + "/sslsweep.db";
    checkpoint_dir_ = FreshTempDir("checkpoints");
    Open();
  }

  // Opens the store and checkpoints and builds a Coordinator over them.
  void Open() {
    auto store = Store::Open({db_path_});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    auto checkpoints = CheckpointFiles::Open({checkpoint_dir_});
    ASSERT_TRUE(checkpoints.ok()) << checkpoints.status();
    checkpoints_ = std::move(*checkpoints);
    coordinator_ =
        std::make_unique<Coordinator>(store_.get(), checkpoints_.get(), &clock_, options_);
  }

  // A new Coordinator on the same files, recovered as at a process start.
  void Restart() {
    coordinator_.reset();
    store_.reset();
    checkpoints_.reset();
    Open();
    ASSERT_TRUE(coordinator_->Recover().ok());
  }

  int64_t Submit(const std::string& yaml) {
    v1::SubmitSweepRequest request;
    request.set_yaml(yaml);
    request.set_source_name("sweep.yaml");
    auto response = coordinator_->SubmitSweep(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->sweep_id() : 0;
  }

  std::string Register() {
    v1::RegisterWorkerRequest request;
    request.set_hostname("host");
    auto response = coordinator_->RegisterWorker(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->worker_id() : "";
  }

  absl::StatusOr<v1::LeaseTrialResponse> TryLease(const std::string& worker) {
    v1::LeaseTrialRequest request;
    request.set_worker_id(worker);
    return coordinator_->LeaseTrial(request);
  }

  v1::TrialAssignment Lease(const std::string& worker) {
    auto response = TryLease(worker);
    EXPECT_TRUE(response.ok()) << response.status();
    EXPECT_TRUE(response.ok() && response->granted()) << worker << " got no trial";
    return response.ok() ? response->trial() : v1::TrialAssignment();
  }

  absl::StatusOr<v1::ReportMetricsResponse> Report(const std::string& worker,
                                                   const v1::TrialAssignment& trial, int epoch,
                                                   double value,
                                                   const std::string& name =
                                                       "ncc_test_acc/fine/embedding") {
    return Report(worker, trial, epoch, {{name, value}});
  }

  // One report of several metrics (name, value) for `epoch`.
  absl::StatusOr<v1::ReportMetricsResponse> Report(
      const std::string& worker, const v1::TrialAssignment& trial, int epoch,
      const std::vector<std::pair<std::string, double>>& metrics) {
    v1::ReportMetricsRequest request;
    request.set_worker_id(worker);
    request.set_trial_id(trial.trial_id());
    request.set_attempt(trial.attempt());
    request.set_epoch(epoch);
    for (const auto& [name, value] : metrics) {
      v1::Metric* m = request.add_metrics();
      m->set_name(name);
      m->set_value(value);
    }
    return coordinator_->ReportMetrics(request);
  }

  absl::Status Finish(const std::string& worker, const v1::TrialAssignment& trial) {
    v1::FinishTrialRequest request;
    request.set_worker_id(worker);
    request.set_trial_id(trial.trial_id());
    request.set_attempt(trial.attempt());
    return coordinator_->FinishTrial(request).status();
  }

  absl::StatusOr<v1::FailTrialResponse> Fail(const std::string& worker,
                                             const v1::TrialAssignment& trial,
                                             v1::FailureKind kind, const std::string& reason) {
    v1::FailTrialRequest request;
    request.set_worker_id(worker);
    request.set_trial_id(trial.trial_id());
    request.set_attempt(trial.attempt());
    request.set_kind(kind);
    request.set_reason(reason);
    return coordinator_->FailTrial(request);
  }

  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const std::string& worker,
                                                  std::vector<int64_t> running = {}) {
    v1::HeartbeatRequest request;
    request.set_worker_id(worker);
    for (int64_t id : running) request.add_running_trial_ids(id);
    return coordinator_->Heartbeat(request);
  }

  v1::GetSweepStatusResponse Status(int64_t sweep_id) {
    v1::GetSweepStatusRequest request;
    request.set_sweep_id(sweep_id);
    auto response = coordinator_->GetSweepStatus(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : v1::GetSweepStatusResponse();
  }

  // The trial's status within its sweep.
  v1::TrialStatus TrialStatusOf(int64_t sweep_id, int64_t trial_id) {
    const v1::GetSweepStatusResponse status = Status(sweep_id);
    for (const v1::TrialStatus& t : status.trials()) {
      if (t.trial_id() == trial_id) return t;
    }
    ADD_FAILURE() << "no trial " << trial_id << " in sweep " << sweep_id;
    return v1::TrialStatus();
  }

  FakeClock clock_;
  CoordinatorOptions options_;
  std::string db_path_;
  std::string checkpoint_dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<CheckpointFiles> checkpoints_;
  std::unique_ptr<Coordinator> coordinator_;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_TESTS_COORDINATOR_TEST_UTIL_H_
