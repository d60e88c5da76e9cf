#include "coordinator/store.h"

#include <sqlite3.h>

#include <cmath>
#include <set>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "coordinator/sqlite_statement.h"
#include "coordinator/store_queries.h"
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

// FailedPrecondition unless `attempt` is the trial's current attempt and the
// trial is running: a report from a stale or finished attempt must not write.
absl::Status CheckFence(int64_t trial_id, int32_t attempt, const TrialFence& fence) {
  if (attempt == fence.attempt && fence.state == TrialState::kRunning) return absl::OkStatus();
  const char* problem = attempt == fence.attempt ? "is not running" : "is not current";
  return absl::FailedPreconditionError(
      absl::StrCat("trial ", trial_id, ": attempt ", attempt, " ", problem, " (current attempt ",
                   fence.attempt, ", state ", TrialStateName(fence.state), ")"));
}

// Ends the running attempt in `outcome`; repeating the same ending of the
// same attempt is a no-op, so a retried report succeeds.
absl::Status EndTrial(StatementCache& db, int64_t trial_id, int32_t attempt, TrialState outcome,
                      const std::string& reason, int64_t now_ms) {
  absl::StatusOr<TrialFence> fence = SelectTrialFence(db, trial_id);
  if (!fence.ok()) return fence.status();
  if (fence->state == outcome && fence->attempt == attempt) return absl::OkStatus();
  absl::Status status = CheckFence(trial_id, attempt, *fence);
  if (status.ok()) status = EndAttempt(db, trial_id, attempt, outcome, reason, now_ms);
  if (status.ok()) status = FinishSweepIfDone(db, fence->sweep_id, now_ms);
  return status;
}

absl::StatusOr<int64_t> CreateSweepIn(StatementCache& db, const NewSweep& sweep,
                                      const std::vector<NewTrial>& trials, int64_t now_ms) {
  absl::Status status = ValidateNewSweep(sweep, trials);
  if (!status.ok()) return status;
  absl::StatusOr<int64_t> sweep_id = InsertSweep(db, sweep, now_ms);
  if (!sweep_id.ok()) return sweep_id.status();
  for (const NewTrial& trial : trials) {
    status = InsertTrial(db, *sweep_id, trial, now_ms);
    if (!status.ok()) return status;
  }
  return *sweep_id;
}

absl::StatusOr<std::optional<TrialRecord>> LeaseIn(StatementCache& db,
                                                   const std::string& worker_id,
                                                   int64_t now_ms, int64_t lease_ms) {
  absl::Status status = ValidateLease(worker_id, lease_ms);
  if (!status.ok()) return status;
  absl::StatusOr<bool> registered = WorkerExists(db, worker_id);
  if (!registered.ok()) return registered.status();
  if (!*registered) return absl::NotFoundError(absl::StrCat("no worker ", worker_id));
  absl::StatusOr<std::optional<int64_t>> next = SelectNextPendingTrial(db);
  if (!next.ok()) return next.status();
  if (!next->has_value()) return std::optional<TrialRecord>();
  status = StartAttempt(db, **next, worker_id, now_ms, now_ms + lease_ms);
  if (!status.ok()) return status;
  absl::StatusOr<TrialRecord> trial = SelectTrial(db, **next);
  if (!trial.ok()) return trial.status();
  return std::optional<TrialRecord>(*std::move(trial));
}

absl::StatusOr<int32_t> RecordMetricsIn(StatementCache& db, int64_t trial_id, int32_t attempt,
                                        int32_t epoch, const std::vector<MetricValue>& metrics) {
  absl::Status status = ValidateMetrics(trial_id, epoch, metrics);
  if (!status.ok()) return status;
  absl::StatusOr<TrialFence> fence = SelectTrialFence(db, trial_id);
  if (!fence.ok()) return fence.status();
  status = CheckFence(trial_id, attempt, *fence);
  if (!status.ok()) return status;
  return InsertMetrics(db, trial_id, attempt, epoch, metrics);
}

