#include "coordinator/store_lease_queries.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "coordinator/store_attempt_updates.h"
#include "coordinator/store_queries.h"

namespace sslsweep {
namespace {

const char* FailureKindName(FailureKind kind) {
  switch (kind) {
    case FailureKind::kCrash:
      return "crash";
    case FailureKind::kDiverged:
      return "diverged";
    case FailureKind::kConfig:
      return "config";
    case FailureKind::kReleased:
      return "released";
    case FailureKind::kPeerLost:
      return "peer_lost";
  }
  return "unknown";
}

// A running attempt that failed in a way that counts (a crash or a lost
// lease), and the trial's failure reason should it be the last allowed.
struct CountedFailure {
  int64_t trial_id = 0;
  int32_t attempt = 0;
  std::string worker_id;  // the worker to blame; '' for none (a lost peer)
  int64_t sweep_id = 0;
  AttemptEnding ending;  // its requeued and quarantined_worker are decided here
  std::string trial_reason;
};

// Raises the trial's failures; requeues it, or fails it once they reach
// max_attempts; blames the worker.
absl::StatusOr<FailOutcome> EndCountedFailure(StatementCache& db, CountedFailure failure,
                                              bool requeue, const FailurePolicy& policy,
                                              int64_t now_ms) {
  absl::StatusOr<bool> quarantined = false;
  if (!failure.worker_id.empty()) {
    quarantined = BlameWorker(db, failure.worker_id, policy,
                              absl::StrCat("trial ", failure.trial_id, " attempt ",
                                           failure.attempt, ": ", failure.ending.reason),
                              now_ms);
  }
  if (!quarantined.ok()) return quarantined.status();
  failure.ending.requeued = requeue;
  failure.ending.quarantined_worker = *quarantined;
  absl::Status status =
      CloseAttempt(db, failure.trial_id, failure.attempt, failure.ending, now_ms);
  if (!status.ok()) return status;
  if (requeue) {
    status = RequeueTrial(db, failure.trial_id, 1);
  } else {
    status = EndTrial(db, failure.trial_id, TrialState::kFailed, failure.trial_reason, now_ms, 1);
    if (status.ok()) status = FinishSweepIfDone(db, failure.sweep_id, now_ms);
  }
  if (!status.ok()) return status;
  return FailOutcome{requeue, *quarantined};
}

// A pending trial and the ranks it needs.
struct PendingTrial {
  int64_t id = 0;
  int32_t ranks = 1;
};

// The trial of at most `max_ranks` ranks whose lease LeaseNextTrialIn
// should hand out; nullopt if none.
absl::StatusOr<std::optional<PendingTrial>> SelectNextPendingTrial(StatementCache& db,
                                                                   int32_t max_ranks) {
  absl::StatusOr<ScopedStatement> select = db.Get(R"sql(
      SELECT t.id, t.ranks FROM trials t WHERE t.id = (
        SELECT (SELECT p.id FROM trials p
                WHERE p.sweep_id = s.id AND p.state = 'pending' AND p.ranks <= ?1
                ORDER BY p.idx LIMIT 1)
        FROM sweeps s
        WHERE s.state = 'running'
          AND EXISTS (SELECT 1 FROM trials p
                      WHERE p.sweep_id = s.id AND p.state = 'pending' AND p.ranks <= ?1)
          AND (s.max_concurrent = 0 OR s.max_concurrent >
               (SELECT count(*) FROM trials r WHERE r.sweep_id = s.id AND r.state = 'running'))
        ORDER BY s.priority DESC, s.id LIMIT 1))sql");
  if (!select.ok()) return select.status();
  (*select)->BindInt64(1, max_ranks);
  absl::StatusOr<bool> row = (*select)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<PendingTrial>();
  return std::optional<PendingTrial>(PendingTrial{
      (*select)->ColumnInt64(0), static_cast<int32_t>((*select)->ColumnInt64(1))});
}

// NotFound for an unknown worker, FailedPrecondition for a quarantined one.
absl::Status CheckWorkerMayLease(StatementCache& db, const std::string& worker_id) {
  absl::StatusOr<ScopedStatement> select = db.Get(
      "SELECT quarantined_at_ms IS NOT NULL, quarantine_reason FROM workers WHERE id = ?1");
  if (!select.ok()) return select.status();
  (*select)->BindText(1, worker_id);
  absl::StatusOr<bool> row = (*select)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(absl::StrCat("no worker ", worker_id));
  if ((*select)->ColumnInt64(0) == 0) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("worker ", worker_id, " is quarantined: ", (*select)->ColumnText(1)));
}

// A running attempt whose lease ran out.
struct LapsedLease {
  CountedFailure failure;  // blames the holder of the lapsed lease
  int32_t rank = 0;
  bool delivered = true;  // false: its worker never took the rank
  int32_t failures = 0;
  int32_t max_attempts = 0;
  int64_t lease_expires_ms = 0;
};

// Running attempts with a lapsed lease, by trial id: rank 0's (the trial's
// row) or another rank's; one per trial, the lowest rank's.
absl::StatusOr<std::vector<LapsedLease>> SelectLapsedLeases(StatementCache& db, int64_t now_ms) {
  absl::StatusOr<ScopedStatement> select = db.Get(R"sql(
      SELECT t.id, t.attempt, t.worker_id, t.sweep_id, t.failures, s.max_attempts,
             t.lease_expires_ms, 0, 1
      FROM trials t JOIN sweeps s ON s.id = t.sweep_id
      WHERE t.state = 'running' AND t.lease_expires_ms < ?1
      UNION ALL
      SELECT t.id, t.attempt, r.worker_id, t.sweep_id, t.failures, s.max_attempts,
             r.lease_expires_ms, r.rank, r.delivered
      FROM attempt_ranks r
      JOIN trials t ON t.id = r.trial_id AND t.attempt = r.attempt
      JOIN sweeps s ON s.id = t.sweep_id
      WHERE r.lease_expires_ms < ?1 AND t.state = 'running')sql");
  if (!select.ok()) return select.status();
  (*select)->BindInt64(1, now_ms);
  std::vector<LapsedLease> lapsed;
  absl::Status status = (*select)->ForEachRow([&](const SqliteStatement& row) {
    LapsedLease lease;
    lease.failure.trial_id = row.ColumnInt64(0);
    lease.failure.attempt = static_cast<int32_t>(row.ColumnInt64(1));
    lease.failure.worker_id = row.ColumnText(2);
    lease.failure.sweep_id = row.ColumnInt64(3);
    lease.failures = static_cast<int32_t>(row.ColumnInt64(4));
    lease.max_attempts = static_cast<int32_t>(row.ColumnInt64(5));
    lease.lease_expires_ms = row.ColumnInt64(6);
    lease.rank = static_cast<int32_t>(row.ColumnInt64(7));
    lease.delivered = row.ColumnInt64(8) != 0;
    lapsed.push_back(std::move(lease));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  // By id here: ORDER BY would tempt SQLite into scanning every trial in id
  // order instead of searching the lease indexes.
  std::sort(lapsed.begin(), lapsed.end(), [](const LapsedLease& a, const LapsedLease& b) {
    return std::tie(a.failure.trial_id, a.rank) < std::tie(b.failure.trial_id, b.rank);
  });
  lapsed.erase(std::unique(lapsed.begin(), lapsed.end(),
                           [](const LapsedLease& a, const LapsedLease& b) {
                             return a.failure.trial_id == b.failure.trial_id;
                           }),
               lapsed.end());
  return lapsed;
}

}  // namespace

absl::StatusOr<std::optional<TrialRecord>> LeaseNextTrialIn(StatementCache& db,
                                                            const std::string& worker_id,
                                                            int64_t now_ms, int64_t lease_ms,
                                                            int64_t idle_window_ms) {
  absl::Status status = CheckWorkerMayLease(db, worker_id);
  if (!status.ok()) return status;
  const auto leased = [&](int64_t trial_id) -> absl::StatusOr<std::optional<TrialRecord>> {
    absl::StatusOr<TrialRecord> trial = SelectTrial(db, trial_id);
    if (!trial.ok()) return trial.status();
    return std::optional<TrialRecord>(*std::move(trial));
  };
  const auto idle = [&]() -> absl::StatusOr<std::optional<TrialRecord>> {
    absl::Status marked = MarkIdle(db, worker_id, now_ms);
    if (!marked.ok()) return marked;
    return std::optional<TrialRecord>();
  };

  // A rank of a gang that formed while this worker was idle comes first.
  absl::StatusOr<std::optional<int64_t>> assigned =
      DeliverAssignedRank(db, worker_id, now_ms + lease_ms);
  if (!assigned.ok()) return assigned.status();
  if (assigned->has_value()) return leased(**assigned);

  absl::StatusOr<std::optional<PendingTrial>> next = SelectNextPendingTrial(db, kMaxRanks);
  if (!next.ok()) return next.status();
  if (!next->has_value()) return idle();
  std::vector<std::string> others;
  if ((*next)->ranks > 1) {
    absl::StatusOr<std::vector<std::string>> available =
        SelectIdleWorkers(db, worker_id, now_ms - idle_window_ms, (*next)->ranks - 1);
    if (!available.ok()) return available.status();
    if (static_cast<int32_t>(available->size()) < (*next)->ranks - 1) {
      // The gang cannot start now. Wait for it if the live workers could
      // run it; otherwise run a later trial that fits the idle ones.
      absl::StatusOr<int64_t> live = CountLiveWorkers(db, now_ms - lease_ms);
      if (!live.ok()) return live.status();
      if (*live >= (*next)->ranks) return idle();
      const int32_t fit = static_cast<int32_t>(available->size()) + 1;
      next = SelectNextPendingTrial(db, fit);
      if (!next.ok()) return next.status();
      if (!next->has_value()) return idle();
      available->resize(std::min<size_t>(available->size(), (*next)->ranks - 1));
    }
    others = *std::move(available);
  }
  // An idle worker takes its rank at its next poll, well within two idle
  // windows, or heartbeats meanwhile; one that left just after asking
  // (exited, killed) is found out then, not a whole lease later.
  const int64_t delivery_ms = std::min(lease_ms, 2 * idle_window_ms);
  status = StartGang(db, (*next)->id, worker_id, others, now_ms, now_ms + lease_ms,
                     now_ms + delivery_ms);
  if (!status.ok()) return status;
  return leased((*next)->id);
}

absl::StatusOr<std::vector<ExpiredLease>> ExpireLeasesIn(StatementCache& db, int64_t now_ms,
                                                         const FailurePolicy& policy) {
  absl::StatusOr<std::vector<LapsedLease>> lapsed = SelectLapsedLeases(db, now_ms);
  if (!lapsed.ok()) return lapsed.status();
  std::vector<ExpiredLease> expired;
  for (LapsedLease& lease : *lapsed) {
    CountedFailure& failure = lease.failure;
    const int32_t failures = lease.failures + 1;
    const std::string rank =
        lease.rank > 0 ? absl::StrCat(" (rank ", lease.rank, ")") : std::string();
    failure.ending.outcome = "lost";
    failure.ending.reason =
        lease.delivered
            ? absl::StrCat("lost worker ", failure.worker_id, rank, ": its lease expired at ",
                           lease.lease_expires_ms, " ms")
            : absl::StrCat("lost worker ", failure.worker_id, rank,
                           ": it never took its rank (no poll or heartbeat by ",
                           lease.lease_expires_ms, " ms)");
    failure.trial_reason = absl::StrCat("lost worker ", failure.worker_id, rank, "; failed ",
                                        failures, " of ", lease.max_attempts, " attempts");
    absl::StatusOr<FailOutcome> outcome = EndCountedFailure(
        db, failure, failures < lease.max_attempts, policy, now_ms);
    if (!outcome.ok()) return outcome.status();
    expired.push_back(ExpiredLease{failure.trial_id, failure.attempt, failure.worker_id,
                                   outcome->requeued, outcome->worker_quarantined});
  }
  return expired;
}

absl::StatusOr<int32_t> RenewAllLeasesIn(StatementCache& db, int64_t lease_expires_ms) {
  absl::StatusOr<ScopedStatement> update =
      db.Get("UPDATE trials SET lease_expires_ms = ?1 WHERE state = 'running'");
  if (!update.ok()) return update.status();
  (*update)->BindInt64(1, lease_expires_ms);
  absl::StatusOr<int> renewed = (*update)->Run();
  if (!renewed.ok()) return renewed.status();
  // The other ranks of running gangs get the same grace.
  absl::StatusOr<ScopedStatement> ranks = db.Get(
      "UPDATE attempt_ranks SET lease_expires_ms = ?1 WHERE lease_expires_ms IS NOT NULL");
  if (!ranks.ok()) return ranks.status();
  (*ranks)->BindInt64(1, lease_expires_ms);
  absl::Status status = (*ranks)->Run().status();
  if (!status.ok()) return status;
  return static_cast<int32_t>(*renewed);
}

absl::StatusOr<RecordedMetrics> RecordMetricsIn(StatementCache& db, const std::string& worker_id,
                                                int64_t trial_id, int32_t attempt,
                                                int32_t epoch,
                                                const std::vector<MetricValue>& metrics) {
  absl::StatusOr<TrialFence> fence = SelectTrialFence(db, trial_id, attempt);
  if (!fence.ok()) return fence.status();
  absl::Status status = CheckFence(trial_id, &worker_id, attempt, *fence);
  if (!status.ok()) return status;
  // Epoch 0 is the initialisation, 1..epochs the trained ones; queries
  // over every epoch rely on nothing beyond.
  if (epoch > fence->epochs) {
    return absl::InvalidArgumentError(absl::StrCat("trial ", trial_id, ": metrics of epoch ",
                                                   epoch, ", but the trial trains ",
                                                   fence->epochs, " epochs"));
  }
  absl::StatusOr<int32_t> written = InsertMetrics(db, trial_id, attempt, epoch, metrics);
  if (!written.ok()) return written.status();
  return RecordedMetrics{*written, fence->sweep_id};
}

absl::Status RecordRendezvousIn(StatementCache& db, const std::string& worker_id,
                                int64_t trial_id, int32_t attempt, const RendezvousPoint& point) {
  absl::StatusOr<TrialFence> fence = SelectTrialFence(db, trial_id, attempt);
  if (!fence.ok()) return fence.status();
  absl::Status status = CheckFence(trial_id, &worker_id, attempt, *fence);
  if (!status.ok()) return status;
  absl::StatusOr<ScopedStatement> update = db.Get(R"sql(
      UPDATE attempts SET master_address = ?3, master_port = ?4
      WHERE trial_id = ?1 AND attempt = ?2)sql");
  if (!update.ok()) return update.status();
  (*update)->BindInt64(1, trial_id);
  (*update)->BindInt64(2, attempt);
  (*update)->BindText(3, point.master_address);
  (*update)->BindInt64(4, point.master_port);
  return (*update)->Run().status();
}

absl::StatusOr<std::optional<RendezvousPoint>> SelectRendezvous(StatementCache& db,
                                                                const std::string& worker_id,
                                                                int64_t trial_id,
                                                                int32_t attempt) {
  absl::StatusOr<TrialFence> fence = SelectTrialFence(db, trial_id, attempt);
  if (!fence.ok()) return fence.status();
  absl::Status status = CheckFence(trial_id, nullptr, attempt, *fence);
  if (!status.ok()) return status;
  absl::StatusOr<int32_t> rank = SelectRankOf(db, *fence, trial_id, attempt, worker_id);
  if (!rank.ok()) return rank.status();
  if (*rank < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "trial ", trial_id, ": attempt ", attempt, " has no rank on ", worker_id));
  }
  absl::StatusOr<ScopedStatement> select = db.Get(R"sql(
      SELECT master_address, master_port FROM attempts
      WHERE trial_id = ?1 AND attempt = ?2 AND master_port IS NOT NULL)sql");
  if (!select.ok()) return select.status();
  (*select)->BindInt64(1, trial_id);
  (*select)->BindInt64(2, attempt);
  absl::StatusOr<bool> row = (*select)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<RendezvousPoint>();
  return std::optional<RendezvousPoint>(RendezvousPoint{
      (*select)->ColumnText(0), static_cast<int32_t>((*select)->ColumnInt64(1))});
}

