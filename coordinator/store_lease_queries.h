// The Store's leases, fencing and the ends of attempts: every change of a
// trial's state after its creation. `XIn` is the transaction body of
// Store::X (coordinator/store.h says what each does); each runs inside a
// write transaction its caller opened and changes nothing when it fails.
// Arguments that need no database (epochs, metric values, lease lengths)
// are validated by Store before the call. The row changes they are made of
// are in store_attempt_updates.h.
//
// Thread contract: not thread-safe; the caller serialises the use of the
// connection behind `db`.

#ifndef SSLSWEEP_COORDINATOR_STORE_LEASE_QUERIES_H_
#define SSLSWEEP_COORDINATOR_STORE_LEASE_QUERIES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/sqlite_statement.h"
#include "coordinator/store.h"

namespace sslsweep {

absl::StatusOr<std::optional<TrialRecord>> LeaseNextTrialIn(StatementCache& db,
                                                            const std::string& worker_id,
                                                            int64_t now_ms, int64_t lease_ms,
                                                            int64_t idle_window_ms);
absl::StatusOr<std::vector<ExpiredLease>> ExpireLeasesIn(StatementCache& db, int64_t now_ms,
                                                         const FailurePolicy& policy);
absl::StatusOr<int32_t> RenewAllLeasesIn(StatementCache& db, int64_t lease_expires_ms);

// Fenced by (worker_id, trial_id, attempt).
absl::StatusOr<RecordedMetrics> RecordMetricsIn(StatementCache& db, const std::string& worker_id,
                                                int64_t trial_id, int32_t attempt,
                                                int32_t epoch,
                                                const std::vector<MetricValue>& metrics);
absl::Status RecordRendezvousIn(StatementCache& db, const std::string& worker_id,
                                int64_t trial_id, int32_t attempt, const RendezvousPoint& point);
// Fenced by any rank's holder; a read.
absl::StatusOr<std::optional<RendezvousPoint>> SelectRendezvous(StatementCache& db,
                                                                const std::string& worker_id,
                                                                int64_t trial_id,
                                                                int32_t attempt);
absl::Status RecordCheckpointIn(StatementCache& db, const std::string& worker_id,
                                int64_t trial_id, int32_t attempt, int32_t epoch);
absl::Status FinishTrialIn(StatementCache& db, const std::string& worker_id, int64_t trial_id,
                           int32_t attempt, int64_t now_ms);
absl::StatusOr<FailOutcome> FailTrialIn(StatementCache& db, const std::string& worker_id,
                                        int64_t trial_id, int32_t attempt, FailureKind kind,
                                        const std::string& reason, int64_t now_ms,
                                        const FailurePolicy& policy);
// Fenced by (trial_id, attempt) only.
absl::Status PruneTrialIn(StatementCache& db, int64_t trial_id, int32_t attempt,
                          const std::string& reason, int64_t now_ms);

absl::StatusOr<bool> CancelTrialIn(StatementCache& db, int64_t trial_id, int64_t now_ms);
absl::StatusOr<int32_t> CancelSweepIn(StatementCache& db, int64_t sweep_id, int64_t now_ms);

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_STORE_LEASE_QUERIES_H_