absl::StatusOr<int32_t> CancelSweepIn(StatementCache& db, int64_t sweep_id, int64_t now_ms) {
  absl::StatusOr<SweepRecord> sweep = SelectSweep(db, sweep_id);
  if (!sweep.ok()) return sweep.status();
  if (sweep->state != SweepState::kRunning) return 0;  // already over: nothing to cancel
  return CancelSweepAndTrials(db, sweep_id, now_ms);
}

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
  }
  return "unknown";
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  absl::StatusOr<SqliteConnection> db = OpenStoreDatabase(options);
  if (!db.ok()) return db.status();
  return absl::WrapUnique(new Store(db->release()));
}

Store::Store(sqlite3* db) : db_(db), statements_(std::make_unique<StatementCache>(db)) {}

// close_v2 defers the close until statements_ has finalized its statements.
Store::~Store() { sqlite3_close_v2(db_); }

absl::Status Store::Transact(Access access,
                             absl::FunctionRef<absl::Status(StatementCache&)> body) {
  if (!sticky_error_.ok()) return sticky_error_;
  absl::Status status = ExecuteSql(db_, access == Access::kWrite ? "BEGIN IMMEDIATE" : "BEGIN");
  if (!status.ok()) return status;
  status = body(*statements_);
  if (!status.ok()) {
    RollBack();
    return status;
  }
  status = ExecuteSql(db_, "COMMIT");
  if (status.ok()) return status;
  // A read has nothing to lose; a write may or may not have reached the file.
  if (access == Access::kWrite) Stop("COMMIT", status);
  RollBack();
  return sticky_error_.ok() ? status : sticky_error_;
}

template <typename T>
absl::StatusOr<T> Store::Transact(Access access,
                                  absl::FunctionRef<absl::StatusOr<T>(StatementCache&)> body) {
  absl::StatusOr<T> result = absl::UnknownError("the transaction did not run");
  absl::Status status = Transact(access, [&](StatementCache& db) {
    result = body(db);
    return result.status();
  });
  if (!status.ok()) return status;
  return result;
}

void Store::RollBack() {
  // SQLite rolls some failures back itself (SQLITE_FULL, SQLITE_IOERR, ...).
  if (sqlite3_get_autocommit(db_)) return;
  absl::Status status = ExecuteSql(db_, "ROLLBACK");
  if (!status.ok() && sticky_error_.ok()) Stop("ROLLBACK", status);
}

void Store::Stop(const char* step, const absl::Status& cause) {
  sticky_error_ = absl::InternalError(
      absl::StrCat("store stopped after a failed ", step,
                   ": the outcome of the last write is unknown; reopen the store to recover "
                   "from its file (",
                   cause.message(), ")"));
}

absl::StatusOr<int64_t> Store::CreateSweep(const NewSweep& sweep,
                                           const std::vector<NewTrial>& trials, int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  return Transact<int64_t>(Access::kWrite, [&](StatementCache& db) {
    return CreateSweepIn(db, sweep, trials, now_ms);
  });
}

absl::StatusOr<std::vector<SweepRecord>> Store::ListSweeps() {
  absl::MutexLock lock(&mu_);
  return Transact<std::vector<SweepRecord>>(Access::kRead, &SelectSweeps);
}

absl::StatusOr<SweepRecord> Store::GetSweep(int64_t sweep_id) {
  absl::MutexLock lock(&mu_);
  return Transact<SweepRecord>(Access::kRead,
                               [&](StatementCache& db) { return SelectSweep(db, sweep_id); });
}

absl::StatusOr<std::vector<TrialRecord>> Store::ListTrials(int64_t sweep_id) {
  absl::MutexLock lock(&mu_);
  return Transact<std::vector<TrialRecord>>(
      Access::kRead, [&](StatementCache& db) -> absl::StatusOr<std::vector<TrialRecord>> {
        absl::StatusOr<SweepRecord> sweep = SelectSweep(db, sweep_id);
        if (!sweep.ok()) return sweep.status();
        return SelectTrials(db, sweep_id);
      });
}

absl::StatusOr<TrialRecord> Store::GetTrial(int64_t trial_id) {
  absl::MutexLock lock(&mu_);
  return Transact<TrialRecord>(Access::kRead,
                               [&](StatementCache& db) { return SelectTrial(db, trial_id); });
}

