// The Coordinator's fault tolerance without a server or sleeps: leases
// judged by a FakeClock, fencing of stale attempts, checkpoints handed from
// a lost worker to the next, the failure policy, restarts on the same files,
// scheduling order, and early termination.

#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "proto/checkpoint_crc32.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator_test_util.h"

namespace sslsweep {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// One trial unless a test adds parameters; 5 epochs.
std::string OneTrialSweep(const std::string& extra = "") {
  return "method: grid\n" + extra +
         "trial: {epochs: 5, data: {dataset: synthetic, train_samples: 64}, "
         "optim: {batch_size: 32}}\n";
}

class CoordinatorLeaseTest : public CoordinatorFixture {
 protected:
  // Uploads `bytes` as the attempt's checkpoint after `epoch` epochs.
  absl::Status Upload(const std::string& worker, const v1::TrialAssignment& trial, int epoch,
                      const std::string& bytes, uint32_t announced_crc = 0) {
    v1::CheckpointChunk first;
    first.set_worker_id(worker);
    first.set_trial_id(trial.trial_id());
    first.set_attempt(trial.attempt());
    first.set_epoch(epoch);
    first.set_total_bytes(static_cast<int64_t>(bytes.size()));
    first.set_crc32(announced_crc != 0 ? announced_crc : CheckpointCrc32(0, bytes));
    const size_t half = bytes.size() / 2;
    first.set_data(bytes.substr(0, half));
    auto upload = coordinator_->BeginCheckpointUpload(first);
    if (!upload.ok()) return upload.status();
    v1::CheckpointChunk second = first;
    second.clear_total_bytes();
    second.clear_crc32();
    second.set_data(bytes.substr(half));
    if (auto s = (*upload)->Append(second); !s.ok()) return s;
    return (*upload)->Finish().status();
  }

