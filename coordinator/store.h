// Store: the coordinator's durable state in one SQLite file.
//
// The coordinator process is the only writer. The file is in WAL mode with a
// schema version (PRAGMA user_version) so that `sqlite3 DB` can read it while
// the coordinator runs, and a restarted coordinator recovers everything from
// it. Every method is one transaction: it either happens whole or not at all.
// docs/schema.md documents the tables.
//
// Thread contract: thread-safe; calls are serialised on one connection.
// Once a write's outcome is unknown (e.g. a failed COMMIT) the store refuses
// every later call with that error rather than guess (leveldb's bg_error_).

#ifndef SSLSWEEP_COORDINATOR_STORE_H_
#define SSLSWEEP_COORDINATOR_STORE_H_

#include <cstdint>
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

enum class TrialState { kPending = 1, kRunning = 2, kSucceeded = 3, kFailed = 4, kCancelled = 5 };
enum class SweepState { kRunning = 1, kFinished = 2, kCancelled = 3 };

const char* TrialStateName(TrialState state);  // "pending", "running", ...

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
};

struct NewTrial {
  int32_t index = 0;  // position in the expansion, 0-based
  std::vector<ParamValue> params;
  std::string config_yaml;  // the full trial configuration
  int32_t epochs = 0;
};

struct SweepRecord {
  int64_t id = 0;
  std::string name;
  std::string source_yaml;
  std::string metric_name;
  std::string metric_goal;
  SweepState state = SweepState::kRunning;
  int64_t created_at_ms = 0;
  // Trials per state, indexed by TrialState's value (slot 0 unused).
  int32_t trial_counts[6] = {0, 0, 0, 0, 0, 0};
  int32_t trials_total = 0;
};

struct TrialRecord {
  int64_t id = 0;
  int64_t sweep_id = 0;
  int32_t index = 0;
  TrialState state = TrialState::kPending;
  int32_t attempt = 0;  // 0 until first leased; raised by every lease
  std::string worker_id;  // holder of the current attempt; empty if none
  int32_t last_epoch = -1;  // highest epoch with a stored metric, -1 if none
  int32_t epochs = 0;
  std::vector<ParamValue> params;
  std::string config_yaml;
  std::string failure_reason;
  int64_t lease_expires_ms = 0;
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

  // First-come-first-served: takes the pending trial with the lowest
  // (sweep id, index), marks it running under `worker_id` with attempt + 1
  // and a lease until now_ms + lease_ms. nullopt when nothing is pending.
  // NotFound for an unregistered worker; InvalidArgument if lease_ms <= 0.
  absl::StatusOr<std::optional<TrialRecord>> LeaseNextTrial(
      const std::string& worker_id, int64_t now_ms, int64_t lease_ms);

  // Stores one epoch's metrics for (trial_id, attempt). Rows already present
  // for (trial, epoch, name) are left as they are (a retried report writes
  // nothing twice). Returns the number of rows written. FailedPrecondition
  // if the trial is not running or `attempt` is not its current attempt
  // (a stale worker); NotFound for an unknown trial; InvalidArgument for a
  // negative epoch or an empty, repeated or non-finite metric. A failed call
  // writes nothing.
  absl::StatusOr<int32_t> RecordMetrics(int64_t trial_id, int32_t attempt,
                                        int32_t epoch,
                                        const std::vector<MetricValue>& metrics);

  // Ends the current attempt as succeeded / failed (with a reason). The
  // sweep becomes finished when no trial is pending or running. Same
  // fencing errors as RecordMetrics. Ending an attempt again the same way
  // (succeeded twice, or failed twice) is OK (idempotent retry).
  absl::Status FinishTrial(int64_t trial_id, int32_t attempt, int64_t now_ms);
  absl::Status FailTrial(int64_t trial_id, int32_t attempt,
                         const std::string& reason, int64_t now_ms);

  // Marks every pending or running trial of the sweep cancelled and the
  // sweep cancelled; returns how many trials changed. A sweep already
  // finished or cancelled stays as it is (returns 0). NotFound if no sweep.
  absl::StatusOr<int32_t> CancelSweep(int64_t sweep_id, int64_t now_ms);

  // Registers a worker and returns its new id ("w-<n>").
  absl::StatusOr<std::string> RegisterWorker(const std::string& hostname,
                                             int32_t pid, int64_t now_ms);
  // Records a heartbeat and extends the leases of the worker's running
  // trials to now_ms + lease_ms. NotFound for an unknown worker;
  // InvalidArgument if lease_ms <= 0.
  absl::Status Heartbeat(const std::string& worker_id, int64_t now_ms,
                         int64_t lease_ms);
  absl::StatusOr<std::vector<WorkerRecord>> ListWorkers();
  // Trials currently running under the worker, by id (none for an unknown
  // worker).
  absl::StatusOr<std::vector<int64_t>> RunningTrials(const std::string& worker_id);

  // For each trial of the sweep, its metrics at the highest epoch that has
  // any (epoch -1 and no metrics for a trial without any), by trial index.
  absl::StatusOr<std::vector<EpochMetrics>> FinalMetrics(int64_t sweep_id);
  // Every metric row of a trial, by (epoch, name). NotFound if no trial.
  absl::StatusOr<std::vector<EpochMetrics>> TrialMetrics(int64_t trial_id);

 private:
  // Whether a transaction only reads (BEGIN) or may write (BEGIN IMMEDIATE).
  enum class Access { kRead, kWrite };

  explicit Store(sqlite3* db);

  // Runs `body` inside one transaction on the cached statements and commits,
  // or rolls back if `body` fails. Returns sticky_error_ without running
  // `body` once set; a write whose COMMIT (or ROLLBACK) fails sets it.
  absl::Status Transact(Access access, absl::FunctionRef<absl::Status(StatementCache&)> body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  template <typename T>
  absl::StatusOr<T> Transact(Access access,
                             absl::FunctionRef<absl::StatusOr<T>(StatementCache&)> body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends an open transaction without committing; failing to is sticky.
  void RollBack() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records that `step` failed with `cause` and refuses every later call.
  void Stop(const char* step, const absl::Status& cause) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  sqlite3* const db_;  // owned; closed in the destructor
  const std::unique_ptr<StatementCache> statements_ ABSL_PT_GUARDED_BY(mu_);

  absl::Mutex mu_;
  absl::Status sticky_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_STORE_H_
