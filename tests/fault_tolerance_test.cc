// Integration: what a cluster does to a sweep, done to real processes on
// loopback. Workers are SIGKILLed mid-trial and SIGSTOPped past their lease,
// the coordinator is SIGKILLed and restarted on the same database, trainers
// crash, one rank of a data-parallel gang is killed. Each test ends by checking the database: every metric row of every
// epoch of every trial exactly once, and the attempt counts.

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/process_test_util.h"

namespace sslsweep {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kEpochs = 8;

// A tiny trial of kEpochs epochs (about half a second each on one core),
// measuring 3 values at every epoch: epoch 0 has those 3, epochs 1..8 also
// the 4 loss values and the epoch time, 8 rows.
std::string Sweep(const std::string& extra, int trials = 1) {
  std::string seeds;
  for (int i = 1; i <= trials; ++i) absl::StrAppend(&seeds, i > 1 ? ", " : "", i);
  return absl::StrCat("name: faults\nmethod: grid\n", extra, "parameters:\n  seed: {values: [",
                      seeds, "]}\ntrial:\n  epochs: ", kEpochs,
                      "\n  threads: 1\n"
                      "  data: {dataset: synthetic, train_samples: 512, test_samples: 128,\n"
                      "         synthetic_classes: 4, synthetic_superclasses: 2}\n"
                      "  backbone: {depth: 2, width: 8}\n"
                      "  projector: {hidden: 32, out: 32}\n"
                      "  optim: {batch_size: 64, lr: 0.002}\n"
                      "  analysis: {layers: embedding, targets: fine, metrics: 'ncc,knn'}\n");
}

class FaultToleranceTest : public ProcessFixture {
 protected:
  // Short leases so that a lost worker is noticed within seconds.
  void StartShortLeaseCoordinator() {
    StartCoordinator({"--lease-ms", "2000", "--heartbeat-ms", "400"});
  }

  int64_t Submit(const std::string& yaml) {
    const std::string path = WriteFile(dir_ + "/sweep.yaml", yaml);
    CommandResult submitted = Cli({"submit", path});
    EXPECT_EQ(submitted.exit_code, 0) << submitted.err;
    return 1;
  }

  // Every trial of the database has exactly the rows of every epoch, each
  // once (the key forbids twice; this checks that none is missing).
  void ExpectEveryMetricOnce() {
    const auto trials = Query("SELECT id FROM trials ORDER BY id");
    ASSERT_FALSE(trials.empty());
    for (const auto& trial : trials) {
      const auto per_epoch = Query(absl::StrCat(
          "SELECT epoch, COUNT(*), COUNT(DISTINCT name) FROM metrics WHERE trial_id = ",
          trial[0], " GROUP BY epoch ORDER BY epoch"));
      ASSERT_EQ(per_epoch.size(), static_cast<size_t>(kEpochs + 1)) << "trial " << trial[0];
      for (int epoch = 0; epoch <= kEpochs; ++epoch) {
        EXPECT_EQ(per_epoch[epoch][0], std::to_string(epoch));
        EXPECT_EQ(per_epoch[epoch][1], epoch == 0 ? "3" : "8")
            << "trial " << trial[0] << " epoch " << epoch;
        EXPECT_EQ(per_epoch[epoch][1], per_epoch[epoch][2]);
      }
    }
  }

  // The outcomes of a trial's attempts, in order ("lost,succeeded").
  std::string Outcomes(int64_t trial_id) {
    return QueryValue(absl::StrCat(
        "SELECT group_concat(coalesce(outcome, 'running'), ',') FROM "
        "(SELECT outcome FROM attempts WHERE trial_id = ", trial_id, " ORDER BY attempt)"));
  }