absl::Status RecordCheckpointIn(StatementCache& db, const std::string& worker_id,
                                int64_t trial_id, int32_t attempt, int32_t epoch) {
  absl::StatusOr<TrialFence> fence = SelectTrialFence(db, trial_id, attempt);
  if (!fence.ok()) return fence.status();
  absl::Status status = CheckFence(trial_id, &worker_id, attempt, *fence);
  if (!status.ok()) return status;
  if (epoch > fence->epochs) {
    return absl::InvalidArgumentError(absl::StrCat("trial ", trial_id, ": a checkpoint after ",
                                                   epoch, " epochs, but the trial trains ",
                                                   fence->epochs));
  }
  absl::StatusOr<ScopedStatement> update =
      db.Get("UPDATE trials SET checkpoint_epoch = ?2 WHERE id = ?1");
  if (!update.ok()) return update.status();
  (*update)->BindInt64(1, trial_id);
  (*update)->BindInt64(2, epoch);
  return (*update)->Run().status();
}

absl::Status FinishTrialIn(StatementCache& db, const std::string& worker_id, int64_t trial_id,
                           int32_t attempt, int64_t now_ms) {
  absl::StatusOr<TrialFence> fence = SelectTrialFence(db, trial_id, attempt);
  if (!fence.ok()) return fence.status();
  if (fence->named_ending.has_value() && fence->named_ending->outcome == "succeeded" &&
      fence->named_worker_id == worker_id) {
    return absl::OkStatus();  // a retry
  }
  AttemptEnding ending;
  ending.outcome = "succeeded";
  absl::Status status = CheckFence(trial_id, &worker_id, attempt, *fence);
  if (status.ok()) status = CloseAttempt(db, trial_id, attempt, ending, now_ms);
  if (status.ok()) status = EndTrial(db, trial_id, TrialState::kSucceeded, "", now_ms, 0);
  if (status.ok()) status = ResetWorkerFailures(db, worker_id);
  if (status.ok()) status = ResetRankWorkerFailures(db, trial_id, attempt);
  if (status.ok()) status = FinishSweepIfDone(db, fence->sweep_id, now_ms);
  return status;
}

