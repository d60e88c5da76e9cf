#include "coordinator/store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "coordinator/sqlite_statement.h"
#include "coordinator/store_lease_queries.h"
#include "coordinator/store_queries.h"
#include "coordinator/store_results_queries.h"
#include "coordinator/store_schema.h"

namespace sslsweep {
namespace {

absl::Status ValidateTrial(const NewTrial& trial) {
  if (trial.index < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("trial index ", trial.index, " is negative; indices start at 0"));
  }
  if (trial.epochs < 0) {
    return absl::InvalidArgumentError(absl::StrCat("trial ", trial.index, " has ", trial.epochs,
                                                   " epochs; must be >= 0"));
  }
  if (trial.ranks < 1 || trial.ranks > kMaxRanks) {
    return absl::InvalidArgumentError(absl::StrCat("trial ", trial.index, " has ", trial.ranks,
                                                   " ranks; must be 1 to ", kMaxRanks));
  }
  std::set<std::string> paths;
  for (const ParamValue& param : trial.params) {
    if (param.path.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("trial ", trial.index, " has a parameter with an empty path"));
    }
    if (!paths.insert(param.path).second) {
      return absl::InvalidArgumentError(absl::StrCat("trial ", trial.index, " sets parameter '",
                                                     param.path, "' twice"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateNewSweep(const NewSweep& sweep, const std::vector<NewTrial>& trials) {
  if (sweep.metric_goal != "" && sweep.metric_goal != "minimize" &&
      sweep.metric_goal != "maximize") {
    return absl::InvalidArgumentError(absl::StrCat(
        "sweep metric goal '", sweep.metric_goal, "' is not one of minimize, maximize or empty"));
  }
  if (sweep.max_attempts < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("sweep max_attempts is ", sweep.max_attempts, "; must be >= 1"));
  }
  if (sweep.max_concurrent < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sweep max_concurrent is ", sweep.max_concurrent, "; must be >= 0 (0: no limit)"));
  }
  if (trials.empty()) return absl::InvalidArgumentError("a sweep needs at least one trial");
  std::set<int32_t> indices;
  for (const NewTrial& trial : trials) {
    absl::Status status = ValidateTrial(trial);
    if (!status.ok()) return status;
    if (!indices.insert(trial.index).second) {
      return absl::InvalidArgumentError(absl::StrCat("trial index ", trial.index, " appears twice"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateMetrics(int64_t trial_id, int32_t epoch,
                             const std::vector<MetricValue>& metrics) {
  if (epoch < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics of trial ", trial_id, " for epoch ", epoch, ": epoch must be >= 0"));
  }
  std::set<std::string> names;
  for (const MetricValue& metric : metrics) {
    const std::string where = absl::StrCat("trial ", trial_id, " epoch ", epoch);
    if (metric.name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": a metric has an empty name"));
    }
    if (!std::isfinite(metric.value)) {
      // A diverged trial is failed by its trainer; the store keeps only numbers.
      return absl::InvalidArgumentError(absl::StrCat(where, ": metric '", metric.name, "' is ",
                                                     metric.value, "; values must be finite"));
    }
    if (!names.insert(metric.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": metric '", metric.name, "' is reported twice"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateLease(const std::string& worker_id, int64_t lease_ms) {
  if (worker_id.empty()) return absl::InvalidArgumentError("worker id is empty");
  if (lease_ms <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("lease of ", lease_ms, " ms for worker ", worker_id, "; must be > 0"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> CreateSweepIn(StatementCache& db, const NewSweep& sweep,
                                      const std::vector<NewTrial>& trials, int64_t now_ms) {
  absl::StatusOr<int64_t> sweep_id = InsertSweep(db, sweep, now_ms);
  if (!sweep_id.ok()) return sweep_id.status();
  for (const NewTrial& trial : trials) {
    absl::Status status = InsertTrial(db, *sweep_id, trial, now_ms);
    if (!status.ok()) return status;
  }
  return *sweep_id;
}

absl::Status StoppedError(const char* step, const absl::Status& cause) {
  return absl::InternalError(
      absl::StrCat("store stopped after a failed ", step,
                   ": the outcome of the last write is unknown; reopen the store to recover "
                   "from its file (",
                   cause.message(), ")"));
}

// Writes at most this many in one transaction, so that one commit's
// latency stays bounded however long the queue grows.
constexpr size_t kMaxBatch = 256;

}  // namespace

const char* TrialStateName(TrialState state) {
  switch (state) {
    case TrialState::kPending:
      return "pending";
    case TrialState::kRunning:
      return "running";
    case TrialState::kSucceeded:
      return "succeeded";
    case TrialState::kFailed:
      return "failed";
    case TrialState::kCancelled:
      return "cancelled";
    case TrialState::kPruned:
      return "pruned";
  }
  return "unknown";
}

struct Store::Writer {
  explicit Writer(absl::FunctionRef<absl::Status(StatementCache&)> body) : body(body) {}

  const absl::FunctionRef<absl::Status(StatementCache&)> body;
  absl::Status status;  // set by the batch's leader; read by the owner once done
  bool done = false;    // guarded by Store::mu_
  absl::CondVar ready;  // signalled once done, or once first in the queue
};

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  absl::StatusOr<SqliteConnection> write_db = OpenStoreDatabase(options);
  if (!write_db.ok()) return write_db.status();
  absl::StatusOr<SqliteConnection> read_db = OpenStoreReader(options);
  if (!read_db.ok()) return read_db.status();
  if (absl::Status s = RegisterResultsFunctions(read_db->get()); !s.ok()) return s;
  return absl::WrapUnique(new Store(write_db->release(), read_db->release()));
}

Store::Store(sqlite3* write_db, sqlite3* read_db)
    : write_db_(write_db),
      read_db_(read_db),
      write_statements_(std::make_unique<StatementCache>(write_db)),
      read_statements_(std::make_unique<StatementCache>(read_db)) {}

// close_v2 defers each close until its StatementCache has finalized its
// statements.
Store::~Store() {
  sqlite3_close_v2(read_db_);
  sqlite3_close_v2(write_db_);
}

absl::Status Store::Write(absl::FunctionRef<absl::Status(StatementCache&)> body) {
  Writer writer(body);
  std::vector<Writer*> batch;
  absl::Status stop;
  {
    absl::MutexLock lock(&mu_);
    if (!sticky_error_.ok()) return sticky_error_;
    writers_.push_back(&writer);
    while (!writer.done && writers_.front() != &writer) writer.ready.Wait(&mu_);
    if (writer.done) return writer.status;
    // First in the queue: lead a batch of what is queued now.
    const size_t size = std::min(writers_.size(), kMaxBatch);
    batch.assign(writers_.begin(), writers_.begin() + size);
    stop = sticky_error_;  // an earlier batch may have stopped the store since
  }
  if (stop.ok()) {
    absl::MutexLock lock(&write_mu_);
    stop = CommitBatch(batch);
  }
  absl::MutexLock lock(&mu_);
  if (!stop.ok() && sticky_error_.ok()) sticky_error_ = stop;
  for (Writer* member : batch) {
    writers_.pop_front();  // the batch is the front of the queue
    if (!stop.ok()) member->status = sticky_error_;
    member->done = true;
    if (member != &writer) member->ready.Signal();
  }
  if (!writers_.empty()) writers_.front()->ready.Signal();  // the next leader
  return writer.status;
}

template <typename T>
absl::StatusOr<T> Store::Write(absl::FunctionRef<absl::StatusOr<T>(StatementCache&)> body) {
  absl::StatusOr<T> result = absl::UnknownError("the write did not run");
  absl::Status status = Write([&](StatementCache& db) {
    result = body(db);
    return result.status();
  });
  if (!status.ok()) return status;
  return result;
}

absl::Status Store::CommitBatch(const std::vector<Writer*>& batch) {
  absl::Status status = ExecuteSql(write_db_, "BEGIN IMMEDIATE");
  if (!status.ok()) {
    for (Writer* writer : batch) writer->status = status;  // nothing was written
    return absl::OkStatus();
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    status = RunInSavepoint(*batch[i]);
    if (status.ok()) continue;
    // Nothing of the batch may commit now; its other writes did nothing.
    const absl::Status undone = absl::AbortedError(absl::StrCat(
        "store write undone: another write committed with it broke the transaction (",
        status.message(), "); nothing was written"));
    for (size_t j = 0; j < batch.size(); ++j) {
      if (j > i || (j < i && batch[j]->status.ok())) batch[j]->status = undone;
    }
    return RollBackBatch();
  }
  status = ExecuteSql(write_db_, "COMMIT");
  if (status.ok()) return status;
  const absl::Status stop = StoppedError("COMMIT", status);
  RollBackBatch().IgnoreError();  // the store stops for the COMMIT anyway
  return stop;
}

absl::Status Store::RunInSavepoint(Writer& writer) {
  absl::Status status = ExecuteSql(write_db_, "SAVEPOINT write");
  if (!status.ok()) {
    writer.status = status;
    return status;
  }
  writer.status = writer.body(*write_statements_);
  if (writer.status.ok()) {
    status = ExecuteSql(write_db_, "RELEASE write");
    if (!status.ok()) writer.status = status;
    return status;
  }
  // Some errors (SQLITE_FULL, SQLITE_IOERR, ...) roll the whole transaction back.
  if (sqlite3_get_autocommit(write_db_)) return writer.status;
  status = ExecuteSql(write_db_, "ROLLBACK TO write");
  if (status.ok()) status = ExecuteSql(write_db_, "RELEASE write");
  return status;
}

absl::Status Store::RollBackBatch() {
  if (sqlite3_get_autocommit(write_db_)) return absl::OkStatus();  // SQLite already did
  absl::Status status = ExecuteSql(write_db_, "ROLLBACK");
  if (!status.ok()) return StoppedError("ROLLBACK", status);
  return absl::OkStatus();
}

absl::Status Store::Read(absl::FunctionRef<absl::Status(StatementCache&)> body) {
  {
    absl::MutexLock lock(&mu_);
    if (!sticky_error_.ok()) return sticky_error_;
  }
  absl::MutexLock lock(&read_mu_);
  absl::Status status = ExecuteSql(read_db_, "BEGIN");
  if (!status.ok()) return status;
  status = body(*read_statements_);
  if (!sqlite3_get_autocommit(read_db_)) {
    // A read has nothing to keep: COMMIT and ROLLBACK only end its snapshot.
    absl::Status ended = ExecuteSql(read_db_, "COMMIT");
    if (!ended.ok()) ExecuteSql(read_db_, "ROLLBACK").IgnoreError();
    if (status.ok()) status = ended;
  }
  return status;
}

template <typename T>
absl::StatusOr<T> Store::Read(absl::FunctionRef<absl::StatusOr<T>(StatementCache&)> body) {
  absl::StatusOr<T> result = absl::UnknownError("the read did not run");
  absl::Status status = Read([&](StatementCache& db) {
    result = body(db);
    return result.status();
  });
  if (!status.ok()) return status;
  return result;
}

absl::StatusOr<int64_t> Store::CreateSweep(const NewSweep& sweep,
                                           const std::vector<NewTrial>& trials, int64_t now_ms) {
  absl::Status status = ValidateNewSweep(sweep, trials);
  if (!status.ok()) return status;
  return Write<int64_t>(
      [&](StatementCache& db) { return CreateSweepIn(db, sweep, trials, now_ms); });
}

absl::StatusOr<std::vector<SweepRecord>> Store::ListSweeps() {
  return Read<std::vector<SweepRecord>>(&SelectSweeps);
}

absl::StatusOr<SweepRecord> Store::GetSweep(int64_t sweep_id) {
  return Read<SweepRecord>([&](StatementCache& db) { return SelectSweep(db, sweep_id); });
}

absl::StatusOr<std::vector<TrialRecord>> Store::ListTrials(int64_t sweep_id) {
  return Read<std::vector<TrialRecord>>(
      [&](StatementCache& db) -> absl::StatusOr<std::vector<TrialRecord>> {
        absl::StatusOr<std::vector<TrialRecord>> trials = SelectTrials(db, sweep_id);
        // Every sweep has a trial: none means no sweep.
        if (trials.ok() && trials->empty()) {
          return absl::NotFoundError(absl::StrCat("no sweep ", sweep_id));
        }
        return trials;
      });
}

absl::StatusOr<TrialRecord> Store::GetTrial(int64_t trial_id) {
  return Read<TrialRecord>([&](StatementCache& db) { return SelectTrial(db, trial_id); });
}

absl::StatusOr<std::optional<TrialRecord>> Store::LeaseNextTrial(const std::string& worker_id,
                                                                 int64_t now_ms,
                                                                 int64_t lease_ms,
                                                                 int64_t idle_window_ms) {
  absl::Status status = ValidateLease(worker_id, lease_ms);
  if (!status.ok()) return status;
  if (idle_window_ms <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("idle window of ", idle_window_ms, " ms; must be > 0"));
  }
  return Write<std::optional<TrialRecord>>([&](StatementCache& db) {
    return LeaseNextTrialIn(db, worker_id, now_ms, lease_ms, idle_window_ms);
  });
}

absl::StatusOr<bool> Store::HasUnfinishedTrials() {
  return Read<bool>([](StatementCache& db) -> absl::StatusOr<bool> {
    // Asked by every idle worker at every poll: each state through its own
    // partial index, never a scan of a sweep's ended trials.
    absl::StatusOr<ScopedStatement> select = db.Get(R"sql(
        SELECT EXISTS (SELECT 1 FROM sweeps s WHERE s.state = 'running' AND (
          EXISTS (SELECT 1 FROM trials t WHERE t.sweep_id = s.id AND t.state = 'pending') OR
          EXISTS (SELECT 1 FROM trials t WHERE t.sweep_id = s.id AND t.state = 'running'))))sql");
    if (!select.ok()) return select.status();
    absl::StatusOr<bool> row = (*select)->Step();
    if (!row.ok()) return row.status();
    return *row && (*select)->ColumnInt64(0) != 0;
  });
}

absl::StatusOr<std::vector<ExpiredLease>> Store::ExpireLeases(int64_t now_ms,
                                                              const FailurePolicy& policy) {
  return Write<std::vector<ExpiredLease>>(
      [&](StatementCache& db) { return ExpireLeasesIn(db, now_ms, policy); });
}

absl::StatusOr<int32_t> Store::RenewAllLeases(int64_t lease_expires_ms) {
  return Write<int32_t>(
      [&](StatementCache& db) { return RenewAllLeasesIn(db, lease_expires_ms); });
}

absl::StatusOr<RecordedMetrics> Store::RecordMetrics(const std::string& worker_id,
                                                     int64_t trial_id, int32_t attempt,
                                                     int32_t epoch,
                                                     const std::vector<MetricValue>& metrics) {
  absl::Status status = ValidateMetrics(trial_id, epoch, metrics);
  if (!status.ok()) return status;
  return Write<RecordedMetrics>([&](StatementCache& db) {
    return RecordMetricsIn(db, worker_id, trial_id, attempt, epoch, metrics);
  });
}

absl::Status Store::RecordRendezvous(const std::string& worker_id, int64_t trial_id,
                                     int32_t attempt, const RendezvousPoint& point) {
  if (point.master_address.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("rendezvous of trial ", trial_id, ": the master address is empty"));
  }
  if (point.master_port < 1 || point.master_port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("rendezvous of trial ", trial_id, ": port ",
                                                   point.master_port, " is not in 1..65535"));
  }
  return Write([&](StatementCache& db) {
    return RecordRendezvousIn(db, worker_id, trial_id, attempt, point);
  });
}

absl::StatusOr<std::optional<RendezvousPoint>> Store::GetRendezvous(const std::string& worker_id,
                                                                    int64_t trial_id,
                                                                    int32_t attempt) {
  return Read<std::optional<RendezvousPoint>>(
      [&](StatementCache& db) { return SelectRendezvous(db, worker_id, trial_id, attempt); });
}

absl::Status Store::RecordCheckpoint(const std::string& worker_id, int64_t trial_id,
                                     int32_t attempt, int32_t epoch) {
  if (epoch < 0) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint of trial ", trial_id,
                                                   " after epoch ", epoch, ": must be >= 0"));
  }
  return Write([&](StatementCache& db) {
    return RecordCheckpointIn(db, worker_id, trial_id, attempt, epoch);
  });
}

absl::Status Store::FinishTrial(const std::string& worker_id, int64_t trial_id, int32_t attempt,
                                int64_t now_ms) {
  return Write([&](StatementCache& db) {
    return FinishTrialIn(db, worker_id, trial_id, attempt, now_ms);
  });
}

absl::StatusOr<FailOutcome> Store::FailTrial(const std::string& worker_id, int64_t trial_id,
                                             int32_t attempt, FailureKind kind,
                                             const std::string& reason, int64_t now_ms,
                                             const FailurePolicy& policy) {
  return Write<FailOutcome>([&](StatementCache& db) {
    return FailTrialIn(db, worker_id, trial_id, attempt, kind, reason, now_ms, policy);
  });
}

absl::Status Store::PruneTrial(int64_t trial_id, int32_t attempt, const std::string& reason,
                               int64_t now_ms) {
  return Write(
      [&](StatementCache& db) { return PruneTrialIn(db, trial_id, attempt, reason, now_ms); });
}

absl::StatusOr<int32_t> Store::CancelSweep(int64_t sweep_id, int64_t now_ms) {
  return Write<int32_t>([&](StatementCache& db) { return CancelSweepIn(db, sweep_id, now_ms); });
}

absl::StatusOr<bool> Store::CancelTrial(int64_t trial_id, int64_t now_ms) {
  return Write<bool>([&](StatementCache& db) { return CancelTrialIn(db, trial_id, now_ms); });
}

absl::StatusOr<std::string> Store::RegisterWorker(const std::string& hostname, int32_t pid,
                                                  int64_t now_ms) {
  return Write<std::string>(
      [&](StatementCache& db) { return InsertWorker(db, hostname, pid, now_ms); });
}

absl::StatusOr<HeartbeatOutcome> Store::Heartbeat(const std::string& worker_id, int64_t now_ms,
                                                  int64_t lease_ms) {
  absl::Status status = ValidateLease(worker_id, lease_ms);
  if (!status.ok()) return status;
  return Write<HeartbeatOutcome>([&](StatementCache& db) -> absl::StatusOr<HeartbeatOutcome> {
    absl::StatusOr<std::optional<HeartbeatOutcome>> outcome =
        UpdateHeartbeat(db, worker_id, now_ms, now_ms + lease_ms);
    if (!outcome.ok()) return outcome.status();
    if (!outcome->has_value()) return absl::NotFoundError(absl::StrCat("no worker ", worker_id));
    return **std::move(outcome);
  });
}

absl::StatusOr<std::vector<WorkerRecord>> Store::ListWorkers() {
  return Read<std::vector<WorkerRecord>>(&SelectWorkers);
}

absl::StatusOr<WorkerRecord> Store::GetWorker(const std::string& worker_id) {
  return Read<WorkerRecord>([&](StatementCache& db) { return SelectWorker(db, worker_id); });
}

absl::Status Store::UnquarantineWorker(const std::string& worker_id) {
  return Write([&](StatementCache& db) -> absl::Status {
    absl::StatusOr<bool> found = ClearQuarantine(db, worker_id);
    if (!found.ok()) return found.status();
    if (!*found) return absl::NotFoundError(absl::StrCat("no worker ", worker_id));
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<EpochMetrics>> Store::FinalMetrics(int64_t sweep_id) {
  return Read<std::vector<EpochMetrics>>(
      [&](StatementCache& db) -> absl::StatusOr<std::vector<EpochMetrics>> {
        absl::StatusOr<std::vector<EpochMetrics>> metrics = SelectFinalMetrics(db, sweep_id);
        // One row per trial at least: none means no sweep.
        if (metrics.ok() && metrics->empty()) {
          return absl::NotFoundError(absl::StrCat("no sweep ", sweep_id));
        }
        return metrics;
      });
}

absl::StatusOr<std::vector<EpochMetrics>> Store::TrialMetrics(int64_t trial_id) {
  return Read<std::vector<EpochMetrics>>(
      [&](StatementCache& db) -> absl::StatusOr<std::vector<EpochMetrics>> {
        absl::StatusOr<std::vector<EpochMetrics>> metrics = SelectTrialMetrics(db, trial_id);
        if (!metrics.ok() || !metrics->empty()) return metrics;
        absl::StatusOr<TrialRecord> trial = SelectTrial(db, trial_id);  // NotFound?
        if (!trial.ok()) return trial.status();
        return metrics;
      });
}

absl::StatusOr<std::vector<TrialProgress>> Store::SweepProgress(int64_t sweep_id) {
  return Read<std::vector<TrialProgress>>(
      [&](StatementCache& db) -> absl::StatusOr<std::vector<TrialProgress>> {
        // Each value is a lookup on a key prefix: the metrics key is
        // (trial, epoch, name), read from the latest epoch down.
        absl::StatusOr<ScopedStatement> select = db.Get(R"sql(
            SELECT t.id,
                   coalesce((SELECT min(a.started_at_ms) FROM attempts a
                             WHERE a.trial_id = t.id), 0),
                   coalesce(t.ended_at_ms, 0),
                   (SELECT m.value FROM metrics m
                    WHERE m.trial_id = t.id AND m.name = s.metric_name
                    ORDER BY m.epoch DESC LIMIT 1),
                   (SELECT avg(value) FROM (SELECT e.value FROM metrics e
                     WHERE e.trial_id = t.id AND e.name = 'time/epoch_seconds'
                     ORDER BY e.epoch DESC LIMIT 3))
            FROM trials t JOIN sweeps s ON s.id = t.sweep_id
            WHERE t.sweep_id = ?1 ORDER BY t.id)sql");
        if (!select.ok()) return select.status();
        (*select)->BindInt64(1, sweep_id);
        std::vector<TrialProgress> progress;
        absl::Status status = (*select)->ForEachRow([&](const SqliteStatement& row) {
          TrialProgress p;
          p.trial_id = row.ColumnInt64(0);
          p.started_at_ms = row.ColumnInt64(1);
          p.ended_at_ms = row.ColumnInt64(2);
          if (!row.ColumnIsNull(3)) p.metric_value = row.ColumnDouble(3);
          if (!row.ColumnIsNull(4)) p.epoch_seconds = row.ColumnDouble(4);
          progress.push_back(p);
          return absl::OkStatus();
        });
        if (!status.ok()) return status;
        if (progress.empty()) return absl::NotFoundError(absl::StrCat("no sweep ", sweep_id));
        return progress;
      });
}

absl::StatusOr<std::vector<MetricHistory>> Store::MetricHistories(int64_t sweep_id,
                                                                  const std::string& name) {
  return Read<std::vector<MetricHistory>>(
      [&](StatementCache& db) -> absl::StatusOr<std::vector<MetricHistory>> {
        absl::StatusOr<std::vector<MetricHistory>> histories =
            SelectMetricHistories(db, sweep_id, name);
        if (histories.ok() && histories->empty()) {
          return absl::NotFoundError(absl::StrCat("no sweep ", sweep_id));
        }
        return histories;
      });
}

absl::StatusOr<AggregatedResults> Store::QueryResults(const ResultsQuery& query) {
  return Read<AggregatedResults>(
      [&](StatementCache& db) { return SelectResults(db, query); });
}

}  // namespace sslsweep