  int CheckpointEpoch(int64_t trial_id) {
    const std::string value = QueryValue(
        absl::StrCat("SELECT coalesce(checkpoint_epoch, -1) FROM trials WHERE id = ", trial_id));
    return value.empty() ? -1 : std::stoi(value);
  }
};

TEST_F(FaultToleranceTest, KilledWorkersTrialResumesFromItsCheckpointElsewhere) {
  StartShortLeaseCoordinator();
  Submit(Sweep(""));
  const size_t first = StartWorker();
  ASSERT_TRUE(AwaitCondition([&] { return CheckpointEpoch(1) >= 2; }))
      << ReadFile(WorkerLog(first));
  workers_[first]->Signal(SIGKILL);  // its trainer dies with it (PDEATHSIG)
  workers_[first]->Wait();
  const int checkpoint = CheckpointEpoch(1);

  const size_t second = StartWorker();
  const v1::GetSweepStatusResponse status = AwaitSweep(1);
  ASSERT_EQ(status.trials(0).state(), v1::TRIAL_SUCCEEDED) << status.DebugString();
  EXPECT_EQ(status.trials(0).attempt(), 2);
  EXPECT_EQ(status.trials(0).failures(), 1);
  EXPECT_EQ(Outcomes(1), "lost,succeeded");
  ExpectEveryMetricOnce();

  // The second attempt began at the checkpoint, not at epoch 0: its trainer
  // said so, and measured only the epochs after it.
  const std::string log = ReadFile(WorkerLog(second));
  EXPECT_THAT(log, HasSubstr(absl::StrCat("checkpoint at epoch ")));
  const std::filesystem::path attempt_dir =
      std::filesystem::path(dir_) / "work-1" / "trial-1" / "attempt-2";
  EXPECT_THAT(ReadFile(attempt_dir / "train.log"),
              HasSubstr(absl::StrCat("resuming from epoch ", checkpoint)));
  const std::string metrics = ReadFile(attempt_dir / "metrics.jsonl");
  EXPECT_THAT(metrics, Not(HasSubstr("\"epoch\":0,")));
  // Rows of epochs up to the checkpoint were all written by attempt 1.
  EXPECT_GT(std::stoi(QueryValue("SELECT MIN(epoch) FROM metrics WHERE attempt = 2")),
            checkpoint);
}

TEST_F(FaultToleranceTest, SweepSurvivesTheCoordinatorKilledSeveralTimes) {
  StartShortLeaseCoordinator();
  Submit(Sweep("", /*trials=*/3));
  StartWorker();
  StartWorker();
  // Kill -9 whenever more rows have arrived, three times, while trials run.
  int64_t rows_seen = 0;
  for (int kill = 0; kill < 3; ++kill) {
    ASSERT_TRUE(AwaitCondition([&] {
      const std::string rows = QueryValue("SELECT COUNT(*) FROM metrics");
      return !rows.empty() && std::stoll(rows) > rows_seen + 10;
    })) << "kill " << kill;
    rows_seen = std::stoll(QueryValue("SELECT COUNT(*) FROM metrics"));
    KillAndRestartCoordinator();
  }
  const v1::GetSweepStatusResponse status = AwaitSweep(1);
  EXPECT_EQ(status.sweep().state(), v1::SWEEP_FINISHED);
  ASSERT_EQ(status.trials_size(), 3);
  // The workers kept training through the outages and reconnected with their
  // leases: no attempt was lost or repeated.
  for (const v1::TrialStatus& trial : status.trials()) {
    EXPECT_EQ(trial.state(), v1::TRIAL_SUCCEEDED) << trial.DebugString();
    EXPECT_EQ(trial.attempt(), 1) << trial.DebugString();
    EXPECT_EQ(trial.failures(), 0);
  }
  ExpectEveryMetricOnce();
}

// A trainer wrapper: the first attempt of each trial trains into its third
// epoch (its second checkpoint is saved) and then crashes (SIGSEGV); later
// attempts train.
std::string CrashOnceTrainer(const std::string& dir) {
  const std::string path = dir + "/crash-once-trainer.sh";
  WriteFile(path, absl::StrCat(R"(#!/bin/bash
out=""; prev=""
for a in "$@"; do [ "$prev" = "--out" ] && out="$a"; prev="$a"; done
case "$out" in
  */attempt-1)
    ")", kBinDir, R"(/sslsweep-train" "$@" & pid=$!
    until grep -q '"epoch":3,' "$out/metrics.jsonl" 2>/dev/null || ! kill -0 $pid 2>/dev/null; do
      sleep 0.02
    done
    kill -KILL $pid; wait $pid; kill -SEGV $$ ;;
  *) exec ")", kBinDir, R"(/sslsweep-train" "$@" ;;
esac
)"));
  std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  return path;
}

TEST_F(FaultToleranceTest, CrashedTrainerIsRetriedFromItsCheckpoint) {
  StartShortLeaseCoordinator();
  Submit(Sweep(""));
  StartWorker({"--trainer", CrashOnceTrainer(dir_)});
  const v1::GetSweepStatusResponse status = AwaitSweep(1);
  ASSERT_EQ(status.trials(0).state(), v1::TRIAL_SUCCEEDED) << status.DebugString();
  EXPECT_EQ(status.trials(0).attempt(), 2);
  EXPECT_EQ(status.trials(0).failures(), 1);
  EXPECT_EQ(Outcomes(1), "failed,succeeded");
  EXPECT_THAT(QueryValue("SELECT reason FROM attempts WHERE trial_id = 1 AND attempt = 1"),
              HasSubstr("signal 11"));
  // Resumed from the checkpoint the crashed attempt uploaded (after epoch 1
  // or 2, depending on when the crash cut it off), not from epoch 0.
  const std::filesystem::path attempt_dir =
      std::filesystem::path(dir_) / "work-0" / "trial-1" / "attempt-2";
  EXPECT_THAT(ReadFile(attempt_dir / "train.log"), HasSubstr("resuming from epoch "));
  EXPECT_THAT(ReadFile(attempt_dir / "metrics.jsonl"), Not(HasSubstr("\"epoch\":0,")));
  ExpectEveryMetricOnce();
}