absl::StatusOr<FailOutcome> FailTrialIn(StatementCache& db, const std::string& worker_id,
                                        int64_t trial_id, int32_t attempt, FailureKind kind,
                                        const std::string& reason, int64_t now_ms,
                                        const FailurePolicy& policy) {
  absl::StatusOr<TrialFence> fence = SelectTrialFence(db, trial_id, attempt);
  if (!fence.ok()) return fence.status();
  // Any rank fails the whole gang; the attempt's row names rank 0's worker,
  // so another rank's failure names its rank and worker in the reason.
  absl::StatusOr<int32_t> rank = SelectRankOf(db, *fence, trial_id, attempt, worker_id);
  if (!rank.ok()) return rank.status();
  AttemptEnding ending;
  ending.outcome = kind == FailureKind::kReleased ? "released" : "failed";
  ending.failure_kind = kind == FailureKind::kReleased ? "" : FailureKindName(kind);
  ending.reason =
      *rank > 0 ? absl::StrCat("rank ", *rank, " on ", worker_id, ": ", reason) : reason;
  // A retry: this attempt already ended exactly so. The trial itself may
  // have moved on (requeued, even leased again), so its row cannot tell.
  const std::optional<AttemptEnding>& ended = fence->named_ending;
  if (ended.has_value() && *rank >= 0 && ended->outcome == ending.outcome &&
      ended->failure_kind == ending.failure_kind && ended->reason == ending.reason) {
    return FailOutcome{ended->requeued, ended->quarantined_worker};
  }
  absl::Status status =
      CheckFence(trial_id, *rank >= 0 ? nullptr : &worker_id, attempt, *fence);
  if (!status.ok()) return status;

  switch (kind) {
    case FailureKind::kReleased:
      ending.requeued = true;
      status = CloseAttempt(db, trial_id, attempt, ending, now_ms);
      if (status.ok()) status = RequeueTrial(db, trial_id, 0);
      if (!status.ok()) return status;
      return FailOutcome{true, false};
    case FailureKind::kDiverged:
    case FailureKind::kConfig:
      status = CloseAttempt(db, trial_id, attempt, ending, now_ms);
      if (status.ok()) {
        status = EndTrial(db, trial_id, TrialState::kFailed, ending.reason, now_ms, 0);
      }
      if (status.ok()) status = FinishSweepIfDone(db, fence->sweep_id, now_ms);
      if (!status.ok()) return status;
      return FailOutcome{false, false};
    case FailureKind::kCrash:
    case FailureKind::kPeerLost:
      break;
  }
  const int32_t failures = fence->failures + 1;
  // A rank that lost a peer is not at fault; the peer's own report, or its
  // lapsed lease, would blame the peer, but the attempt has ended by then.
  CountedFailure failure{trial_id, attempt, kind == FailureKind::kPeerLost ? "" : worker_id,
                         fence->sweep_id, ending,
                         absl::StrCat("failed ", failures, " of ", fence->max_attempts,
                                      " attempts; last: ", ending.reason)};
  return EndCountedFailure(db, std::move(failure), failures < fence->max_attempts, policy,
                           now_ms);
}

