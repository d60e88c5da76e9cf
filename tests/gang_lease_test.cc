// Tests of gang scheduling in the Store against real SQLite files: a
// data-parallel trial of N ranks starts on N idle workers at once or not at
// all, never holding part of a gang; idle means "asked within the idle
// window, found nothing, holds nothing"; the head gang is waited for while
// enough live workers exist and skipped while too few do; any rank's
// failure or lapsed lease ends the whole gang's attempt; the rendezvous is
// recorded by rank 0 and read by the other ranks. Time is the `now_ms` the
// tests pass; nothing sleeps.

#include <optional>
#include <string>
#include <vector>

#include "coordinator/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/store_test_util.h"

namespace sslsweep {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr int64_t kIdleWindowMs = 3000;

class GangLeaseTest : public StoreTest {
 protected:
  // A sweep of `trials` trials of `ranks` ranks each.
  int64_t CreateGangSweep(const std::string& name, int trials, int32_t ranks,
                          int32_t priority = 0) {
    NewSweep sweep = MakeSweep(name);
    sweep.priority = priority;
    std::vector<NewTrial> gang_trials = MakeTrials(trials);
    for (NewTrial& trial : gang_trials) trial.ranks = ranks;
    absl::StatusOr<int64_t> id = store_->CreateSweep(sweep, gang_trials, 1000);
    EXPECT_THAT(id, IsOk());
    return id.value_or(-1);
  }