  // The checkpoint bytes the coordinator hands to `worker` for `trial`.
  absl::StatusOr<std::string> Download(const std::string& worker,
                                       const v1::TrialAssignment& trial) {
    v1::DownloadCheckpointRequest request;
    request.set_worker_id(worker);
    request.set_trial_id(trial.trial_id());
    request.set_attempt(trial.attempt());
    std::string bytes;
    int64_t announced = -1;
    uint32_t crc = 0;
    absl::Status status = coordinator_->DownloadCheckpoint(
        request, 7, [&](const v1::CheckpointChunk& chunk) {
          if (announced < 0) {
            announced = chunk.total_bytes();
            crc = chunk.crc32();
          }
          bytes += chunk.data();
          return true;
        });
    if (!status.ok()) return status;
    EXPECT_EQ(announced, static_cast<int64_t>(bytes.size()));
    EXPECT_EQ(crc, CheckpointCrc32(0, bytes));
    return bytes;
  }
};

TEST_F(CoordinatorLeaseTest, HeartbeatsKeepALeaseAndSilenceLosesIt) {
  const int64_t sweep = Submit(OneTrialSweep());
  const std::string worker = Register();
  const v1::TrialAssignment trial = Lease(worker);
  for (int i = 0; i < 5; ++i) {
    clock_.AdvanceMs(options_.lease_ms / 2);
    ASSERT_TRUE(Heartbeat(worker, {trial.trial_id()}).ok());
    auto expired = coordinator_->ExpireLeases();
    ASSERT_TRUE(expired.ok()) << expired.status();
    EXPECT_TRUE(expired->empty()) << "heartbeat " << i;
  }
  clock_.AdvanceMs(options_.lease_ms + 1);
  auto expired = coordinator_->ExpireLeases();
  ASSERT_TRUE(expired.ok()) << expired.status();
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_EQ((*expired)[0].trial_id, trial.trial_id());
  EXPECT_EQ((*expired)[0].worker_id, worker);
  EXPECT_TRUE((*expired)[0].requeued);
  const v1::TrialStatus status = TrialStatusOf(sweep, trial.trial_id());
  EXPECT_EQ(status.state(), v1::TRIAL_PENDING);
  EXPECT_EQ(status.failures(), 1);
}

TEST_F(CoordinatorLeaseTest, LostTrialResumesElsewhereFromItsCheckpointAndFencesTheOld) {
  const int64_t sweep = Submit(OneTrialSweep());
  const std::string lost = Register();
  const std::string next = Register();
  const v1::TrialAssignment first = Lease(lost);
  EXPECT_EQ(first.checkpoint_epoch(), -1);
  ASSERT_TRUE(Report(lost, first, 0, 0.1).ok());
  ASSERT_TRUE(Report(lost, first, 1, 0.2).ok());
  const std::string bytes = "checkpoint after epoch 1: " + std::string(1000, 'x');
  ASSERT_TRUE(Upload(lost, first, 1, bytes).ok());
  EXPECT_EQ(TrialStatusOf(sweep, first.trial_id()).checkpoint_epoch(), 1);

  clock_.AdvanceMs(options_.lease_ms + 1);
  ASSERT_TRUE(Heartbeat(next).ok());
  ASSERT_TRUE(coordinator_->ExpireLeases().ok());
  const v1::TrialAssignment second = Lease(next);
  EXPECT_EQ(second.trial_id(), first.trial_id());
  EXPECT_EQ(second.attempt(), 2);
  EXPECT_EQ(second.checkpoint_epoch(), 1);
  auto downloaded = Download(next, second);
  ASSERT_TRUE(downloaded.ok()) << downloaded.status();
  EXPECT_EQ(*downloaded, bytes);

  // The old worker comes back: everything it sends is refused and its
  // heartbeat tells it to stop; nothing it sent changes the store.
  EXPECT_EQ(Report(lost, first, 2, 0.99).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Upload(lost, first, 2, "stale").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Finish(lost, first).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Download(lost, first).status().code(), absl::StatusCode::kFailedPrecondition);
  auto beat = Heartbeat(lost, {first.trial_id()});
  ASSERT_TRUE(beat.ok());
  EXPECT_THAT(beat->stop_trial_ids(), ElementsAre(first.trial_id()));

  // The new attempt measures epoch 1 again: stored once, the first value kept.
  auto again = Report(next, second, 1, 0.25);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->rows_written(), 0);
  ASSERT_TRUE(Report(next, second, 2, 0.3).ok());
  ASSERT_TRUE(Finish(next, second).ok());
  auto metrics = store_->TrialMetrics(first.trial_id());
  ASSERT_TRUE(metrics.ok());
  ASSERT_EQ(metrics->size(), 3u);
  EXPECT_DOUBLE_EQ((*metrics)[1].metrics[0].value, 0.2);
  EXPECT_DOUBLE_EQ((*metrics)[2].metrics[0].value, 0.3);
  const v1::TrialStatus status = TrialStatusOf(sweep, first.trial_id());
  EXPECT_EQ(status.state(), v1::TRIAL_SUCCEEDED);
  EXPECT_EQ(status.attempt(), 2);
  EXPECT_EQ(status.failures(), 1);
}

