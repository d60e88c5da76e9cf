#include "coordinator/store_attempt_updates.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/store_queries.h"

namespace sslsweep {

absl::StatusOr<TrialFence> SelectTrialFence(StatementCache& db, int64_t trial_id,
                                            int32_t attempt) {
  absl::StatusOr<ScopedStatement> select = db.Get(R"sql(
      SELECT t.sweep_id, t.state, t.attempt, coalesce(t.worker_id, ''), t.failures,
             s.max_attempts, t.epochs, coalesce(a.worker_id, ''), a.outcome,
             coalesce(a.failure_kind, ''), a.reason, a.requeued, a.quarantined_worker
      FROM trials t JOIN sweeps s ON s.id = t.sweep_id
      LEFT JOIN attempts a ON a.trial_id = t.id AND a.attempt = ?2
      WHERE t.id = ?1)sql");
  if (!select.ok()) return select.status();
  (*select)->BindInt64(1, trial_id);
  (*select)->BindInt64(2, attempt);
  std::optional<TrialFence> fence;
  absl::Status status = (*select)->ForEachRow([&](const SqliteStatement& row) {
    absl::StatusOr<TrialState> state = ParseTrialState(row.ColumnText(1));
    if (!state.ok()) return state.status();
    fence.emplace();
    fence->sweep_id = row.ColumnInt64(0);
    fence->state = *state;
    fence->attempt = static_cast<int32_t>(row.ColumnInt64(2));
    fence->worker_id = row.ColumnText(3);
    fence->failures = static_cast<int32_t>(row.ColumnInt64(4));
    fence->max_attempts = static_cast<int32_t>(row.ColumnInt64(5));
    fence->epochs = static_cast<int32_t>(row.ColumnInt64(6));
    fence->named_worker_id = row.ColumnText(7);
    if (!row.ColumnIsNull(8)) {
      fence->named_ending = AttemptEnding{row.ColumnText(8), row.ColumnText(9),
                                          row.ColumnText(10), row.ColumnInt64(11) != 0,
                                          row.ColumnInt64(12) != 0};
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  if (!fence.has_value()) return absl::NotFoundError(absl::StrCat("no trial ", trial_id));
  return *std::move(fence);
}

absl::Status CheckFence(int64_t trial_id, const std::string* worker_id, int32_t attempt,
                        const TrialFence& fence) {
  std::string problem;
  if (attempt != fence.attempt) {
    problem = "is not current";
  } else if (fence.state != TrialState::kRunning) {
    problem = "is not running";
  } else if (worker_id != nullptr && *worker_id != fence.worker_id) {
    problem = absl::StrCat("is held by ", fence.worker_id, ", not ", *worker_id);
  } else {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      absl::StrCat("trial ", trial_id, ": attempt ", attempt, " ", problem, " (current attempt ",
                   fence.attempt, ", state ", TrialStateName(fence.state), ")"));
}

absl::Status EndTrial(StatementCache& db, int64_t trial_id, TrialState state,
                      const std::string& reason, int64_t now_ms, int32_t failures_added) {
  absl::StatusOr<ScopedStatement> update = db.Get(R"sql(
      UPDATE trials SET state = ?2, failure_reason = ?3, ended_at_ms = ?4,
                        lease_expires_ms = NULL, failures = failures + ?5
      WHERE id = ?1)sql");
  if (!update.ok()) return update.status();
  (*update)->BindInt64(1, trial_id);
  (*update)->BindText(2, TrialStateName(state));
  (*update)->BindText(3, reason);
  (*update)->BindInt64(4, now_ms);
  (*update)->BindInt64(5, failures_added);
  return (*update)->Run().status();
}

absl::Status RequeueTrial(StatementCache& db, int64_t trial_id, int32_t failures_added) {
  absl::StatusOr<ScopedStatement> update = db.Get(R"sql(
      UPDATE trials SET state = 'pending', worker_id = NULL, lease_expires_ms = NULL,
                        failures = failures + ?2
      WHERE id = ?1)sql");
  if (!update.ok()) return update.status();
  (*update)->BindInt64(1, trial_id);
  (*update)->BindInt64(2, failures_added);
  return (*update)->Run().status();
}

absl::Status CloseAttempt(StatementCache& db, int64_t trial_id, int32_t attempt,
                          const AttemptEnding& ending, int64_t now_ms) {
  absl::StatusOr<ScopedStatement> update = db.Get(R"sql(
      UPDATE attempts SET outcome = ?3, failure_kind = nullif(?4, ''), reason = ?5,
                          requeued = ?6, quarantined_worker = ?7, ended_at_ms = ?8
      WHERE trial_id = ?1 AND attempt = ?2)sql");
  if (!update.ok()) return update.status();
  (*update)->BindInt64(1, trial_id);
  (*update)->BindInt64(2, attempt);
  (*update)->BindText(3, ending.outcome);
  (*update)->BindText(4, ending.failure_kind);
  (*update)->BindText(5, ending.reason);
  (*update)->BindInt64(6, ending.requeued ? 1 : 0);
  (*update)->BindInt64(7, ending.quarantined_worker ? 1 : 0);
  (*update)->BindInt64(8, now_ms);
  return (*update)->Run().status();
}

absl::StatusOr<bool> BlameWorker(StatementCache& db, const std::string& worker_id,
                                 const FailurePolicy& policy, const std::string& last_failure,
                                 int64_t now_ms) {
  // RETURNING the column itself: SQLite 3.40 gets `quarantined_at_ms IS NOT
  // NULL` wrong there for a column that ALTER TABLE added.
  absl::StatusOr<ScopedStatement> count = db.Get(R"sql(
      UPDATE workers SET consecutive_failures = consecutive_failures + 1 WHERE id = ?1
      RETURNING consecutive_failures, quarantined_at_ms)sql");
  if (!count.ok()) return count.status();
  (*count)->BindText(1, worker_id);
  absl::StatusOr<bool> row = (*count)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError(absl::StrCat("no worker ", worker_id));
  const int64_t failures = (*count)->ColumnInt64(0);
  const bool already_quarantined = !(*count)->ColumnIsNull(1);
  if (already_quarantined || policy.quarantine_after <= 0 || failures < policy.quarantine_after) {
    return false;
  }

  absl::StatusOr<ScopedStatement> quarantine = db.Get(
      "UPDATE workers SET quarantined_at_ms = ?2, quarantine_reason = ?3 WHERE id = ?1");
  if (!quarantine.ok()) return quarantine.status();
  (*quarantine)->BindText(1, worker_id);
  (*quarantine)->BindInt64(2, now_ms);
  (*quarantine)->BindText(
      3, absl::StrCat(failures, failures == 1 ? " failed attempt" : " failed attempts",
                      " in a row; last: ", last_failure));
  absl::StatusOr<int> changed = (*quarantine)->Run();
  if (!changed.ok()) return changed.status();
  return true;
}

absl::Status ResetWorkerFailures(StatementCache& db, const std::string& worker_id) {
  absl::StatusOr<ScopedStatement> update =
      db.Get("UPDATE workers SET consecutive_failures = 0 WHERE id = ?1");
  if (!update.ok()) return update.status();
  (*update)->BindText(1, worker_id);
  return (*update)->Run().status();
}

absl::Status ResetRankWorkerFailures(StatementCache& db, int64_t trial_id, int32_t attempt) {
  absl::StatusOr<ScopedStatement> update = db.Get(R"sql(
      UPDATE workers SET consecutive_failures = 0 WHERE id IN (
        SELECT worker_id FROM attempt_ranks WHERE trial_id = ?1 AND attempt = ?2))sql");
  if (!update.ok()) return update.status();
  (*update)->BindInt64(1, trial_id);
  (*update)->BindInt64(2, attempt);
  return (*update)->Run().status();
}

absl::Status FinishSweepIfDone(StatementCache& db, int64_t sweep_id, int64_t now_ms) {
  absl::StatusOr<ScopedStatement> finish = db.Get(R"sql(
      UPDATE sweeps SET state = 'finished', ended_at_ms = ?2
      WHERE id = ?1 AND state = 'running' AND NOT EXISTS (
        SELECT 1 FROM trials WHERE sweep_id = ?1 AND state IN ('pending', 'running')))sql");
  if (!finish.ok()) return finish.status();
  (*finish)->BindInt64(1, sweep_id);
  (*finish)->BindInt64(2, now_ms);
  return (*finish)->Run().status();
}

absl::Status StartAttempt(StatementCache& db, int64_t trial_id, const std::string& worker_id,
                          int64_t now_ms, int64_t lease_expires_ms) {
  absl::StatusOr<ScopedStatement> lease = db.Get(R"sql(
      UPDATE trials SET state = 'running', attempt = attempt + 1, worker_id = ?2,
                        lease_expires_ms = ?3
      WHERE id = ?1 AND state = 'pending' RETURNING attempt)sql");
  if (!lease.ok()) return lease.status();
  (*lease)->BindInt64(1, trial_id);
  (*lease)->BindText(2, worker_id);
  (*lease)->BindInt64(3, lease_expires_ms);
  absl::StatusOr<bool> row = (*lease)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError(absl::StrCat("trial ", trial_id, " is not pending"));
  const int64_t attempt = (*lease)->ColumnInt64(0);

  absl::StatusOr<ScopedStatement> history = db.Get(R"sql(
      INSERT INTO attempts (trial_id, attempt, worker_id, started_at_ms)
      VALUES (?1, ?2, ?3, ?4))sql");
  if (!history.ok()) return history.status();
  (*history)->BindInt64(1, trial_id);
  (*history)->BindInt64(2, attempt);
  (*history)->BindText(3, worker_id);
  (*history)->BindInt64(4, now_ms);
  return (*history)->Run().status();
}

// ---- Gangs: the ranks of data-parallel attempts --------------------------

absl::StatusOr<std::vector<std::string>> SelectIdleWorkers(StatementCache& db,
                                                           const std::string& worker_id,
                                                           int64_t idle_since_ms, int32_t limit) {
  absl::StatusOr<ScopedStatement> select = db.Get(R"sql(
      SELECT w.id FROM workers w
      WHERE w.id <> ?1 AND w.quarantined_at_ms IS NULL AND w.idle_polled_at_ms >= ?2
        AND NOT EXISTS (SELECT 1 FROM trials t WHERE t.worker_id = w.id AND t.state = 'running')
        AND NOT EXISTS (SELECT 1 FROM attempt_ranks r
                        WHERE r.worker_id = w.id AND r.lease_expires_ms IS NOT NULL)
      ORDER BY w.idle_polled_at_ms DESC, w.number LIMIT ?3)sql");
  if (!select.ok()) return select.status();
  (*select)->BindText(1, worker_id);
  (*select)->BindInt64(2, idle_since_ms);
  (*select)->BindInt64(3, limit);
  std::vector<std::string> idle;
  absl::Status status = (*select)->ForEachRow([&](const SqliteStatement& row) {
    idle.push_back(row.ColumnText(0));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return idle;
}

absl::StatusOr<int64_t> CountLiveWorkers(StatementCache& db, int64_t alive_since_ms) {
  absl::StatusOr<ScopedStatement> select = db.Get(
      "SELECT count(*) FROM workers WHERE quarantined_at_ms IS NULL AND last_heartbeat_ms >= ?1");
  if (!select.ok()) return select.status();
  (*select)->BindInt64(1, alive_since_ms);
  absl::StatusOr<bool> row = (*select)->Step();
  if (!row.ok()) return row.status();
  return *row ? (*select)->ColumnInt64(0) : 0;
}

absl::Status MarkIdle(StatementCache& db, const std::string& worker_id,
                      std::optional<int64_t> now_ms) {
  absl::StatusOr<ScopedStatement> update =
      db.Get("UPDATE workers SET idle_polled_at_ms = ?2 WHERE id = ?1");
  if (!update.ok()) return update.status();
  (*update)->BindText(1, worker_id);
  if (now_ms.has_value()) {
    (*update)->BindInt64(2, *now_ms);
  } else {
    (*update)->BindNull(2);
  }
  return (*update)->Run().status();
}

absl::Status StartGang(StatementCache& db, int64_t trial_id, const std::string& worker_id,
                       const std::vector<std::string>& others, int64_t now_ms,
                       int64_t lease_expires_ms, int64_t delivery_expires_ms) {
  absl::Status status = StartAttempt(db, trial_id, worker_id, now_ms, lease_expires_ms);
  if (status.ok()) status = MarkIdle(db, worker_id, std::nullopt);
  for (size_t i = 0; i < others.size() && status.ok(); ++i) {
    absl::StatusOr<ScopedStatement> insert = db.Get(R"sql(
        INSERT INTO attempt_ranks (trial_id, attempt, rank, worker_id, lease_expires_ms)
        SELECT id, attempt, ?2, ?3, ?4 FROM trials WHERE id = ?1)sql");
    if (!insert.ok()) return insert.status();
    (*insert)->BindInt64(1, trial_id);
    (*insert)->BindInt64(2, static_cast<int64_t>(i) + 1);
    (*insert)->BindText(3, others[i]);
    (*insert)->BindInt64(4, delivery_expires_ms);
    status = (*insert)->Run().status();
    if (status.ok()) status = MarkIdle(db, others[i], std::nullopt);
  }
  return status;
}

absl::StatusOr<std::optional<int64_t>> DeliverAssignedRank(StatementCache& db,
                                                           const std::string& worker_id,
                                                           int64_t lease_expires_ms) {
  absl::StatusOr<ScopedStatement> update = db.Get(R"sql(
      UPDATE attempt_ranks SET delivered = 1, lease_expires_ms = ?2
      WHERE (trial_id, attempt, rank) = (
        SELECT trial_id, attempt, rank FROM attempt_ranks
        WHERE worker_id = ?1 AND lease_expires_ms IS NOT NULL AND delivered = 0
        ORDER BY trial_id LIMIT 1)
      RETURNING trial_id)sql");
  if (!update.ok()) return update.status();
  (*update)->BindText(1, worker_id);
  (*update)->BindInt64(2, lease_expires_ms);
  std::optional<int64_t> trial_id;
  absl::Status status = (*update)->ForEachRow([&](const SqliteStatement& row) {
    trial_id = row.ColumnInt64(0);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return trial_id;
}

absl::StatusOr<int32_t> SelectRankOf(StatementCache& db, const TrialFence& fence,
                                     int64_t trial_id, int32_t attempt,
                                     const std::string& worker_id) {
  if (!fence.named_worker_id.empty() && fence.named_worker_id == worker_id) return 0;
  absl::StatusOr<ScopedStatement> select = db.Get(
      "SELECT rank FROM attempt_ranks WHERE trial_id = ?1 AND attempt = ?2 AND worker_id = ?3");
  if (!select.ok()) return select.status();
  (*select)->BindInt64(1, trial_id);
  (*select)->BindInt64(2, attempt);
  (*select)->BindText(3, worker_id);
  absl::StatusOr<bool> row = (*select)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return -1;
  return static_cast<int32_t>((*select)->ColumnInt64(0));
}

}  // namespace sslsweep