  std::optional<TrialRecord> Ask(const std::string& worker_id, int64_t now_ms) {
    absl::StatusOr<std::optional<TrialRecord>> lease =
        store_->LeaseNextTrial(worker_id, now_ms, kLeaseMs, kIdleWindowMs);
    EXPECT_THAT(lease, IsOk());
    return lease.ok() ? *lease : std::nullopt;
  }
};

TEST_F(GangLeaseTest, AGangStartsOnIdleWorkersAtOnceAndEachLearnsItsRank) {
  const int64_t sweep = CreateGangSweep("dp", 1, 3);
  const std::string a = Register("a");
  const std::string b = Register("b");
  const std::string c = Register("c");

  // a and b ask: too few idle workers, and nothing is held for the gang.
  EXPECT_FALSE(Ask(a, 2000).has_value());
  EXPECT_FALSE(Ask(b, 2100).has_value());
  EXPECT_EQ(Trial(1).state, TrialState::kPending);
  EXPECT_EQ(DirectSql(path_).Int("SELECT count(*) FROM attempt_ranks"), 0);

  // c asks within the window: the gang starts whole, c as rank 0 and the
  // idle workers (most recent asker first) as ranks 1 and 2.
  std::optional<TrialRecord> rank0 = Ask(c, 2200);
  ASSERT_TRUE(rank0.has_value());
  EXPECT_EQ(rank0->sweep_id, sweep);
  EXPECT_EQ(rank0->state, TrialState::kRunning);
  EXPECT_EQ(rank0->ranks, 3);
  EXPECT_EQ(rank0->attempt, 1);
  EXPECT_THAT(rank0->rank_workers, ElementsAre(c, b, a));

  // The others get their rank at their next call, exactly once.
  std::optional<TrialRecord> rank2 = Ask(a, 2300);
  ASSERT_TRUE(rank2.has_value());
  EXPECT_EQ(rank2->id, rank0->id);
  EXPECT_EQ(rank2->attempt, 1);
  EXPECT_THAT(rank2->rank_workers, ElementsAre(c, b, a));
  std::optional<TrialRecord> rank1 = Ask(b, 2300);
  ASSERT_TRUE(rank1.has_value());
  EXPECT_EQ(rank1->id, rank0->id);
  EXPECT_FALSE(Ask(a, 2400).has_value());

  // Every rank runs the trial, and heartbeats renew every rank's lease.
  EXPECT_THAT(RunningTrialsOf(a), ElementsAre(rank0->id));
  EXPECT_THAT(RunningTrialsOf(b), ElementsAre(rank0->id));
  EXPECT_THAT(RunningTrialsOf(c), ElementsAre(rank0->id));
  absl::StatusOr<HeartbeatOutcome> beat = store_->Heartbeat(a, 9000, kLeaseMs);
  ASSERT_THAT(beat, IsOk());
  EXPECT_THAT(beat->running_trial_ids, ElementsAre(rank0->id));
  EXPECT_EQ(DirectSql(path_).Int("SELECT lease_expires_ms FROM attempt_ranks WHERE rank = 2"),
            9000 + kLeaseMs);
}

TEST_F(GangLeaseTest, OnlyRecentlyIdleUnquarantinedWorkersJoinAGang) {
  CreateGangSweep("dp", 1, 2);
  const std::string stale = Register("stale");
  const std::string quarantined = Register("quarantined");
  const std::string asker = Register("asker");
  EXPECT_FALSE(Ask(stale, 2000).has_value());
  EXPECT_FALSE(Ask(quarantined, 9000).has_value());
  DirectSql(path_).Exec("UPDATE workers SET quarantined_at_ms = 9000, quarantine_reason = 'x' "
                        "WHERE id = '" + quarantined + "'");

  // stale asked 7 s ago (window 3 s); quarantined is quarantined.
  EXPECT_FALSE(Ask(asker, 9000).has_value());
  EXPECT_EQ(Trial(1).state, TrialState::kPending);
  // When stale asks again, asker is idle within the window: the gang starts.
  std::optional<TrialRecord> gang = Ask(stale, 9500);
  ASSERT_TRUE(gang.has_value());
  EXPECT_THAT(gang->rank_workers, ElementsAre(stale, asker));
}

TEST_F(GangLeaseTest, TwoGangsNeverHoldHalfOfEachOtherAndSmallTrialsDoNotStarveAGang) {
  // A 2-rank sweep first in priority, then 1-rank trials.
  const int64_t gang = CreateGangSweep("dp", 2, 2, /*priority=*/5);
  const int64_t small = CreateSweepWith("small", 3, 0);
  const std::string a = Register("a");
  const std::string b = Register("b");
  const std::string c = Register("c");

  // Three idle workers: one gang starts on two of them, the third is free
  // and held by nothing.
  EXPECT_FALSE(Ask(a, 2000).has_value());
  std::optional<TrialRecord> first = Ask(b, 2100);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->sweep_id, gang);
  EXPECT_THAT(first->rank_workers, ElementsAre(b, a));
  // c alone cannot start the second gang; two live workers are busy but
  // alive, so c waits for the gang rather than take a small trial.
  EXPECT_FALSE(Ask(c, 2200).has_value());
  EXPECT_THAT(RunningTrialsOf(c), IsEmpty());
  EXPECT_EQ(Trial(2).state, TrialState::kPending);

  // a gets its rank of the first gang; then b and a finish it.
  ASSERT_TRUE(Ask(a, 2300).has_value());
  ASSERT_THAT(store_->FinishTrial(b, first->id, first->attempt, 2400), IsOk());
  // Now a fresh ask from b, with c idle within the window: the second gang.
  std::optional<TrialRecord> second = Ask(b, 2500);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->id, Trial(2).id);
  EXPECT_THAT(second->rank_workers, ElementsAre(b, c));
  // a is free and only small trials are left: it takes one.
  std::optional<TrialRecord> third = Ask(a, 2600);
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(third->sweep_id, small);
  EXPECT_THAT(third->rank_workers, ElementsAre(a));
}

TEST_F(GangLeaseTest, AGangLargerThanTheLiveWorkersLetsSmallerTrialsRun) {
  CreateGangSweep("dp", 1, 3, /*priority=*/5);
  const int64_t small = CreateSweepWith("small", 1, 0);
  const std::string a = Register("a");
  const std::string b = Register("b");
  // Only two live workers: the 3-rank trial cannot run now, so it does not
  // block the sweep behind it.
  std::optional<TrialRecord> trial = Ask(a, 2000);
  ASSERT_TRUE(trial.has_value());
  EXPECT_EQ(trial->sweep_id, small);
  EXPECT_EQ(trial->ranks, 1);
  EXPECT_FALSE(Ask(b, 2100).has_value());
  EXPECT_EQ(Trial(1).state, TrialState::kPending);
}