TEST_F(CoordinatorLeaseTest, AGangLearnsItsRanksMeetsAtRankZeroAndResumesAsOne) {
  const int64_t sweep = Submit(OneTrialSweep("resources: {ranks: 2}\n"));
  const std::string a = Register();
  const std::string b = Register();
  auto waiting = TryLease(a);
  ASSERT_TRUE(waiting.ok());
  EXPECT_FALSE(waiting->granted());
  const v1::TrialAssignment rank0 = Lease(b);
  const v1::TrialAssignment rank1 = Lease(a);
  EXPECT_EQ(rank0.trial_id(), rank1.trial_id());
  EXPECT_EQ(rank0.world_size(), 2);
  EXPECT_EQ(rank0.rank(), 0);
  EXPECT_EQ(rank1.world_size(), 2);
  EXPECT_EQ(rank1.rank(), 1);
  const v1::TrialStatus status = TrialStatusOf(sweep, rank0.trial_id());
  EXPECT_EQ(status.ranks(), 2);
  EXPECT_THAT(status.rank_worker_ids(), ElementsAre(b, a));

  // Rank 1 polls until rank 0 reports where it listens; bad fields are
  // refused by name.
  v1::GetRendezvousRequest get;
  get.set_worker_id(a);
  get.set_trial_id(rank1.trial_id());
  get.set_attempt(rank1.attempt());
  auto pending = coordinator_->GetRendezvous(get);
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_FALSE(pending->ready());
  EXPECT_EQ(pending->retry_after_ms(), options_.rendezvous_retry_ms);
  v1::ReportRendezvousRequest report;
  report.set_worker_id(b);
  report.set_trial_id(rank0.trial_id());
  report.set_attempt(rank0.attempt());
  report.mutable_rendezvous()->set_master_address("node b");
  report.mutable_rendezvous()->set_master_port(29500);
  EXPECT_THAT(coordinator_->ReportRendezvous(report).status().message(),
              HasSubstr("rendezvous.master_address: 'node b' has a character outside"));
  report.mutable_rendezvous()->set_master_address("node-b");
  report.mutable_rendezvous()->set_master_port(0);
  EXPECT_THAT(coordinator_->ReportRendezvous(report).status().message(),
              HasSubstr("rendezvous.master_port: expected 1 to 65535, got 0"));
  report.mutable_rendezvous()->set_master_port(29500);
  ASSERT_TRUE(coordinator_->ReportRendezvous(report).ok());
  auto ready = coordinator_->GetRendezvous(get);
  ASSERT_TRUE(ready.ok());
  EXPECT_TRUE(ready->ready());
  EXPECT_EQ(ready->rendezvous().master_address(), "node-b");
  EXPECT_EQ(ready->rendezvous().master_port(), 29500);

  // Rank 0 reports and checkpoints; rank 1 may not upload.
  ASSERT_TRUE(Report(b, rank0, 1, 0.5).ok());
  ASSERT_TRUE(Upload(b, rank0, 1, "epoch 1 of the gang").ok());
  EXPECT_EQ(Upload(a, rank1, 1, "from rank 1").code(), absl::StatusCode::kFailedPrecondition);

  // Rank 1 loses its peer: the gang fails as one and is retried, and both
  // ranks of the retry resume from the checkpoint.
  auto failed = Fail(a, rank1, v1::FAILURE_PEER_LOST, "lost a peer rank");
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_TRUE(failed->will_retry());
  auto beat = Heartbeat(b, {rank0.trial_id()});
  ASSERT_TRUE(beat.ok());
  EXPECT_THAT(beat->stop_trial_ids(), ElementsAre(rank0.trial_id()));
  ASSERT_FALSE(TryLease(b)->granted());
  const v1::TrialAssignment retry0 = Lease(a);
  const v1::TrialAssignment retry1 = Lease(b);
  EXPECT_EQ(retry0.attempt(), 2);
  EXPECT_EQ(retry1.rank(), 1);
  EXPECT_EQ(retry1.checkpoint_epoch(), 1);
  auto downloaded = Download(b, retry1);
  ASSERT_TRUE(downloaded.ok()) << downloaded.status();
  EXPECT_EQ(*downloaded, "epoch 1 of the gang");
  EXPECT_EQ(TrialStatusOf(sweep, rank0.trial_id()).failures(), 1);
}