TEST_F(FaultToleranceTest, CrashingNodeFailsTrialsAfterMaxAttemptsAndIsQuarantined) {
  StartShortLeaseCoordinator();  // quarantine after 3 failures in a row
  const std::string crash = WriteFile(dir_ + "/crash.sh", "#!/bin/sh\nkill -SEGV $$\n");
  std::filesystem::permissions(crash, std::filesystem::perms::owner_all);
  Submit(Sweep("max_attempts: 2\n", /*trials=*/2));
  const size_t bad = StartWorker({"--trainer", crash});
  // Trial 1 crashes twice and fails; trial 2 once, which quarantines the node.
  ASSERT_TRUE(AwaitCondition([&] {
    return QueryValue("SELECT COUNT(*) FROM workers WHERE quarantined_at_ms IS NOT NULL") == "1";
  })) << ReadFile(WorkerLog(bad));
  EXPECT_EQ(QueryValue("SELECT state || ' ' || attempt || ' ' || failures FROM trials "
                       "WHERE id = 1"),
            "failed 2 2");
  EXPECT_THAT(QueryValue("SELECT failure_reason FROM trials WHERE id = 1"),
              ::testing::AllOf(HasSubstr("signal 11"), HasSubstr("2 of 2")));
  EXPECT_EQ(QueryValue("SELECT state || ' ' || failures FROM trials WHERE id = 2"), "pending 1");
  CommandResult workers = Cli({"workers"});
  EXPECT_THAT(workers.out, HasSubstr("quarantined"));

  // The sweep goes on on a healthy node: trial 2's second attempt trains.
  StartWorker();
  const v1::GetSweepStatusResponse status = AwaitSweep(1);
  EXPECT_EQ(status.sweep().state(), v1::SWEEP_FINISHED);
  EXPECT_EQ(status.trials(1).state(), v1::TRIAL_SUCCEEDED) << status.DebugString();
  EXPECT_EQ(status.trials(1).attempt(), 2);
  EXPECT_EQ(Outcomes(1), "failed,failed");
  EXPECT_EQ(Outcomes(2), "failed,succeeded");
  EXPECT_EQ(QueryValue("SELECT COUNT(*) FROM metrics WHERE trial_id = 1"), "0");
  EXPECT_EQ(QueryValue("SELECT COUNT(*) FROM metrics WHERE trial_id = 2"),
            std::to_string(3 + 8 * kEpochs));
  EXPECT_FALSE(workers_[bad]->TryWait().has_value()) << "the quarantined worker stays up";
}

TEST_F(FaultToleranceTest, PartitionedWorkerThatComesBackCannotWrite) {
  StartShortLeaseCoordinator();
  Submit(Sweep(""));
  const size_t partitioned = StartWorker();
  ASSERT_TRUE(AwaitCondition([&] { return CheckpointEpoch(1) >= 1; }));
  workers_[partitioned]->Signal(SIGSTOP);  // silent, but alive with its trainer

  const size_t healthy = StartWorker();
  const v1::GetSweepStatusResponse status = AwaitSweep(1);
  ASSERT_EQ(status.trials(0).state(), v1::TRIAL_SUCCEEDED) << status.DebugString();
  const std::string rows_before = QueryValue("SELECT COUNT(*) FROM metrics WHERE attempt = 1");

  // Back after its lease expired: its reports are refused and it stops.
  workers_[partitioned]->Signal(SIGCONT);
  EXPECT_TRUE(AwaitCondition(
      [&] {
        return ReadFile(WorkerLog(partitioned)).find("stopped at the coordinator's request") !=
               std::string::npos;
      },
      30))
      << ReadFile(WorkerLog(partitioned));
  EXPECT_EQ(QueryValue("SELECT COUNT(*) FROM metrics WHERE attempt = 1"), rows_before);
  EXPECT_EQ(status.trials(0).attempt(), 2);
  EXPECT_EQ(Outcomes(1), "lost,succeeded");
  EXPECT_FALSE(workers_[healthy]->TryWait().has_value());
  ExpectEveryMetricOnce();
}