TEST_F(GangLeaseTest, AnyRanksCrashFailsTheWholeGangAndBlamesThatWorker) {
  CreateGangSweep("dp", 1, 2);
  const std::string a = Register("a");
  const std::string b = Register("b");
  EXPECT_FALSE(Ask(a, 2000).has_value());
  const TrialRecord gang = *Ask(b, 2100);
  ASSERT_THAT(gang.rank_workers, ElementsAre(b, a));
  ASSERT_TRUE(Ask(a, 2200).has_value());

  // Rank 1 (a) crashes: the attempt ends for both ranks, the trial is
  // requeued with one failure, and only a is blamed.
  absl::StatusOr<FailOutcome> outcome = store_->FailTrial(
      a, gang.id, gang.attempt, FailureKind::kCrash, "killed by signal 9", 3000, FailurePolicy());
  ASSERT_THAT(outcome, IsOk());
  EXPECT_TRUE(outcome->requeued);
  EXPECT_EQ(AttemptColumn(gang, 1, "reason"), "rank 1 on " + a + ": killed by signal 9");
  EXPECT_EQ(Trial(gang.id).state, TrialState::kPending);
  EXPECT_EQ(Trial(gang.id).failures, 1);
  EXPECT_EQ(Worker(a).consecutive_failures, 1);
  EXPECT_EQ(Worker(b).consecutive_failures, 0);
  EXPECT_THAT(RunningTrialsOf(a), IsEmpty());
  EXPECT_THAT(RunningTrialsOf(b), IsEmpty());
  // Retried: the same outcome. Rank 0's report of the lost peer is stale.
  EXPECT_THAT(store_->FailTrial(a, gang.id, gang.attempt, FailureKind::kCrash,
                                "killed by signal 9", 3100, FailurePolicy()),
              IsOk());
  EXPECT_THAT(store_->FailTrial(b, gang.id, gang.attempt, FailureKind::kPeerLost,
                                "lost a peer rank", 3100, FailurePolicy()),
              StatusIs(absl::StatusCode::kFailedPrecondition, "is not running"));
  EXPECT_EQ(Trial(gang.id).failures, 1);

  // The next gang is attempt 2, and a worker outside it cannot fail it.
  EXPECT_FALSE(Ask(a, 4000).has_value());
  const TrialRecord retry = *Ask(b, 4100);
  EXPECT_EQ(retry.attempt, 2);
  const std::string outsider = Register("outsider");
  EXPECT_THAT(store_->FailTrial(outsider, retry.id, retry.attempt, FailureKind::kCrash, "x",
                                4200, FailurePolicy()),
              StatusIs(absl::StatusCode::kFailedPrecondition, "is held by " + b));
}

TEST_F(GangLeaseTest, APeerLostFailureCountsForTheTrialButBlamesNoWorker) {
  CreateGangSweep("dp", 1, 2);
  const std::string a = Register("a");
  const std::string b = Register("b");
  EXPECT_FALSE(Ask(a, 2000).has_value());
  const TrialRecord gang = *Ask(b, 2100);
  absl::StatusOr<FailOutcome> outcome =
      store_->FailTrial(b, gang.id, gang.attempt, FailureKind::kPeerLost,
                        "lost a peer rank: Connection closed by peer", 3000, FailurePolicy());
  ASSERT_THAT(outcome, IsOk());
  EXPECT_TRUE(outcome->requeued);
  EXPECT_EQ(AttemptColumn(gang, 1, "failure_kind"), "peer_lost");
  EXPECT_EQ(Trial(gang.id).failures, 1);
  EXPECT_EQ(Worker(a).consecutive_failures, 0);
  EXPECT_EQ(Worker(b).consecutive_failures, 0);
}