absl::StatusOr<std::optional<TrialRecord>> Store::LeaseNextTrial(const std::string& worker_id,
                                                                 int64_t now_ms,
                                                                 int64_t lease_ms) {
  absl::MutexLock lock(&mu_);
  return Transact<std::optional<TrialRecord>>(Access::kWrite, [&](StatementCache& db) {
    return LeaseIn(db, worker_id, now_ms, lease_ms);
  });
}

absl::StatusOr<int32_t> Store::RecordMetrics(int64_t trial_id, int32_t attempt, int32_t epoch,
                                             const std::vector<MetricValue>& metrics) {
  absl::MutexLock lock(&mu_);
  return Transact<int32_t>(Access::kWrite, [&](StatementCache& db) {
    return RecordMetricsIn(db, trial_id, attempt, epoch, metrics);
  });
}

absl::Status Store::FinishTrial(int64_t trial_id, int32_t attempt, int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  return Transact(Access::kWrite, [&](StatementCache& db) {
    return EndTrial(db, trial_id, attempt, TrialState::kSucceeded, "", now_ms);
  });
}

absl::Status Store::FailTrial(int64_t trial_id, int32_t attempt, const std::string& reason,
                              int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  return Transact(Access::kWrite, [&](StatementCache& db) {
    return EndTrial(db, trial_id, attempt, TrialState::kFailed, reason, now_ms);
  });
}

absl::StatusOr<int32_t> Store::CancelSweep(int64_t sweep_id, int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  return Transact<int32_t>(Access::kWrite, [&](StatementCache& db) {
    return CancelSweepIn(db, sweep_id, now_ms);
  });
}

absl::StatusOr<std::string> Store::RegisterWorker(const std::string& hostname, int32_t pid,
                                                  int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  return Transact<std::string>(Access::kWrite, [&](StatementCache& db) {
    return InsertWorker(db, hostname, pid, now_ms);
  });
}

absl::Status Store::Heartbeat(const std::string& worker_id, int64_t now_ms, int64_t lease_ms) {
  absl::MutexLock lock(&mu_);
  return Transact(Access::kWrite, [&](StatementCache& db) -> absl::Status {
    absl::Status status = ValidateLease(worker_id, lease_ms);
    if (!status.ok()) return status;
    absl::StatusOr<bool> found = UpdateHeartbeat(db, worker_id, now_ms, now_ms + lease_ms);
    if (!found.ok()) return found.status();
    if (!*found) return absl::NotFoundError(absl::StrCat("no worker ", worker_id));
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<WorkerRecord>> Store::ListWorkers() {
  absl::MutexLock lock(&mu_);
  return Transact<std::vector<WorkerRecord>>(Access::kRead, &SelectWorkers);
}

absl::StatusOr<std::vector<int64_t>> Store::RunningTrials(const std::string& worker_id) {
  absl::MutexLock lock(&mu_);
  return Transact<std::vector<int64_t>>(Access::kRead, [&](StatementCache& db) {
    return SelectRunningTrials(db, worker_id);
  });
}

absl::StatusOr<std::vector<EpochMetrics>> Store::FinalMetrics(int64_t sweep_id) {
  absl::MutexLock lock(&mu_);
  return Transact<std::vector<EpochMetrics>>(
      Access::kRead, [&](StatementCache& db) -> absl::StatusOr<std::vector<EpochMetrics>> {
        absl::StatusOr<SweepRecord> sweep = SelectSweep(db, sweep_id);
        if (!sweep.ok()) return sweep.status();
        return SelectFinalMetrics(db, sweep_id);
      });
}

absl::StatusOr<std::vector<EpochMetrics>> Store::TrialMetrics(int64_t trial_id) {
  absl::MutexLock lock(&mu_);
  return Transact<std::vector<EpochMetrics>>(
      Access::kRead, [&](StatementCache& db) -> absl::StatusOr<std::vector<EpochMetrics>> {
        absl::StatusOr<TrialFence> trial = SelectTrialFence(db, trial_id);
        if (!trial.ok()) return trial.status();
        return SelectTrialMetrics(db, trial_id);
      });
}

}  // namespace sslsweep
