// The SQL of Store: each function runs its statements on a connection's
// StatementCache and maps rows to the records of store.h. None of them opens
// or ends a transaction: Store calls them inside the one transaction of each
// public method, and decides there what is allowed (fencing, validation).
//
// Thread contract: as StatementCache's; the caller serialises.

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

// What fencing decisions need to know about a trial.
struct TrialFence {
  int64_t sweep_id = 0;
  TrialState state = TrialState::kPending;
  int32_t attempt = 0;
};

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
absl::StatusOr<TrialFence> SelectTrialFence(StatementCache& db, int64_t trial_id);

// Leases and attempts.
// The pending trial of a running sweep with the lowest (sweep_id, idx).
absl::StatusOr<std::optional<int64_t>> SelectNextPendingTrial(StatementCache& db);
// Marks the trial running under a new attempt and opens that attempt's row.
absl::Status StartAttempt(StatementCache& db, int64_t trial_id, const std::string& worker_id,
                          int64_t now_ms, int64_t lease_expires_ms);
// Ends the trial's current attempt `attempt` in `outcome` (succeeded,
// failed or cancelled), in the trial and in the attempt's history.
absl::Status EndAttempt(StatementCache& db, int64_t trial_id, int32_t attempt,
                        TrialState outcome, const std::string& reason, int64_t now_ms);
// Marks the sweep finished if it is running and none of its trials is
// pending or running.
absl::Status FinishSweepIfDone(StatementCache& db, int64_t sweep_id, int64_t now_ms);
// Cancels the sweep and its pending and running trials; returns how many
// trials changed.
absl::StatusOr<int32_t> CancelSweepAndTrials(StatementCache& db, int64_t sweep_id,
                                             int64_t now_ms);

// Metrics. Returns the rows written; rows already present are kept.
absl::StatusOr<int32_t> InsertMetrics(StatementCache& db, int64_t trial_id, int32_t attempt,
                                      int32_t epoch, const std::vector<MetricValue>& metrics);
absl::StatusOr<std::vector<EpochMetrics>> SelectFinalMetrics(StatementCache& db,
                                                             int64_t sweep_id);
absl::StatusOr<std::vector<EpochMetrics>> SelectTrialMetrics(StatementCache& db,
                                                             int64_t trial_id);

// Workers.
absl::StatusOr<std::string> InsertWorker(StatementCache& db, const std::string& hostname,
                                         int32_t pid, int64_t now_ms);
absl::StatusOr<bool> WorkerExists(StatementCache& db, const std::string& worker_id);
// Returns whether the worker exists.
absl::StatusOr<bool> UpdateHeartbeat(StatementCache& db, const std::string& worker_id,
                                     int64_t now_ms, int64_t lease_expires_ms);
absl::StatusOr<std::vector<WorkerRecord>> SelectWorkers(StatementCache& db);
absl::StatusOr<std::vector<int64_t>> SelectRunningTrials(StatementCache& db,
                                                         const std::string& worker_id);

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_STORE_QUERIES_H_
