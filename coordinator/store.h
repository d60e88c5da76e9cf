// Store: the coordinator's durable state in one SQLite file.
//
// The coordinator process is the only writer. The file is in WAL mode with a
// schema version (PRAGMA user_version) so that `sqlite3 DB` can read it while
// the coordinator runs, and a restarted coordinator recovers everything from
// it. Every method is one transaction: it either happens whole or not at all.
// docs/schema.md documents the tables.
//
// Thread contract: thread-safe. Writes are group-committed (leveldb's
// writer queue): concurrent callers queue their write, the first one in the
// queue runs every queued write in one transaction, each inside its own
// SAVEPOINT so that one write's failure undoes only that write, commits once
// (one fsync for the batch) and hands each caller its own result. Reads run
// on a second connection and never wait for a commit (WAL).
// Once a write's outcome is unknown (e.g. a failed COMMIT) the store refuses
// every later call with that error rather than guess (leveldb's bg_error_).

#ifndef SSLSWEEP_COORDINATOR_STORE_H_
#define SSLSWEEP_COORDINATOR_STORE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

struct sqlite3;

namespace sslsweep {

class StatementCache;
struct ResultsQuery;  // results_query.h
struct AggregatedResults;

enum class TrialState {
  kPending = 1,
  kRunning = 2,
  kSucceeded = 3,
  kFailed = 4,
  kCancelled = 5,
  kPruned = 6,  // stopped early by the sweep's early_terminate
};
inline constexpr int kTrialStateCount = 7;  // slot 0 unused
enum class SweepState { kRunning = 1, kFinished = 2, kCancelled = 3 };

const char* TrialStateName(TrialState state);  // "pending", "running", ...
// Whether a trial in `state` has ended (neither pending nor running).
inline bool TrialEnded(TrialState state) {
  return state != TrialState::kPending && state != TrialState::kRunning;
}

// How an attempt failed (proto FailureKind); decides what happens next.
enum class FailureKind {
  kCrash,     // retried until max_attempts; counts against the worker
  kDiverged,  // the trial fails now; the worker is not blamed
  kConfig,    // the trial fails now; the worker is not blamed
  kReleased,  // the worker is leaving: back to the queue, nothing counted
  // A rank of a data-parallel trial lost another rank: the gang's attempt
  // fails and counts like a crash, but this worker is not blamed.
  kPeerLost,
};

// What the store does about failing trials and workers.
struct FailurePolicy {
  // A worker whose last `quarantine_after` attempts all failed (crashes and
  // lost leases; divergence and bad configurations do not count) gets no
  // more trials until released. 0: never quarantine.
  int32_t quarantine_after = 3;
};

struct StoreOptions {
  std::string path;  // the SQLite file; created if absent
  int busy_timeout_ms = 5000;
};

struct ParamValue {
  std::string path;   // dotted trial configuration path
  std::string value;  // YAML scalar text
};

struct NewSweep {
  std::string name;
  std::string source_yaml;  // the sweep file as submitted
  std::string metric_name;  // may be empty
  std::string metric_goal;  // "minimize" | "maximize" | ""
  int32_t max_attempts = 3;    // >= 1: failed attempts before a trial fails
  int32_t max_concurrent = 0;  // >= 0: running trials at most; 0 no limit
  int32_t priority = 0;        // higher sweeps lease first
};

struct NewTrial {
  int32_t index = 0;  // position in the expansion, 0-based
  std::vector<ParamValue> params;
  std::string config_yaml;  // the full trial configuration
  int32_t epochs = 0;
  int32_t ranks = 1;  // 1 to kMaxRanks: data-parallel ranks, leased as one gang
};

inline constexpr int32_t kMaxRanks = 1024;

struct SweepRecord {
  int64_t id = 0;
  std::string name;
  std::string source_yaml;
  std::string metric_name;
  std::string metric_goal;
  int32_t max_attempts = 3;
  int32_t max_concurrent = 0;
  int32_t priority = 0;
  SweepState state = SweepState::kRunning;
  int64_t created_at_ms = 0;
  // Trials per state, indexed by TrialState's value (slot 0 unused).
  int32_t trial_counts[kTrialStateCount] = {0, 0, 0, 0, 0, 0, 0};
  int32_t trials_total = 0;
};

struct TrialRecord {
  int64_t id = 0;
  int64_t sweep_id = 0;
  int32_t index = 0;
  TrialState state = TrialState::kPending;
  int32_t attempt = 0;  // 0 until first leased; raised by every lease
  int32_t failures = 0;  // attempts that failed (crash, lost lease): <= max_attempts
  int32_t max_attempts = 3;  // the sweep's
  std::string worker_id;  // holder of the current attempt; empty if none
  int32_t last_epoch = -1;  // highest epoch with a stored metric, -1 if none
  int32_t epochs = 0;
  std::vector<ParamValue> params;
  std::string config_yaml;
  std::string failure_reason;
  int64_t lease_expires_ms = 0;
  int32_t checkpoint_epoch = -1;  // epoch of the stored checkpoint, -1 if none
  int32_t ranks = 1;  // data-parallel ranks
  // While it runs: the holder of each rank of the current attempt, by rank
  // (rank_workers[0] == worker_id). Empty otherwise.
  std::vector<std::string> rank_workers;
};

// Where the ranks of a data-parallel attempt meet (rank 0's TCPStore).
struct RendezvousPoint {
  std::string master_address;
  int32_t master_port = 0;
};

struct MetricValue {
  std::string name;
  double value = 0;
};

// The metrics of one trial at one epoch.
struct EpochMetrics {
  int64_t trial_id = 0;
  int32_t epoch = -1;
  std::vector<MetricValue> metrics;  // sorted by name
};

struct WorkerRecord {
  std::string id;
  std::string hostname;
  int32_t pid = 0;
  int64_t registered_at_ms = 0;
  int64_t last_heartbeat_ms = 0;
  int32_t consecutive_failures = 0;  // reset by a success
  bool quarantined = false;
  std::string quarantine_reason;  // e.g. "3 failed attempts in a row; last: ..."
  std::vector<int64_t> running_trial_ids;  // ascending
};

// What RecordMetrics did.
struct RecordedMetrics {
  int32_t rows_written = 0;  // 0 when every row was already stored
  int64_t sweep_id = 0;      // the trial's
};

// A running attempt whose lease ran out, and what became of its trial.
struct ExpiredLease {
  int64_t trial_id = 0;
  int32_t attempt = 0;
  std::string worker_id;
  bool requeued = false;  // false: the trial failed (max_attempts reached)
  bool worker_quarantined = false;  // this loss quarantined the worker
};

// What FailTrial did.
struct FailOutcome {
  bool requeued = false;            // the trial went back to pending
  bool worker_quarantined = false;  // this failure quarantined the worker
};

// What Heartbeat found.
struct HeartbeatOutcome {
  std::vector<int64_t> running_trial_ids;  // held by the worker now, ascending
  bool quarantined = false;
};

// How far a trial has come, for status displays.
struct TrialProgress {
  int64_t trial_id = 0;
  int64_t started_at_ms = 0;  // its first attempt's start; 0 if never leased
  int64_t ended_at_ms = 0;    // 0 while pending or running
  std::optional<double> metric_value;  // the sweep metric at its latest epoch with it
  std::optional<double> epoch_seconds;  // mean time/epoch_seconds of its last 3 epochs
};

// A trial's history of one metric, by epoch.
struct MetricHistory {
  int64_t trial_id = 0;
  TrialState state = TrialState::kPending;
  int32_t attempt = 0;
  std::vector<std::pair<int32_t, double>> values;  // (epoch, value), by epoch
};

// How an attempt ended (the attempts table), for live views.
struct AttemptEnd {
  std::string outcome;  // "succeeded", "failed", "lost", "released", ...; "" while it runs
  std::string reason;
};

// One epoch with metrics of a trial, and one metric's value at it.
struct EpochValue {
  int32_t epoch = 0;
  std::optional<double> value;  // nullopt: the metric has no value at this epoch
};

// A stored metric row; (trial_id, epoch, name) is the metrics table's key.
struct MetricRow {
  int64_t trial_id = 0;
  int32_t epoch = 0;
  std::string name;
  double value = 0;
};

class Store {
 public:
  // Opens or creates the database at options.path, creating or migrating the
  // schema. Every error names the path. Fails with FailedPrecondition for a
  // file written by a newer schema version (naming both versions), for a
  // SQLite database that is not an sslsweep store, and (with the SQLite
  // message) for a file that is not a database; such files are left as they
  // are.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Inserts the sweep and all its trials (state pending) in one transaction.
  // Returns the new sweep id. InvalidArgument, storing nothing, for no
  // trials, a negative or repeated index, negative epochs, an empty or
  // repeated parameter path, or a metric goal other than those above.
  absl::StatusOr<int64_t> CreateSweep(const NewSweep& sweep,
                                      const std::vector<NewTrial>& trials,
                                      int64_t now_ms);