TEST_F(GangLeaseTest, ALapsedRankLeaseEndsTheGangAsLostBlamingItsWorker) {
  CreateGangSweep("dp", 1, 2);
  const std::string a = Register("a");
  const std::string b = Register("b");
  EXPECT_FALSE(Ask(a, 2000).has_value());
  const TrialRecord gang = *Ask(b, 2100);
  ASSERT_TRUE(Ask(a, 2200).has_value());
  // b (rank 0) heartbeats, a (rank 1) has gone silent.
  ASSERT_THAT(store_->Heartbeat(b, 2200 + kLeaseMs, kLeaseMs), IsOk());
  absl::StatusOr<std::vector<ExpiredLease>> expired =
      store_->ExpireLeases(2200 + kLeaseMs + 1, FailurePolicy());
  ASSERT_THAT(expired, IsOk());
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_EQ((*expired)[0].trial_id, gang.id);
  EXPECT_EQ((*expired)[0].worker_id, a);
  EXPECT_TRUE((*expired)[0].requeued);
  EXPECT_THAT(AttemptColumn(gang, 1, "reason"), ::testing::StartsWith("lost worker " + a +
                                                                     " (rank 1): its lease"));
  EXPECT_EQ(Worker(a).consecutive_failures, 1);
  EXPECT_EQ(Worker(b).consecutive_failures, 0);
  // b's next heartbeat tells it the trial is no longer its.
  absl::StatusOr<HeartbeatOutcome> beat = store_->Heartbeat(b, 2200 + kLeaseMs + 2, kLeaseMs);
  ASSERT_THAT(beat, IsOk());
  EXPECT_THAT(beat->running_trial_ids, IsEmpty());
}

TEST_F(GangLeaseTest, ARankNeverTakenLapsesAfterTwoIdleWindowsUnlessItsWorkerBeats) {
  CreateGangSweep("dp", 2, 2);
  const std::string a = Register("a");
  const std::string b = Register("b");
  const std::string c = Register("c");
  const std::string d = Register("d");
  // a and c go idle and are made rank 1 of a gang each; a then vanishes
  // (it exited or was killed right after asking), c only heartbeats.
  EXPECT_FALSE(Ask(a, 2000).has_value());
  const std::optional<TrialRecord> second_try = Ask(b, 2100);
  ASSERT_TRUE(second_try.has_value());
  const TrialRecord second = *second_try;
  EXPECT_FALSE(Ask(c, 2000).has_value());
  const std::optional<TrialRecord> first_try = Ask(d, 2100);
  ASSERT_TRUE(first_try.has_value());
  const TrialRecord first = *first_try;
  ASSERT_THAT(second.rank_workers, ElementsAre(b, a));
  ASSERT_THAT(first.rank_workers, ElementsAre(d, c));
  for (const std::string& w : {b, c, d}) {
    ASSERT_THAT(store_->Heartbeat(w, 2100 + 2 * kIdleWindowMs - 1, kLeaseMs), IsOk()) << w;
  }
  absl::StatusOr<std::vector<ExpiredLease>> expired =
      store_->ExpireLeases(2100 + 2 * kIdleWindowMs + 1, FailurePolicy());
  ASSERT_THAT(expired, IsOk());
  ASSERT_EQ(expired->size(), 1u) << "not a whole lease (" << kLeaseMs << " ms) later";
  EXPECT_EQ((*expired)[0].trial_id, second.id);
  EXPECT_EQ((*expired)[0].worker_id, a);
  EXPECT_TRUE((*expired)[0].requeued);
  EXPECT_EQ(AttemptColumn(second, 1, "reason"),
            "lost worker " + a + " (rank 1): it never took its rank (no poll or heartbeat by " +
                std::to_string(2100 + 2 * kIdleWindowMs) + " ms)");
  // c's heartbeat renewed its rank for a whole lease; it takes it late.
  ASSERT_TRUE(Ask(c, 2100 + 2 * kIdleWindowMs + 2).has_value());
  EXPECT_EQ(Trial(first.id).state, TrialState::kRunning);
}

