// The Store's reads and inserts as functions over a StatementCache: sweeps,
// trials, metrics and workers, rows in and records out. Leases, fencing and
// the ends of attempts are in store_lease_queries.h. Each function runs
// inside a transaction its caller opened; none opens or ends one.
//
// Thread contract: not thread-safe; the caller serialises the use of the
// connection behind `db`.

#ifndef SSLSWEEP_COORDINATOR_STORE_QUERIES_H_
#define SSLSWEEP_COORDINATOR_STORE_QUERIES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/sqlite_statement.h"
#include "coordinator/store.h"

namespace sslsweep {

// The stored text of a state, and back (DataLoss for text no build wrote).
absl::StatusOr<TrialState> ParseTrialState(const std::string& text);

// Sweeps and trials.
absl::StatusOr<int64_t> InsertSweep(StatementCache& db, const NewSweep& sweep, int64_t now_ms);
absl::Status InsertTrial(StatementCache& db, int64_t sweep_id, const NewTrial& trial,
                         int64_t now_ms);
absl::StatusOr<std::vector<SweepRecord>> SelectSweeps(StatementCache& db);
// NotFound if no such sweep.
absl::StatusOr<SweepRecord> SelectSweep(StatementCache& db, int64_t sweep_id);
absl::StatusOr<std::vector<TrialRecord>> SelectTrials(StatementCache& db, int64_t sweep_id);
// NotFound if no such trial.
absl::StatusOr<TrialRecord> SelectTrial(StatementCache& db, int64_t trial_id);

// Metrics. InsertMetrics returns the rows written; rows already present
// are kept.
absl::StatusOr<int32_t> InsertMetrics(StatementCache& db, int64_t trial_id, int32_t attempt,
                                      int32_t epoch, const std::vector<MetricValue>& metrics);
absl::StatusOr<std::vector<EpochMetrics>> SelectFinalMetrics(StatementCache& db,
                                                             int64_t sweep_id);
absl::StatusOr<std::vector<EpochMetrics>> SelectTrialMetrics(StatementCache& db,
                                                             int64_t trial_id);
// Empty for a sweep that does not exist (every sweep has a trial).
absl::StatusOr<std::vector<MetricHistory>> SelectMetricHistories(StatementCache& db,
                                                                 int64_t sweep_id,
                                                                 const std::string& name);

// Workers.
absl::StatusOr<std::string> InsertWorker(StatementCache& db, const std::string& hostname,
                                         int32_t pid, int64_t now_ms);
// Every worker with its running trials, by registration order.
absl::StatusOr<std::vector<WorkerRecord>> SelectWorkers(StatementCache& db);
// NotFound for an unknown worker.
absl::StatusOr<WorkerRecord> SelectWorker(StatementCache& db, const std::string& worker_id);
// Records the heartbeat and extends the leases of the worker's running
// trials; nullopt for an unknown worker.
absl::StatusOr<std::optional<HeartbeatOutcome>> UpdateHeartbeat(StatementCache& db,
                                                                const std::string& worker_id,
                                                                int64_t now_ms,
                                                                int64_t lease_expires_ms);
// Lifts the worker's quarantine and resets its consecutive failures;
// returns whether the worker exists.
absl::StatusOr<bool> ClearQuarantine(StatementCache& db, const std::string& worker_id);

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_STORE_QUERIES_H_