absl::Status PruneTrialIn(StatementCache& db, int64_t trial_id, int32_t attempt,
                          const std::string& reason, int64_t now_ms) {
  absl::StatusOr<TrialFence> fence = SelectTrialFence(db, trial_id, attempt);
  if (!fence.ok()) return fence.status();
  if (fence->named_ending.has_value() && fence->named_ending->outcome == "pruned") {
    return absl::OkStatus();  // a retry
  }
  absl::Status status = CheckFence(trial_id, nullptr, attempt, *fence);
  if (status.ok()) {
    AttemptEnding ending;
    ending.outcome = "pruned";
    ending.reason = reason;
    status = CloseAttempt(db, trial_id, attempt, ending, now_ms);
  }
  if (status.ok()) status = EndTrial(db, trial_id, TrialState::kPruned, reason, now_ms, 0);
  if (status.ok()) status = FinishSweepIfDone(db, fence->sweep_id, now_ms);
  return status;
}

absl::StatusOr<bool> CancelTrialIn(StatementCache& db, int64_t trial_id, int64_t now_ms) {
  absl::StatusOr<TrialFence> fence = SelectTrialFence(db, trial_id, 0);
  if (!fence.ok()) return fence.status();
  if (fence->state != TrialState::kPending && fence->state != TrialState::kRunning) return false;
  absl::Status status;
  if (fence->state == TrialState::kRunning) {
    AttemptEnding ending;
    ending.outcome = "cancelled";
    ending.reason = "trial cancelled";
    status = CloseAttempt(db, trial_id, fence->attempt, ending, now_ms);
  }
  if (status.ok()) status = EndTrial(db, trial_id, TrialState::kCancelled, "", now_ms, 0);
  if (status.ok()) status = FinishSweepIfDone(db, fence->sweep_id, now_ms);
  if (!status.ok()) return status;
  return true;
}