// The pid of the running sslsweep-train process started with `--rank
// <rank>`, from /proc; 0 if there is none.
pid_t TrainerOfRank(int rank) {
  const std::string wanted = absl::StrCat(std::string("--rank\0", 7), rank, std::string("\0", 1));
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string cmdline = ReadFile(entry.path() / "cmdline");
    if (cmdline.find("sslsweep-train") != std::string::npos &&
        cmdline.find(wanted) != std::string::npos) {
      return static_cast<pid_t>(std::stol(name));
    }
  }
  return 0;
}

TEST_F(FaultToleranceTest, KillingOneRankFailsTheGangAndTheRetryResumesAsOne) {
  StartShortLeaseCoordinator();
  Submit(Sweep("resources: {ranks: 2}\n"));
  const size_t first = StartWorker({"--advertise-address", "127.0.0.1"});
  const size_t second = StartWorker({"--advertise-address", "127.0.0.1"});
  ASSERT_TRUE(AwaitCondition([&] { return CheckpointEpoch(1) >= 2; }))
      << ReadFile(WorkerLog(first)) << ReadFile(WorkerLog(second));
  // Both ranks train attempt 1, one worker each.
  EXPECT_EQ(QueryValue("SELECT count(*) FROM attempt_ranks WHERE trial_id = 1 AND attempt = 1"),
            "1");
  const pid_t rank1 = TrainerOfRank(1);
  ASSERT_GT(rank1, 0);
  ASSERT_EQ(kill(rank1, SIGKILL), 0);

  const v1::GetSweepStatusResponse status = AwaitSweep(1);
  ASSERT_EQ(status.trials(0).state(), v1::TRIAL_SUCCEEDED) << status.DebugString();
  EXPECT_EQ(status.trials(0).ranks(), 2);
  EXPECT_EQ(status.trials(0).attempt(), 2);
  EXPECT_EQ(status.trials(0).failures(), 1);
  EXPECT_EQ(Outcomes(1), "failed,succeeded");
  // Whichever rank told first: the killed one (a crash, blamed on its
  // worker) or rank 0, which lost its peer (blaming nobody).
  const std::string ending = QueryValue(
      "SELECT failure_kind || ': ' || reason FROM attempts WHERE trial_id = 1 AND attempt = 1");
  EXPECT_THAT(ending, ::testing::AnyOf(HasSubstr("crash: rank 1 on w-"),
                                       HasSubstr("peer_lost: sslsweep-train exit 5")))
      << ending;
  // Both ranks of attempt 2 resumed from the gang's checkpoint, each in
  // its own directory.
  std::set<std::string> rank_dirs;
  for (size_t worker : {first, second}) {
    const std::filesystem::path attempt_dir = std::filesystem::path(dir_) /
                                              absl::StrCat("work-", worker) / "trial-1" /
                                              "attempt-2";
    for (const auto& entry : std::filesystem::directory_iterator(attempt_dir)) {
      rank_dirs.insert(entry.path().filename().string());
      EXPECT_THAT(ReadFile(entry.path() / "train.log"), HasSubstr("resuming from epoch "))
          << entry.path();
    }
  }
  EXPECT_EQ(rank_dirs, (std::set<std::string>{"rank-0", "rank-1"}));
  ExpectEveryMetricOnce();
  EXPECT_FALSE(workers_[first]->TryWait().has_value());
  EXPECT_FALSE(workers_[second]->TryWait().has_value());
}

TEST_F(FaultToleranceTest, CancelledTrialStopsWithinFiveSeconds) {
  StartCoordinator();  // the default heartbeat interval
  Submit(Sweep(""));
  const size_t worker = StartWorker();
  ASSERT_TRUE(AwaitCondition([&] { return CheckpointEpoch(1) >= 1; }));
  const auto start = std::chrono::steady_clock::now();
  // A trial of another sweep is refused, naming this sweep's trials.
  CommandResult wrong = Cli({"cancel", "1", "9"});
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_THAT(wrong.err, HasSubstr("trial 9 is not in sweep 1; its trials are 1"));
  CommandResult cancel = Cli({"cancel", "1", "1"});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_EQ(cancel.out, "trial 1 cancelled\n");
  ASSERT_TRUE(AwaitCondition(
      [&] {
        return ReadFile(WorkerLog(worker)).find("stopped at the coordinator's request") !=
               std::string::npos;
      },
      10));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 5.0);
  EXPECT_EQ(QueryValue("SELECT state FROM trials WHERE id = 1"), "cancelled");
  EXPECT_EQ(Outcomes(1), "cancelled");
  EXPECT_EQ(QueryValue("SELECT state FROM sweeps WHERE id = 1"), "finished");
}

}  // namespace
}  // namespace sslsweep
