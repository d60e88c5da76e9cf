#include "coordinator/store_queries.h"

#include <algorithm>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"

namespace sslsweep {
namespace {

constexpr TrialState kTrialStates[] = {TrialState::kPending,   TrialState::kRunning,
                                       TrialState::kSucceeded, TrialState::kFailed,
                                       TrialState::kCancelled, TrialState::kPruned};
constexpr SweepState kSweepStates[] = {SweepState::kRunning, SweepState::kFinished,
                                       SweepState::kCancelled};

const char* SweepStateName(SweepState state) {
  switch (state) {
    case SweepState::kRunning:
      return "running";
    case SweepState::kFinished:
      return "finished";
    case SweepState::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

absl::StatusOr<SweepState> ParseSweepState(const std::string& text) {
  for (SweepState state : kSweepStates) {
    if (text == SweepStateName(state)) return state;
  }
  return absl::DataLossError(absl::StrCat("unknown sweep state '", text, "' in the store"));
}

// ---- Sweeps -------------------------------------------------------------

// Columns 10.. count the trials per state in TrialState's order (1..6).
constexpr int kTrialCountsColumn = 10;
constexpr char kSelectSweepsPrefix[] = R"sql(
SELECT s.id, s.name, s.source_yaml, s.metric_name, s.metric_goal, s.state, s.created_at_ms,
       s.max_attempts, s.max_concurrent, s.priority,
       count(t.id),
       count(t.id) FILTER (WHERE t.state = 'pending'),
       count(t.id) FILTER (WHERE t.state = 'running'),
       count(t.id) FILTER (WHERE t.state = 'succeeded'),
       count(t.id) FILTER (WHERE t.state = 'failed'),
       count(t.id) FILTER (WHERE t.state = 'cancelled'),
       count(t.id) FILTER (WHERE t.state = 'pruned')
FROM sweeps s LEFT JOIN trials t ON t.sweep_id = s.id
)sql";

absl::StatusOr<SweepRecord> SweepFromRow(const SqliteStatement& row) {
  SweepRecord sweep;
  sweep.id = row.ColumnInt64(0);
  sweep.name = row.ColumnText(1);
  sweep.source_yaml = row.ColumnText(2);
  sweep.metric_name = row.ColumnText(3);
  sweep.metric_goal = row.ColumnText(4);
  absl::StatusOr<SweepState> state = ParseSweepState(row.ColumnText(5));
  if (!state.ok()) return state.status();
  sweep.state = *state;
  sweep.created_at_ms = row.ColumnInt64(6);
  sweep.max_attempts = static_cast<int32_t>(row.ColumnInt64(7));
  sweep.max_concurrent = static_cast<int32_t>(row.ColumnInt64(8));
  sweep.priority = static_cast<int32_t>(row.ColumnInt64(9));
  sweep.trials_total = static_cast<int32_t>(row.ColumnInt64(kTrialCountsColumn));
  for (TrialState trial_state : kTrialStates) {
    const int slot = static_cast<int>(trial_state);
    sweep.trial_counts[slot] = static_cast<int32_t>(row.ColumnInt64(kTrialCountsColumn + slot));
  }
  return sweep;
}

absl::StatusOr<std::vector<SweepRecord>> CollectSweeps(ScopedStatement& statement) {
  std::vector<SweepRecord> sweeps;
  absl::Status status = statement->ForEachRow([&](const SqliteStatement& row) {
    absl::StatusOr<SweepRecord> sweep = SweepFromRow(row);
    if (!sweep.ok()) return sweep.status();
    sweeps.push_back(*std::move(sweep));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return sweeps;
}

absl::Status InsertParams(StatementCache& db, int64_t trial_id,
                          const std::vector<ParamValue>& params) {
  for (size_t position = 0; position < params.size(); ++position) {
    absl::StatusOr<ScopedStatement> insert = db.Get(
        "INSERT INTO trial_params (trial_id, path, value, position) VALUES (?1, ?2, ?3, ?4)");
    if (!insert.ok()) return insert.status();
    (*insert)->BindInt64(1, trial_id);
    (*insert)->BindText(2, params[position].path);
    (*insert)->BindText(3, params[position].value);
    (*insert)->BindInt64(4, static_cast<int64_t>(position));
    absl::StatusOr<int> inserted = (*insert)->Run();
    if (!inserted.ok()) return inserted.status();
  }
  return absl::OkStatus();
}

// ---- Trials -------------------------------------------------------------

constexpr char kSelectTrialsPrefix[] = R"sql(
SELECT t.id, t.sweep_id, t.idx, t.state, t.attempt, t.worker_id, t.epochs, t.config_yaml,
       t.failure_reason, t.lease_expires_ms,
       coalesce((SELECT max(m.epoch) FROM metrics m WHERE m.trial_id = t.id), -1),
       t.failures, s.max_attempts, coalesce(t.checkpoint_epoch, -1), t.ranks
FROM trials t JOIN sweeps s ON s.id = t.sweep_id
)sql";

absl::StatusOr<TrialRecord> TrialFromRow(const SqliteStatement& row) {
  TrialRecord trial;
  trial.id = row.ColumnInt64(0);
  trial.sweep_id = row.ColumnInt64(1);
  trial.index = static_cast<int32_t>(row.ColumnInt64(2));
  absl::StatusOr<TrialState> state = ParseTrialState(row.ColumnText(3));
  if (!state.ok()) return state.status();
  trial.state = *state;
  trial.attempt = static_cast<int32_t>(row.ColumnInt64(4));
  trial.worker_id = row.ColumnText(5);
  trial.epochs = static_cast<int32_t>(row.ColumnInt64(6));
  trial.config_yaml = row.ColumnText(7);
  trial.failure_reason = row.ColumnText(8);
  trial.lease_expires_ms = row.ColumnInt64(9);
  trial.last_epoch = static_cast<int32_t>(row.ColumnInt64(10));
  trial.failures = static_cast<int32_t>(row.ColumnInt64(11));
  trial.max_attempts = static_cast<int32_t>(row.ColumnInt64(12));
  trial.checkpoint_epoch = static_cast<int32_t>(row.ColumnInt64(13));
  trial.ranks = static_cast<int32_t>(row.ColumnInt64(14));
  if (trial.state == TrialState::kRunning) trial.rank_workers.push_back(trial.worker_id);
  return trial;
}

absl::StatusOr<std::vector<TrialRecord>> CollectTrials(ScopedStatement& statement) {
  std::vector<TrialRecord> trials;
  absl::Status status = statement->ForEachRow([&](const SqliteStatement& row) {
    absl::StatusOr<TrialRecord> trial = TrialFromRow(row);
    if (!trial.ok()) return trial.status();
    trials.push_back(*std::move(trial));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return trials;
}

// Fills in the parameters of `trials` from rows of (trial_id, path, value).
absl::Status AttachParams(ScopedStatement& statement, std::vector<TrialRecord>& trials) {
  std::unordered_map<int64_t, TrialRecord*> by_id;
  for (TrialRecord& trial : trials) by_id[trial.id] = &trial;
  return statement->ForEachRow([&](const SqliteStatement& row) {
    auto it = by_id.find(row.ColumnInt64(0));
    if (it != by_id.end()) it->second->params.push_back({row.ColumnText(1), row.ColumnText(2)});
    return absl::OkStatus();
  });
}

// Appends ranks 1.. of the running trials among `trials` from rows of
// (trial_id, worker_id) ordered by trial and rank; rank 0 is already there.
absl::Status AttachRanks(ScopedStatement& statement, std::vector<TrialRecord>& trials) {
  std::unordered_map<int64_t, TrialRecord*> by_id;
  for (TrialRecord& trial : trials) by_id[trial.id] = &trial;
  return statement->ForEachRow([&](const SqliteStatement& row) {
    auto it = by_id.find(row.ColumnInt64(0));
    if (it != by_id.end()) it->second->rank_workers.push_back(row.ColumnText(1));
    return absl::OkStatus();
  });
}

// ---- Metrics ------------------------------------------------------------

// Groups rows of (trial_id, epoch, name, value), ordered by trial and epoch,
// into one EpochMetrics per (trial, epoch). A NULL epoch is a trial with no
// metrics.
absl::StatusOr<std::vector<EpochMetrics>> CollectEpochMetrics(ScopedStatement& statement) {
  std::vector<EpochMetrics> epochs;
  absl::Status status = statement->ForEachRow([&](const SqliteStatement& row) {
    const int64_t trial_id = row.ColumnInt64(0);
    const int32_t epoch = row.ColumnIsNull(1) ? -1 : static_cast<int32_t>(row.ColumnInt64(1));
    if (epochs.empty() || epochs.back().trial_id != trial_id || epochs.back().epoch != epoch) {
      epochs.push_back(EpochMetrics{trial_id, epoch, {}});
    }
    if (epoch >= 0) epochs.back().metrics.push_back({row.ColumnText(2), row.ColumnDouble(3)});
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return epochs;
}

absl::StatusOr<int> InsertMetric(StatementCache& db, int64_t trial_id, int32_t attempt,
                                 int32_t epoch, const MetricValue& metric) {
  // DO NOTHING only on the key: unlike INSERT OR IGNORE it still fails on a
  // CHECK or NOT NULL violation instead of dropping the row silently.
  absl::StatusOr<ScopedStatement> insert = db.Get(R"sql(
      INSERT INTO metrics (trial_id, epoch, name, value, attempt) VALUES (?1, ?2, ?3, ?4, ?5)
      ON CONFLICT (trial_id, epoch, name) DO NOTHING)sql");
  if (!insert.ok()) return insert.status();
  (*insert)->BindInt64(1, trial_id);
  (*insert)->BindInt64(2, epoch);
  (*insert)->BindText(3, metric.name);
  (*insert)->BindDouble(4, metric.value);
  (*insert)->BindInt64(5, attempt);
  return (*insert)->Run();
}

// ---- Workers ------------------------------------------------------------

// Groups rows of (worker columns..., running trial id or NULL), ordered by
// worker and trial, into one WorkerRecord per worker. A worker runs the
// trials it holds as rank 0 and those it holds a rank of.
constexpr char kSelectWorkersPrefix[] = R"sql(
SELECT w.id, w.hostname, w.pid, w.registered_at_ms, w.last_heartbeat_ms,
       w.consecutive_failures, w.quarantined_at_ms IS NOT NULL, w.quarantine_reason, t.id
FROM workers w LEFT JOIN (
  SELECT worker_id, id FROM trials WHERE state = 'running'
  UNION ALL
  SELECT worker_id, trial_id FROM attempt_ranks WHERE lease_expires_ms IS NOT NULL
) t ON t.worker_id = w.id
)sql";

absl::StatusOr<std::vector<WorkerRecord>> CollectWorkers(ScopedStatement& statement) {
  std::vector<WorkerRecord> workers;
  absl::Status status = statement->ForEachRow([&](const SqliteStatement& row) {
    std::string id = row.ColumnText(0);
    if (workers.empty() || workers.back().id != id) {
      WorkerRecord worker;
      worker.id = std::move(id);
      worker.hostname = row.ColumnText(1);
      worker.pid = static_cast<int32_t>(row.ColumnInt64(2));
      worker.registered_at_ms = row.ColumnInt64(3);
      worker.last_heartbeat_ms = row.ColumnInt64(4);
      worker.consecutive_failures = static_cast<int32_t>(row.ColumnInt64(5));
      worker.quarantined = row.ColumnInt64(6) != 0;
      worker.quarantine_reason = row.ColumnText(7);
      workers.push_back(std::move(worker));
    }
    if (!row.ColumnIsNull(8)) workers.back().running_trial_ids.push_back(row.ColumnInt64(8));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return workers;
}

}  // namespace

absl::StatusOr<TrialState> ParseTrialState(const std::string& text) {
  for (TrialState state : kTrialStates) {
    if (text == TrialStateName(state)) return state;
  }
  return absl::DataLossError(absl::StrCat("unknown trial state '", text, "' in the store"));
}

absl::StatusOr<int64_t> InsertSweep(StatementCache& db, const NewSweep& sweep, int64_t now_ms) {
  absl::StatusOr<ScopedStatement> insert = db.Get(R"sql(
      INSERT INTO sweeps (name, source_yaml, metric_name, metric_goal, state, created_at_ms,
                          max_attempts, max_concurrent, priority)
      VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6, ?7, ?8) RETURNING id)sql");
  if (!insert.ok()) return insert.status();
  (*insert)->BindText(1, sweep.name);
  (*insert)->BindText(2, sweep.source_yaml);
  (*insert)->BindText(3, sweep.metric_name);
  (*insert)->BindText(4, sweep.metric_goal);
  (*insert)->BindInt64(5, now_ms);
  (*insert)->BindInt64(6, sweep.max_attempts);
  (*insert)->BindInt64(7, sweep.max_concurrent);
  (*insert)->BindInt64(8, sweep.priority);
  absl::StatusOr<bool> row = (*insert)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError("inserting a sweep returned no id");
  return (*insert)->ColumnInt64(0);
}

absl::Status InsertTrial(StatementCache& db, int64_t sweep_id, const NewTrial& trial,
                         int64_t now_ms) {
  absl::StatusOr<ScopedStatement> insert = db.Get(R"sql(
      INSERT INTO trials (sweep_id, idx, state, attempt, epochs, config_yaml, created_at_ms,
                          ranks)
      VALUES (?1, ?2, 'pending', 0, ?3, ?4, ?5, ?6) RETURNING id)sql");
  if (!insert.ok()) return insert.status();
  (*insert)->BindInt64(1, sweep_id);
  (*insert)->BindInt64(2, trial.index);
  (*insert)->BindInt64(3, trial.epochs);
  (*insert)->BindText(4, trial.config_yaml);
  (*insert)->BindInt64(5, now_ms);
  (*insert)->BindInt64(6, trial.ranks);
  absl::StatusOr<bool> row = (*insert)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError("inserting a trial returned no id");
  return InsertParams(db, (*insert)->ColumnInt64(0), trial.params);
}

absl::StatusOr<std::vector<SweepRecord>> SelectSweeps(StatementCache& db) {
  absl::StatusOr<ScopedStatement> select =
      db.Get(absl::StrCat(kSelectSweepsPrefix, "GROUP BY s.id ORDER BY s.id"));
  if (!select.ok()) return select.status();
  return CollectSweeps(*select);
}

absl::StatusOr<SweepRecord> SelectSweep(StatementCache& db, int64_t sweep_id) {
  absl::StatusOr<ScopedStatement> select =
      db.Get(absl::StrCat(kSelectSweepsPrefix, "WHERE s.id = ?1 GROUP BY s.id"));
  if (!select.ok()) return select.status();
  (*select)->BindInt64(1, sweep_id);
  absl::StatusOr<std::vector<SweepRecord>> sweeps = CollectSweeps(*select);
  if (!sweeps.ok()) return sweeps.status();
  if (sweeps->empty()) return absl::NotFoundError(absl::StrCat("no sweep ", sweep_id));
  return std::move(sweeps->front());
}

absl::StatusOr<std::vector<TrialRecord>> SelectTrials(StatementCache& db, int64_t sweep_id) {
  absl::StatusOr<ScopedStatement> select =
      db.Get(absl::StrCat(kSelectTrialsPrefix, "WHERE t.sweep_id = ?1 ORDER BY t.idx"));
  if (!select.ok()) return select.status();
  (*select)->BindInt64(1, sweep_id);
  absl::StatusOr<std::vector<TrialRecord>> trials = CollectTrials(*select);
  if (!trials.ok()) return trials.status();

  absl::StatusOr<ScopedStatement> params = db.Get(R"sql(
      SELECT p.trial_id, p.path, p.value FROM trial_params p JOIN trials t ON t.id = p.trial_id
      WHERE t.sweep_id = ?1 ORDER BY p.trial_id, p.position)sql");
  if (!params.ok()) return params.status();
  (*params)->BindInt64(1, sweep_id);
  absl::Status status = AttachParams(*params, *trials);
  if (!status.ok()) return status;

  absl::StatusOr<ScopedStatement> ranks = db.Get(R"sql(
      SELECT r.trial_id, r.worker_id FROM attempt_ranks r
      JOIN trials t ON t.id = r.trial_id AND t.attempt = r.attempt
      WHERE t.sweep_id = ?1 AND t.state = 'running' ORDER BY r.trial_id, r.rank)sql");
  if (!ranks.ok()) return ranks.status();
  (*ranks)->BindInt64(1, sweep_id);
  status = AttachRanks(*ranks, *trials);
  if (!status.ok()) return status;
  return trials;
}

absl::StatusOr<TrialRecord> SelectTrial(StatementCache& db, int64_t trial_id) {
  absl::StatusOr<ScopedStatement> select =
      db.Get(absl::StrCat(kSelectTrialsPrefix, "WHERE t.id = ?1"));
  if (!select.ok()) return select.status();
  (*select)->BindInt64(1, trial_id);
  absl::StatusOr<std::vector<TrialRecord>> trials = CollectTrials(*select);
  if (!trials.ok()) return trials.status();
  if (trials->empty()) return absl::NotFoundError(absl::StrCat("no trial ", trial_id));

  absl::StatusOr<ScopedStatement> params = db.Get(
      "SELECT trial_id, path, value FROM trial_params WHERE trial_id = ?1 ORDER BY position");
  if (!params.ok()) return params.status();
  (*params)->BindInt64(1, trial_id);
  absl::Status status = AttachParams(*params, *trials);
  if (!status.ok()) return status;

  absl::StatusOr<ScopedStatement> ranks = db.Get(R"sql(
      SELECT r.trial_id, r.worker_id FROM attempt_ranks r
      JOIN trials t ON t.id = r.trial_id AND t.attempt = r.attempt
      WHERE t.id = ?1 AND t.state = 'running' ORDER BY r.rank)sql");
  if (!ranks.ok()) return ranks.status();
  (*ranks)->BindInt64(1, trial_id);
  status = AttachRanks(*ranks, *trials);
  if (!status.ok()) return status;
  return std::move(trials->front());
}

absl::StatusOr<int32_t> InsertMetrics(StatementCache& db, int64_t trial_id, int32_t attempt,
                                      int32_t epoch, const std::vector<MetricValue>& metrics) {
  int32_t written = 0;
  for (const MetricValue& metric : metrics) {
    absl::StatusOr<int> inserted = InsertMetric(db, trial_id, attempt, epoch, metric);
    if (!inserted.ok()) return inserted.status();
    written += *inserted;
  }
  return written;
}

absl::StatusOr<std::vector<EpochMetrics>> SelectFinalMetrics(StatementCache& db,
                                                             int64_t sweep_id) {
  // The correlated max() is one descent of the metrics key per trial.
  absl::StatusOr<ScopedStatement> select = db.Get(R"sql(
      SELECT t.id, m.epoch, m.name, m.value
      FROM trials t
      LEFT JOIN metrics m ON m.trial_id = t.id
        AND m.epoch = (SELECT max(epoch) FROM metrics WHERE trial_id = t.id)
      WHERE t.sweep_id = ?1
      ORDER BY t.idx, m.name)sql");
  if (!select.ok()) return select.status();
  (*select)->BindInt64(1, sweep_id);
  return CollectEpochMetrics(*select);
}

absl::StatusOr<std::vector<EpochMetrics>> SelectTrialMetrics(StatementCache& db,
                                                             int64_t trial_id) {
  absl::StatusOr<ScopedStatement> select = db.Get(
      "SELECT trial_id, epoch, name, value FROM metrics WHERE trial_id = ?1 ORDER BY epoch, name");
  if (!select.ok()) return select.status();
  (*select)->BindInt64(1, trial_id);
  return CollectEpochMetrics(*select);
}

absl::StatusOr<std::vector<MetricHistory>> SelectMetricHistories(StatementCache& db,
                                                                 int64_t sweep_id,
                                                                 const std::string& name) {
  absl::StatusOr<ScopedStatement> select = db.Get(R"sql(
      SELECT t.id, t.state, t.attempt, m.epoch, m.value
      FROM trials t LEFT JOIN metrics m ON m.trial_id = t.id AND m.name = ?2
      WHERE t.sweep_id = ?1
      ORDER BY t.id, m.epoch)sql");
  if (!select.ok()) return select.status();
  (*select)->BindInt64(1, sweep_id);
  (*select)->BindText(2, name);
  std::vector<MetricHistory> histories;
  absl::Status status = (*select)->ForEachRow([&](const SqliteStatement& row) {
    const int64_t trial_id = row.ColumnInt64(0);
    if (histories.empty() || histories.back().trial_id != trial_id) {
      absl::StatusOr<TrialState> state = ParseTrialState(row.ColumnText(1));
      if (!state.ok()) return state.status();
      histories.push_back(
          MetricHistory{trial_id, *state, static_cast<int32_t>(row.ColumnInt64(2)), {}});
    }
    if (!row.ColumnIsNull(3)) {
      histories.back().values.emplace_back(static_cast<int32_t>(row.ColumnInt64(3)),
                                           row.ColumnDouble(4));
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return histories;
}

absl::StatusOr<std::string> InsertWorker(StatementCache& db, const std::string& hostname,
                                         int32_t pid, int64_t now_ms) {
  // Workers are never deleted, so max + 1 never hands out an id twice, also
  // across restarts.
  absl::StatusOr<ScopedStatement> insert = db.Get(R"sql(
      INSERT INTO workers (id, number, hostname, pid, registered_at_ms, last_heartbeat_ms)
      SELECT 'w-' || n, n, ?1, ?2, ?3, ?3
      FROM (SELECT coalesce(max(number), 0) + 1 AS n FROM workers)
      RETURNING id)sql");
  if (!insert.ok()) return insert.status();
  (*insert)->BindText(1, hostname);
  (*insert)->BindInt64(2, pid);
  (*insert)->BindInt64(3, now_ms);
  absl::StatusOr<bool> row = (*insert)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError("inserting a worker returned no id");
  return (*insert)->ColumnText(0);
}

absl::StatusOr<std::vector<WorkerRecord>> SelectWorkers(StatementCache& db) {
  absl::StatusOr<ScopedStatement> select =
      db.Get(absl::StrCat(kSelectWorkersPrefix, "ORDER BY w.number, t.id"));
  if (!select.ok()) return select.status();
  return CollectWorkers(*select);
}

absl::StatusOr<WorkerRecord> SelectWorker(StatementCache& db, const std::string& worker_id) {
  absl::StatusOr<ScopedStatement> select =
      db.Get(absl::StrCat(kSelectWorkersPrefix, "WHERE w.id = ?1 ORDER BY t.id"));
  if (!select.ok()) return select.status();
  (*select)->BindText(1, worker_id);
  absl::StatusOr<std::vector<WorkerRecord>> workers = CollectWorkers(*select);
  if (!workers.ok()) return workers.status();
  if (workers->empty()) return absl::NotFoundError(absl::StrCat("no worker ", worker_id));
  return std::move(workers->front());
}

absl::StatusOr<std::optional<HeartbeatOutcome>> UpdateHeartbeat(StatementCache& db,
                                                                const std::string& worker_id,
                                                                int64_t now_ms,
                                                                int64_t lease_expires_ms) {
  // RETURNING the column itself: SQLite 3.40 gets `quarantined_at_ms IS NOT
  // NULL` wrong there for a column that ALTER TABLE added.
  absl::StatusOr<ScopedStatement> worker = db.Get(R"sql(
      UPDATE workers SET last_heartbeat_ms = ?2 WHERE id = ?1 RETURNING quarantined_at_ms)sql");
  if (!worker.ok()) return worker.status();
  (*worker)->BindText(1, worker_id);
  (*worker)->BindInt64(2, now_ms);
  absl::StatusOr<bool> found = (*worker)->Step();
  if (!found.ok()) return found.status();
  if (!*found) return std::optional<HeartbeatOutcome>();
  HeartbeatOutcome outcome;
  outcome.quarantined = !(*worker)->ColumnIsNull(0);
  absl::StatusOr<bool> done = (*worker)->Step();  // completes the UPDATE
  if (!done.ok()) return done.status();

  absl::StatusOr<ScopedStatement> leases = db.Get(R"sql(
      UPDATE trials SET lease_expires_ms = ?2 WHERE worker_id = ?1 AND state = 'running'
      RETURNING id)sql");
  if (!leases.ok()) return leases.status();
  (*leases)->BindText(1, worker_id);
  (*leases)->BindInt64(2, lease_expires_ms);
  absl::Status status = (*leases)->ForEachRow([&](const SqliteStatement& row) {
    outcome.running_trial_ids.push_back(row.ColumnInt64(0));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  // The ranks it holds of data-parallel trials (rank 0 is the trial's row).
  absl::StatusOr<ScopedStatement> ranks = db.Get(R"sql(
      UPDATE attempt_ranks SET lease_expires_ms = ?2
      WHERE worker_id = ?1 AND lease_expires_ms IS NOT NULL RETURNING trial_id)sql");
  if (!ranks.ok()) return ranks.status();
  (*ranks)->BindText(1, worker_id);
  (*ranks)->BindInt64(2, lease_expires_ms);
  status = (*ranks)->ForEachRow([&](const SqliteStatement& row) {
    outcome.running_trial_ids.push_back(row.ColumnInt64(0));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  // RETURNING promises no order.
  std::sort(outcome.running_trial_ids.begin(), outcome.running_trial_ids.end());
  return std::optional<HeartbeatOutcome>(std::move(outcome));
}

absl::StatusOr<bool> ClearQuarantine(StatementCache& db, const std::string& worker_id) {
  absl::StatusOr<ScopedStatement> update = db.Get(R"sql(
      UPDATE workers SET quarantined_at_ms = NULL, quarantine_reason = '',
                         consecutive_failures = 0
      WHERE id = ?1)sql");
  if (!update.ok()) return update.status();
  (*update)->BindText(1, worker_id);
  absl::StatusOr<int> changed = (*update)->Run();
  if (!changed.ok()) return changed.status();
  return *changed > 0;
}

}  // namespace sslsweep