absl::StatusOr<int32_t> CancelSweepIn(StatementCache& db, int64_t sweep_id, int64_t now_ms) {
  absl::StatusOr<SweepRecord> sweep = SelectSweep(db, sweep_id);
  if (!sweep.ok()) return sweep.status();
  if (sweep->state != SweepState::kRunning) return 0;  // already over: nothing to cancel

  absl::StatusOr<ScopedStatement> attempts = db.Get(R"sql(
      UPDATE attempts SET outcome = 'cancelled', reason = 'sweep cancelled', ended_at_ms = ?2
      WHERE (trial_id, attempt) IN (
        SELECT id, attempt FROM trials WHERE sweep_id = ?1 AND state = 'running'))sql");
  if (!attempts.ok()) return attempts.status();
  (*attempts)->BindInt64(1, sweep_id);
  (*attempts)->BindInt64(2, now_ms);
  absl::StatusOr<int> changed = (*attempts)->Run();
  if (!changed.ok()) return changed.status();

  absl::StatusOr<ScopedStatement> trials = db.Get(R"sql(
      UPDATE trials SET state = 'cancelled', ended_at_ms = ?2, lease_expires_ms = NULL
      WHERE sweep_id = ?1 AND state IN ('pending', 'running'))sql");
  if (!trials.ok()) return trials.status();
  (*trials)->BindInt64(1, sweep_id);
  (*trials)->BindInt64(2, now_ms);
  absl::StatusOr<int> cancelled = (*trials)->Run();
  if (!cancelled.ok()) return cancelled.status();

  absl::StatusOr<ScopedStatement> update = db.Get(
      "UPDATE sweeps SET state = 'cancelled', ended_at_ms = ?2 WHERE id = ?1 AND state = "
      "'running'");
  if (!update.ok()) return update.status();
  (*update)->BindInt64(1, sweep_id);
  (*update)->BindInt64(2, now_ms);
  changed = (*update)->Run();
  if (!changed.ok()) return changed.status();
  return static_cast<int32_t>(*cancelled);
}

}  // namespace sslsweep