TEST_F(CoordinatorLeaseTest, CheckpointWithWrongCrcIsRefusedAndNotRecorded) {
  const int64_t sweep = Submit(OneTrialSweep());
  const std::string worker = Register();
  const v1::TrialAssignment trial = Lease(worker);
  const absl::Status status = Upload(worker, trial, 1, "some bytes", 12345);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(status.message(), HasSubstr("CRC"));
  EXPECT_EQ(TrialStatusOf(sweep, trial.trial_id()).checkpoint_epoch(), -1);
  EXPECT_EQ(Download(worker, trial).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CoordinatorLeaseTest, RestartGivesRunningTrialsAGracePeriod) {
  const int64_t sweep = Submit(OneTrialSweep());
  const std::string worker = Register();
  const v1::TrialAssignment trial = Lease(worker);
  ASSERT_TRUE(Report(worker, trial, 0, 0.5).ok());
  // The coordinator is down for longer than a lease.
  clock_.AdvanceMs(3 * options_.lease_ms);
  Restart();
  auto expired = coordinator_->ExpireLeases();
  ASSERT_TRUE(expired.ok());
  EXPECT_TRUE(expired->empty());
  // The worker reconnects with its old id and carries on.
  auto beat = Heartbeat(worker, {trial.trial_id()});
  ASSERT_TRUE(beat.ok()) << beat.status();
  EXPECT_EQ(beat->stop_trial_ids_size(), 0);
  ASSERT_TRUE(Report(worker, trial, 1, 0.6).ok());
  ASSERT_TRUE(Finish(worker, trial).ok());
  const v1::TrialStatus status = TrialStatusOf(sweep, trial.trial_id());
  EXPECT_EQ(status.state(), v1::TRIAL_SUCCEEDED);
  EXPECT_EQ(status.attempt(), 1);
  EXPECT_EQ(status.epoch(), 1);
}

TEST_F(CoordinatorLeaseTest, CrashesRetryUntilMaxAttemptsThenFail) {
  const int64_t sweep = Submit(OneTrialSweep("max_attempts: 2\n"));
  const std::string a = Register();
  const std::string b = Register();
  const v1::TrialAssignment first = Lease(a);
  auto retry = Fail(a, first, v1::FAILURE_CRASH, "sslsweep-train killed by signal 11");
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->will_retry());
  const v1::TrialAssignment second = Lease(b);
  EXPECT_EQ(second.attempt(), 2);
  auto last = Fail(b, second, v1::FAILURE_CRASH, "sslsweep-train killed by signal 6");
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_FALSE(last->will_retry());
  const v1::GetSweepStatusResponse status = Status(sweep);
  EXPECT_EQ(status.sweep().state(), v1::SWEEP_FINISHED);
  EXPECT_EQ(status.trials(0).state(), v1::TRIAL_FAILED);
  EXPECT_EQ(status.trials(0).failures(), 2);
  EXPECT_THAT(status.trials(0).failure_reason(), HasSubstr("signal 6"));
  // A retried FailTrial (its answer was lost) is answered the same way.
  auto repeated = Fail(b, second, v1::FAILURE_CRASH, "sslsweep-train killed by signal 6");
  ASSERT_TRUE(repeated.ok()) << repeated.status();
  EXPECT_FALSE(repeated->will_retry());
}

TEST_F(CoordinatorLeaseTest, ReleasedTrialGoesBackWithoutCountingAFailure) {
  const int64_t sweep = Submit(OneTrialSweep());
  const std::string worker = Register();
  const v1::TrialAssignment trial = Lease(worker);
  auto released = Fail(worker, trial, v1::FAILURE_RELEASED, "the worker was stopped");
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_TRUE(released->will_retry());
  const v1::TrialStatus status = TrialStatusOf(sweep, trial.trial_id());
  EXPECT_EQ(status.state(), v1::TRIAL_PENDING);
  EXPECT_EQ(status.failures(), 0);
}