TEST_F(GangLeaseTest, FinishingResetsEveryRanksWorkerAndOnlyRankZeroReports) {
  CreateGangSweep("dp", 1, 2);
  const std::string a = Register("a");
  const std::string b = Register("b");
  DirectSql(path_).Exec("UPDATE workers SET consecutive_failures = 2");
  EXPECT_FALSE(Ask(a, 2000).has_value());
  const TrialRecord gang = *Ask(b, 2100);
  ASSERT_TRUE(Ask(a, 2200).has_value());
  EXPECT_THAT(store_->RecordMetrics(a, gang.id, gang.attempt, 1, {{"loss/total", 1.0}}),
              StatusIs(absl::StatusCode::kFailedPrecondition, "is held by " + b));
  EXPECT_THAT(store_->FinishTrial(a, gang.id, gang.attempt, 3000),
              StatusIs(absl::StatusCode::kFailedPrecondition, "is held by " + b));
  ASSERT_THAT(store_->RecordMetrics(b, gang.id, gang.attempt, 1, {{"loss/total", 1.0}}),
              IsOk());
  ASSERT_THAT(store_->FinishTrial(b, gang.id, gang.attempt, 3000), IsOk());
  EXPECT_EQ(Trial(gang.id).state, TrialState::kSucceeded);
  EXPECT_THAT(Trial(gang.id).rank_workers, IsEmpty());
  EXPECT_EQ(Worker(a).consecutive_failures, 0);
  EXPECT_EQ(Worker(b).consecutive_failures, 0);
  EXPECT_THAT(RunningTrialsOf(a), IsEmpty());
  EXPECT_EQ(DirectSql(path_).Int(
                "SELECT count(*) FROM attempt_ranks WHERE lease_expires_ms IS NOT NULL"),
            0);
}

TEST_F(GangLeaseTest, RankZeroRecordsTheRendezvousAndTheOtherRanksReadIt) {
  CreateGangSweep("dp", 1, 2);
  const std::string a = Register("a");
  const std::string b = Register("b");
  const std::string outsider = Register("outsider");
  EXPECT_FALSE(Ask(a, 2000).has_value());
  const TrialRecord gang = *Ask(b, 2100);

  absl::StatusOr<std::optional<RendezvousPoint>> before =
      store_->GetRendezvous(a, gang.id, gang.attempt);
  ASSERT_THAT(before, IsOk());
  EXPECT_FALSE(before->has_value());
  // Only rank 0 records it; a bad port is refused and changes nothing.
  EXPECT_THAT(store_->RecordRendezvous(a, gang.id, gang.attempt, {"node-a", 29500}),
              StatusIs(absl::StatusCode::kFailedPrecondition, "is held by " + b));
  EXPECT_THAT(store_->RecordRendezvous(b, gang.id, gang.attempt, {"node-b", 70000}),
              StatusIs(absl::StatusCode::kInvalidArgument, "port 70000 is not in 1..65535"));
  EXPECT_THAT(store_->RecordRendezvous(b, gang.id, gang.attempt, {"", 29500}),
              StatusIs(absl::StatusCode::kInvalidArgument, "the master address is empty"));
  ASSERT_THAT(store_->RecordRendezvous(b, gang.id, gang.attempt, {"node-b", 29500}), IsOk());

  for (const std::string& rank : {a, b}) {
    absl::StatusOr<std::optional<RendezvousPoint>> point =
        store_->GetRendezvous(rank, gang.id, gang.attempt);
    ASSERT_THAT(point, IsOk());
    ASSERT_TRUE(point->has_value());
    EXPECT_EQ((*point)->master_address, "node-b");
    EXPECT_EQ((*point)->master_port, 29500);
  }
  EXPECT_THAT(store_->GetRendezvous(outsider, gang.id, gang.attempt),
              StatusIs(absl::StatusCode::kFailedPrecondition, "has no rank on " + outsider));
  EXPECT_THAT(store_->GetRendezvous(a, gang.id, gang.attempt + 1),
              StatusIs(absl::StatusCode::kFailedPrecondition, "is not current"));
}