  absl::StatusOr<std::vector<SweepRecord>> ListSweeps();
  // NotFound if no such sweep.
  absl::StatusOr<SweepRecord> GetSweep(int64_t sweep_id);
  // Trials of the sweep by index; NotFound if no such sweep.
  absl::StatusOr<std::vector<TrialRecord>> ListTrials(int64_t sweep_id);
  absl::StatusOr<TrialRecord> GetTrial(int64_t trial_id);

  // Gives `worker_id` something to run, in this order:
  //  1. a rank of a gang it was made part of by another worker's lease
  //     (below) and has not been given yet;
  //  2. the next pending trial: from the running sweep with the highest
  //     priority (then the lowest id) that has fewer running trials than
  //     its max_concurrent, its lowest index. It runs under `worker_id` as
  //     rank 0 with attempt + 1 and a lease until now_ms + lease_ms. A
  //     trial of N > 1 ranks is a gang: it starts only if N - 1 other
  //     workers are idle (they asked for work within the last
  //     idle_window_ms, found none, hold nothing and are not quarantined);
  //     they become ranks 1..N-1 in the same transaction, each with its
  //     own lease, and get their rank at their next call. Nothing is ever
  //     held for a gang that cannot start whole. While the gang cannot
  //     start but enough live workers exist (heartbeat within lease_ms),
  //     the caller waits for it (nullopt) rather than take a later trial,
  //     so that smaller trials do not starve it; when too few live workers
  //     exist, later trials that fit are leased instead.
  // The caller's rank is its position in the record's rank_workers.
  // nullopt when nothing may be leased now (the caller is then idle).
  // NotFound for an unregistered worker; FailedPrecondition, naming the
  // reason, for a quarantined one; InvalidArgument if lease_ms <= 0 or
  // idle_window_ms <= 0.
  absl::StatusOr<std::optional<TrialRecord>> LeaseNextTrial(const std::string& worker_id,
                                                            int64_t now_ms, int64_t lease_ms,
                                                            int64_t idle_window_ms = 3'000);

  // Whether any running sweep has an unfinished trial: pending, or running
  // (a running attempt may fail and be retried, and a retried gang needs
  // every rank's worker again).
  absl::StatusOr<bool> HasUnfinishedTrials();

  // Ends every running attempt whose lease (or the lease of one of its
  // ranks) expired before now_ms (outcome "lost"), blaming the worker
  // whose lease it was: the trial's failures rise by one and it goes back to pending,
  // or fails ("lost worker w-N; failed A of max_attempts attempts") once
  // failures reach max_attempts; the worker's consecutive failures rise
  // and may quarantine it. Returns what it ended, by trial id.
  absl::StatusOr<std::vector<ExpiredLease>> ExpireLeases(int64_t now_ms,
                                                         const FailurePolicy& policy);

  // Gives every running attempt a lease until `lease_expires_ms`: a
  // restarted coordinator's grace period, so that workers which kept
  // running while it was down can reconnect before their leases are judged.
  // Every rank of a running gang is renewed alike. Returns how many
  // trials' leases it renewed.
  absl::StatusOr<int32_t> RenewAllLeases(int64_t lease_expires_ms);

  // The calls below are fenced: they act only for the trial's current
  // attempt, held by `worker_id` (as rank 0; FailTrial and GetRendezvous
  // accept any rank), while the trial runs. Otherwise they fail
  // with FailedPrecondition (a stale worker, which must stop the trial)
  // naming the current attempt and state, and change nothing; NotFound for
  // an unknown trial.

  // Records where rank 0 of a data-parallel attempt listens. Reporting it
  // again replaces it. InvalidArgument for an empty address or a port
  // outside 1..65535.
  absl::Status RecordRendezvous(const std::string& worker_id, int64_t trial_id,
                                int32_t attempt, const RendezvousPoint& point);
  // What rank 0 recorded for the attempt; nullopt until it has. Any rank's
  // holder may ask.
  absl::StatusOr<std::optional<RendezvousPoint>> GetRendezvous(const std::string& worker_id,
                                                               int64_t trial_id,
                                                               int32_t attempt);

  // Stores one epoch's metrics. Rows already present for (trial, epoch,
  // name) are left as they are (a retried report, or a resumed attempt
  // measuring an epoch again, writes nothing twice). Returns the number of
  // rows written and the trial's sweep. InvalidArgument for an epoch
  // outside 0..the trial's epochs or an empty, repeated or non-finite
  // metric. A failed call writes nothing.
  absl::StatusOr<RecordedMetrics> RecordMetrics(const std::string& worker_id, int64_t trial_id,
                                        int32_t attempt, int32_t epoch,
                                        const std::vector<MetricValue>& metrics);

  // Records that the coordinator now keeps this attempt's checkpoint after
  // `epoch` epochs (checkpoint_epoch). InvalidArgument for epoch < 0.
  absl::Status RecordCheckpoint(const std::string& worker_id, int64_t trial_id,
                                int32_t attempt, int32_t epoch);

  // Ends the current attempt as succeeded, and resets the consecutive
  // failures of the workers of all its ranks. The sweep becomes finished when no trial is
  // pending or running. Finishing the same attempt again is OK (a retry).
  absl::Status FinishTrial(const std::string& worker_id, int64_t trial_id,
                           int32_t attempt, int64_t now_ms);

  // Ends the current attempt as failed with `reason`; `kind` decides what
  // follows (FailureKind). Any rank of the attempt may fail it, for the
  // whole gang; a rank other than 0 is named in the stored reason ("rank
  // 1 on w-2: ..."). Repeating the same call after it took effect is OK
  // and returns the same outcome (a retry).
  absl::StatusOr<FailOutcome> FailTrial(const std::string& worker_id, int64_t trial_id,
                                        int32_t attempt, FailureKind kind,
                                        const std::string& reason, int64_t now_ms,
                                        const FailurePolicy& policy);

  // Ends the current attempt and the trial as pruned (early termination),
  // with `reason`. Fenced by attempt only: the coordinator prunes trials
  // whose workers are not the caller.
  absl::Status PruneTrial(int64_t trial_id, int32_t attempt, const std::string& reason,
                          int64_t now_ms);

  // Marks every pending or running trial of the sweep cancelled and the
  // sweep cancelled; returns how many trials changed. A sweep already
  // finished or cancelled stays as it is (returns 0). NotFound if no sweep.
  absl::StatusOr<int32_t> CancelSweep(int64_t sweep_id, int64_t now_ms);
  // Cancels one pending or running trial (its running attempt ends
  // "cancelled"); the sweep finishes if it was the last. Returns false for
  // a trial that had already ended. NotFound if no trial.
  absl::StatusOr<bool> CancelTrial(int64_t trial_id, int64_t now_ms);

  // Registers a worker and returns its new id ("w-<n>").
  absl::StatusOr<std::string> RegisterWorker(const std::string& hostname,
                                             int32_t pid, int64_t now_ms);
  // Records a heartbeat and extends the leases of the worker's running
  // trials to now_ms + lease_ms; returns those trials and whether the
  // worker is quarantined. NotFound for an unknown worker; InvalidArgument
  // if lease_ms <= 0.
  absl::StatusOr<HeartbeatOutcome> Heartbeat(const std::string& worker_id, int64_t now_ms,
                                             int64_t lease_ms);
  // Every worker with its running trials, by registration order.
  absl::StatusOr<std::vector<WorkerRecord>> ListWorkers();
  // NotFound for an unknown worker.
  absl::StatusOr<WorkerRecord> GetWorker(const std::string& worker_id);
  // Lifts a quarantine and resets the consecutive failures. OK for a worker
  // that was not quarantined; NotFound for an unknown one.
  absl::Status UnquarantineWorker(const std::string& worker_id);

  // For each trial of the sweep, its metrics at the highest epoch that has
  // any (epoch -1 and no metrics for a trial without any), by trial index.
  absl::StatusOr<std::vector<EpochMetrics>> FinalMetrics(int64_t sweep_id);
  // Every metric row of a trial, by (epoch, name). NotFound if no trial.
  absl::StatusOr<std::vector<EpochMetrics>> TrialMetrics(int64_t trial_id);
  // For every trial of the sweep (by id), its state, current attempt and
  // its values of metric `name` by epoch (empty if none). NotFound if no
  // sweep. Early termination rebuilds its state from this after a restart.
  absl::StatusOr<std::vector<MetricHistory>> MetricHistories(int64_t sweep_id,
                                                             const std::string& name);
  // Every trial's progress, by trial id. NotFound if no sweep.
  absl::StatusOr<std::vector<TrialProgress>> SweepProgress(int64_t sweep_id);
  // Aggregates the sweep's metrics in SQL as `query` asks (results_query.h;
  // docs/schema.md, "Aggregated results"), in one read transaction. NotFound
  // for an unknown sweep; InvalidArgument, naming what is valid, for a
  // group_by or where path the sweep does not sweep, a where value no trial
  // has, a metric glob that matches no stored metric of the sweep, and
  // "best" for a sweep without a metric.
  absl::StatusOr<AggregatedResults> QueryResults(const ResultsQuery& query);

  // ---- for the sweep streams (store_sweep_reads.cc)
  // How the trial's attempt ended; NotFound if it has no such attempt.
  absl::StatusOr<AttemptEnd> GetAttemptEnd(int64_t trial_id, int32_t attempt);
  // The trial's epochs with metrics after `after_epoch`, ascending, each
  // with the value of metric `name` (which may be empty: no value).
  absl::StatusOr<std::vector<EpochValue>> EpochsAfter(int64_t trial_id, int32_t after_epoch,
                                                      const std::string& name);
  // OK when each GLOB matches some stored metric of the sweep;
  // InvalidArgument naming stored metrics otherwise (as QueryResults).
  absl::Status CheckMetricGlobs(int64_t sweep_id, const std::vector<std::string>& globs);
  // One page of the sweep's metric rows in key order: up to `limit` rows
  // after `after` (from the first row when nullopt) whose name matches a
  // glob (any name when `globs` is empty). Each page is its own read
  // transaction, so a long export never holds the read connection between
  // pages. InvalidArgument if limit < 1.
  absl::StatusOr<std::vector<MetricRow>> MetricRowsPage(int64_t sweep_id,
                                                        const std::vector<std::string>& globs,
                                                        const std::optional<MetricRow>& after,
                                                        int32_t limit);

 private:
  // A write waiting in the queue (leveldb's DBImpl::Writer); store.cc.
  struct Writer;

  Store(sqlite3* write_db, sqlite3* read_db);

  // Runs `body` as one write: queues it, then either waits while the leader
  // of its batch runs it or leads the queued batch itself (CommitBatch).
  // Returns the body's result, or the batch's error if the transaction
  // failed; sticky_error_, without running `body`, once set.
  absl::Status Write(absl::FunctionRef<absl::Status(StatementCache&)> body)
      ABSL_LOCKS_EXCLUDED(mu_, write_mu_);
  template <typename T>
  absl::StatusOr<T> Write(absl::FunctionRef<absl::StatusOr<T>(StatementCache&)> body)
      ABSL_LOCKS_EXCLUDED(mu_, write_mu_);
  // Runs `body` in one read transaction on the read-only connection;
  // sticky_error_, without running `body`, once set.
  absl::Status Read(absl::FunctionRef<absl::Status(StatementCache&)> body)
      ABSL_LOCKS_EXCLUDED(mu_, read_mu_);
  template <typename T>
  absl::StatusOr<T> Read(absl::FunctionRef<absl::StatusOr<T>(StatementCache&)> body)
      ABSL_LOCKS_EXCLUDED(mu_, read_mu_);

  // Runs `batch` in one transaction, each write inside its own SAVEPOINT,
  // commits once and sets every writer's status. Returns the error that
  // stops the store (a failed COMMIT or ROLLBACK: the outcome is unknown),
  // else OK.
  absl::Status CommitBatch(const std::vector<Writer*>& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Runs one write of a batch inside its own SAVEPOINT, undoing it alone
  // if it fails. Returns an error if the batch's transaction can no longer
  // be trusted (SQLite rolled it back, or the savepoint could not be undone).
  absl::Status RunInSavepoint(Writer& writer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Ends the batch's open transaction without committing; returns the error
  // that stops the store if that fails.
  absl::Status RollBackBatch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  // Constant after construction.
  sqlite3* const write_db_;  // owned; the only writer; closed in the destructor
  sqlite3* const read_db_;   // owned; opened read-only; closed in the destructor
  const std::unique_ptr<StatementCache> write_statements_ ABSL_PT_GUARDED_BY(write_mu_);
  const std::unique_ptr<StatementCache> read_statements_ ABSL_PT_GUARDED_BY(read_mu_);

  // No two of the three mutexes are ever held together. write_mu_ is held
  // by the leader of a batch (the writer at the front of writers_) while it
  // uses write_db_; read_mu_ by one read while it uses read_db_.
  absl::Mutex write_mu_;
  absl::Mutex read_mu_;

  absl::Mutex mu_;
  std::deque<Writer*> writers_ ABSL_GUARDED_BY(mu_);  // queued writes; the front one leads
  absl::Status sticky_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_STORE_H_