TEST_F(CoordinatorLeaseTest, WorkerFailingTrialsInARowIsQuarantinedUntilReleased) {
  Submit("method: grid\nparameters:\n  seed: {values: [1, 2, 3, 4]}\n"
         "trial: {epochs: 2, data: {dataset: synthetic, train_samples: 64}, "
         "optim: {batch_size: 32}}\n");
  const std::string bad = Register();
  for (int i = 0; i < options_.failure_policy.quarantine_after; ++i) {
    const v1::TrialAssignment trial = Lease(bad);
    ASSERT_TRUE(Fail(bad, trial, v1::FAILURE_CRASH, "CUDA error: an illegal memory access")
                    .ok());
  }
  auto refused = TryLease(bad);
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_FALSE(refused->granted());
  EXPECT_THAT(refused->refused_reason(), HasSubstr("quarantined"));
  auto beat = Heartbeat(bad);
  ASSERT_TRUE(beat.ok());
  EXPECT_TRUE(beat->quarantined());
  auto workers = coordinator_->ListWorkers(v1::ListWorkersRequest());
  ASSERT_TRUE(workers.ok());
  ASSERT_EQ(workers->workers_size(), 1);
  EXPECT_EQ(workers->workers(0).state(), v1::WORKER_QUARANTINED);
  EXPECT_THAT(workers->workers(0).quarantine_reason(), HasSubstr("illegal memory access"));

  // A healthy worker still gets the (requeued) trials: the sweep goes on.
  const std::string good = Register();
  const v1::TrialAssignment trial = Lease(good);
  ASSERT_TRUE(Finish(good, trial).ok());

  v1::UnquarantineWorkerRequest release;
  release.set_worker_id(bad);
  ASSERT_TRUE(coordinator_->UnquarantineWorker(release).ok());
  auto granted = TryLease(bad);
  ASSERT_TRUE(granted.ok());
  EXPECT_TRUE(granted->granted());
}

TEST_F(CoordinatorLeaseTest, DivergenceFailsTheTrialButNotTheWorker) {
  Submit("method: grid\nparameters:\n  seed: {values: [1, 2, 3, 4]}\n"
         "trial: {epochs: 2, data: {dataset: synthetic, train_samples: 64}, "
         "optim: {batch_size: 32}}\n");
  const std::string worker = Register();
  for (int i = 0; i < 4; ++i) {
    const v1::TrialAssignment trial = Lease(worker);
    auto failed = Fail(worker, trial, v1::FAILURE_DIVERGED, "diverged: loss is nan");
    ASSERT_TRUE(failed.ok()) << failed.status();
    EXPECT_FALSE(failed->will_retry());
  }
  auto workers = coordinator_->ListWorkers(v1::ListWorkersRequest());
  ASSERT_TRUE(workers.ok());
  EXPECT_EQ(workers->workers(0).state(), v1::WORKER_ALIVE);
}

TEST_F(CoordinatorLeaseTest, CancelledTrialIsStoppedAtTheNextHeartbeat) {
  const int64_t sweep = Submit(OneTrialSweep());
  const std::string worker = Register();
  const v1::TrialAssignment trial = Lease(worker);
  v1::CancelTrialRequest cancel;
  cancel.set_trial_id(trial.trial_id());
  auto cancelled = coordinator_->CancelTrial(cancel);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_TRUE(cancelled->cancelled());
  auto beat = Heartbeat(worker, {trial.trial_id()});
  ASSERT_TRUE(beat.ok());
  EXPECT_THAT(beat->stop_trial_ids(), ElementsAre(trial.trial_id()));
  EXPECT_EQ(Report(worker, trial, 0, 0.5).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Status(sweep).sweep().state(), v1::SWEEP_FINISHED);
  auto again = coordinator_->CancelTrial(cancel);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->cancelled());
}