TEST_F(GangLeaseTest, ListingsShowEveryRanksWorker) {
  const int64_t sweep = CreateGangSweep("dp", 1, 2);
  const std::string a = Register("a");
  const std::string b = Register("b");
  EXPECT_FALSE(Ask(a, 2000).has_value());
  ASSERT_TRUE(Ask(b, 2100).has_value());
  absl::StatusOr<std::vector<TrialRecord>> trials = store_->ListTrials(sweep);
  ASSERT_THAT(trials, IsOk());
  ASSERT_EQ(trials->size(), 1u);
  EXPECT_THAT((*trials)[0].rank_workers, ElementsAre(b, a));
  absl::StatusOr<std::vector<WorkerRecord>> workers = store_->ListWorkers();
  ASSERT_THAT(workers, IsOk());
  ASSERT_EQ(workers->size(), 2u);
  EXPECT_THAT((*workers)[0].running_trial_ids, ElementsAre((*trials)[0].id));
  EXPECT_THAT((*workers)[1].running_trial_ids, ElementsAre((*trials)[0].id));
}

TEST_F(GangLeaseTest, UnfinishedTrialsAreReportedWhileAGangWaitsOrRuns) {
  const auto unfinished = [&] {
    absl::StatusOr<bool> any = store_->HasUnfinishedTrials();
    EXPECT_THAT(any, IsOk());
    return any.value_or(false);
  };
  EXPECT_FALSE(unfinished());
  CreateGangSweep("dp", 1, 2);
  const std::string a = Register("a");
  const std::string b = Register("b");
  EXPECT_FALSE(Ask(a, 2000).has_value());
  EXPECT_TRUE(unfinished());
  // Running: an idle rank's worker must stay, as the gang may be retried.
  ASSERT_TRUE(Ask(b, 2100).has_value());
  ASSERT_TRUE(Ask(a, 2200).has_value());
  EXPECT_TRUE(unfinished());
  ASSERT_THAT(store_->CancelSweep(1, 2300), IsOk());
  EXPECT_FALSE(unfinished());
}

TEST_F(GangLeaseTest, ARestartRenewsEveryRankAndCancellingFreesThem) {
  const int64_t sweep = CreateGangSweep("dp", 1, 2);
  const std::string a = Register("a");
  const std::string b = Register("b");
  EXPECT_FALSE(Ask(a, 2000).has_value());
  const TrialRecord gang = *Ask(b, 2100);
  // The coordinator was down well past every lease; its restart gives every
  // rank a fresh one, so nothing expires before the workers reconnect.
  Reopen();
  ASSERT_THAT(store_->RenewAllLeases(100'000 + kLeaseMs), IsOk());
  absl::StatusOr<std::vector<ExpiredLease>> expired =
      store_->ExpireLeases(100'000, FailurePolicy());
  ASSERT_THAT(expired, IsOk());
  EXPECT_THAT(*expired, IsEmpty());
  EXPECT_EQ(Trial(gang.id).state, TrialState::kRunning);

  // Cancelling the sweep ends the attempt for both ranks.
  ASSERT_THAT(store_->CancelSweep(sweep, 100'100), IsOk());
  EXPECT_THAT(RunningTrialsOf(a), IsEmpty());
  EXPECT_THAT(RunningTrialsOf(b), IsEmpty());
  EXPECT_EQ(DirectSql(path_).Int(
                "SELECT count(*) FROM attempt_ranks WHERE lease_expires_ms IS NOT NULL"),
            0);
}

TEST_F(GangLeaseTest, BadRankCountsAreRefused) {
  std::vector<NewTrial> trials = MakeTrials(1);
  trials[0].ranks = 0;
  EXPECT_THAT(store_->CreateSweep(MakeSweep("bad"), trials, 1000),
              StatusIs(absl::StatusCode::kInvalidArgument, "has 0 ranks; must be 1 to 1024"));
  EXPECT_THAT(store_->LeaseNextTrial(Register(), 2000, kLeaseMs, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, "idle window of 0 ms"));
}

}  // namespace
}  // namespace sslsweep