TEST_F(CoordinatorLeaseTest, PriorityAndConcurrencyLimitOrderTheLeases) {
  const int64_t low = Submit(OneTrialSweep("name: low\nparameters:\n  seed: {values: [1, 2]}\n"));
  const int64_t high = Submit(OneTrialSweep(
      "name: high\npriority: 5\nmax_concurrent: 1\nparameters:\n  seed: {values: [1, 2]}\n"));
  const std::string w1 = Register();
  const std::string w2 = Register();
  const std::string w3 = Register();
  EXPECT_EQ(Lease(w1).sweep_id(), high);
  EXPECT_EQ(Lease(w2).sweep_id(), low);  // high is at its limit of 1
  const v1::TrialAssignment third = Lease(w3);
  EXPECT_EQ(third.sweep_id(), low);
  ASSERT_TRUE(Finish(w3, third).ok());
  EXPECT_EQ(Status(high).sweep().max_concurrent(), 1);
  EXPECT_EQ(Status(high).sweep().priority(), 5);
}

// Early termination: four trials of a maximised metric, one far behind.
constexpr char kHyperbandSweep[] =
    "method: grid\n"
    "metric: {name: ncc_test_acc/fine/embedding, goal: maximize}\n"
    "early_terminate: {type: hyperband, min_iter: 1, eta: 2}\n"
    "parameters:\n  seed: {values: [1, 2, 3, 4]}\n"
    "trial: {epochs: 5, data: {dataset: synthetic, train_samples: 64}, "
    "optim: {batch_size: 32}}\n";

class EarlyTerminationTest : public CoordinatorFixture {
 protected:
  // Leases the four trials, then reports epochs 0..4 round-robin with
  // `value(trial, epoch)`; returns "trial@epoch" of each stop answer.
  // With `restart`, the coordinator restarts before every report.
  std::vector<std::string> Run(bool restart) {
    Submit(kHyperbandSweep);
    std::vector<std::pair<std::string, v1::TrialAssignment>> leases;
    for (int i = 0; i < 4; ++i) {
      const std::string worker = Register();
      leases.emplace_back(worker, Lease(worker));
    }
    std::vector<std::string> stops;
    std::set<int> stopped;
    for (int epoch = 0; epoch < 5; ++epoch) {
      for (int i = 0; i < 4; ++i) {
        if (stopped.count(i) > 0) continue;
        if (restart) Restart();
        const double value = i == 3 ? 0.1 + 0.01 * epoch : 0.9 - 0.05 * i + 0.01 * epoch;
        auto response = Report(leases[i].first, leases[i].second, epoch, value);
        if (!response.ok()) {
          // Pruned while another trial reported: refused from then on.
          EXPECT_EQ(response.status().code(), absl::StatusCode::kFailedPrecondition);
          stops.push_back(absl::StrCat(i, "@", epoch, " (refused)"));
          stopped.insert(i);
          continue;
        }
        if (response->stop()) {
          EXPECT_THAT(response->stop_reason(), HasSubstr("hyperband"));
          stops.push_back(absl::StrCat(i, "@", epoch));
          stopped.insert(i);
        }
      }
    }
    return stops;
  }
};

TEST_F(EarlyTerminationTest, TheTrialFarBehindIsPrunedAndTheBestIsNot) {
  const std::vector<std::string> stops = Run(/*restart=*/false);
  // Trials report in turn, so at the first band the thresholds come from
  // the trials that reported so far (as in W&B): trial 2 is behind the
  // two before it when it first reports and is stopped too.
  EXPECT_THAT(stops, ::testing::ElementsAre("2@0", "3@0"));
  const v1::GetSweepStatusResponse status = Status(1);
  EXPECT_EQ(status.trials(3).state(), v1::TRIAL_PRUNED);
  EXPECT_THAT(status.trials(3).failure_reason(), HasSubstr("hyperband"));
  EXPECT_EQ(status.sweep().trials_pruned(), static_cast<int>(stops.size()));
}

TEST_F(EarlyTerminationTest, ARestartBeforeEveryReportDecidesTheSame) {
  const std::vector<std::string> uninterrupted = Run(/*restart=*/false);
  SetUp();  // fresh files
  const std::vector<std::string> restarted = Run(/*restart=*/true);
  EXPECT_EQ(restarted, uninterrupted);
}

}  // namespace
}  // namespace sslsweep
