// Row changes that start and end attempts, the building blocks of
// store_lease_queries.cc: the fence lookup and check that every report from
// a worker passes, ending an attempt, ending or requeueing its trial,
// counting a failure against a worker, finishing a sweep, and forming the
// gangs of data-parallel attempts. Each runs inside a transaction its
// caller opened (SelectRankOf also inside a read).
//
// Thread contract: not thread-safe; the caller serialises the use of the
// connection behind `db`.

#ifndef SSLSWEEP_COORDINATOR_STORE_ATTEMPT_UPDATES_H_
#define SSLSWEEP_COORDINATOR_STORE_ATTEMPT_UPDATES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/sqlite_statement.h"
#include "coordinator/store.h"

namespace sslsweep {

// How an attempt ended, as its attempts row records it.
struct AttemptEnding {
  std::string outcome;       // attempts.outcome: 'succeeded', 'failed', 'lost', ...
  std::string failure_kind;  // '' unless the outcome is 'failed'
  std::string reason;
  bool requeued = false;            // the trial went back to the queue after it
  bool quarantined_worker = false;  // it quarantined its worker
};

// What the fenced calls need to know about a trial and about the attempt a
// caller names.
struct TrialFence {
  int64_t sweep_id = 0;
  TrialState state = TrialState::kPending;
  int32_t attempt = 0;    // the current attempt
  std::string worker_id;  // its holder; '' if none
  int32_t failures = 0;
  int32_t max_attempts = 0;
  int32_t epochs = 0;
  // The named attempt's holder ('' if no such attempt) and its ending
  // (nullopt while it runs or if there is no such attempt).
  std::string named_worker_id;
  std::optional<AttemptEnding> named_ending;
};

// NotFound for an unknown trial.
absl::StatusOr<TrialFence> SelectTrialFence(StatementCache& db, int64_t trial_id,
                                            int32_t attempt);

// FailedPrecondition unless `attempt` is the trial's current attempt, the
// trial runs and (unless `worker_id` is null) `worker_id` holds it: a report
// from a stale or ended attempt must not write. The message names the
// current attempt and state.
absl::Status CheckFence(int64_t trial_id, const std::string* worker_id, int32_t attempt,
                        const TrialFence& fence);

// Marks the pending trial running under a new attempt held by `worker_id`
// and opens that attempt's row.
absl::Status StartAttempt(StatementCache& db, int64_t trial_id, const std::string& worker_id,
                          int64_t now_ms, int64_t lease_expires_ms);
// Records how the attempt ended in its attempts row.
absl::Status CloseAttempt(StatementCache& db, int64_t trial_id, int32_t attempt,
                          const AttemptEnding& ending, int64_t now_ms);
// Ends the trial in final state `state`, adding `failures_added` failures.
absl::Status EndTrial(StatementCache& db, int64_t trial_id, TrialState state,
                      const std::string& reason, int64_t now_ms, int32_t failures_added);
// Puts a running trial back in the queue, held by no one, adding
// `failures_added` failures; its attempt number rises with its next lease.
absl::Status RequeueTrial(StatementCache& db, int64_t trial_id, int32_t failures_added);
// Marks the sweep finished if it runs and none of its trials is pending or
// running.
absl::Status FinishSweepIfDone(StatementCache& db, int64_t sweep_id, int64_t now_ms);

// Counts a failed attempt against its worker and quarantines the worker
// once its consecutive failures reach policy.quarantine_after (> 0), with
// the reason "<n> failed attempts in a row; last: <last_failure>". Returns
// whether this failure quarantined it.
absl::StatusOr<bool> BlameWorker(StatementCache& db, const std::string& worker_id,
                                 const FailurePolicy& policy, const std::string& last_failure,
                                 int64_t now_ms);
// A success: the worker's consecutive failures start again from 0.
absl::Status ResetWorkerFailures(StatementCache& db, const std::string& worker_id);
// The same for the workers of ranks 1.. of a data-parallel attempt.
absl::Status ResetRankWorkerFailures(StatementCache& db, int64_t trial_id, int32_t attempt);

// ---- Gangs: the ranks of data-parallel attempts (attempt_ranks) ----------

// Up to `limit` workers other than `worker_id` that may join a gang now:
// they asked for work since `idle_since_ms` and found none, hold nothing
// and are not quarantined; the most recent askers first.
absl::StatusOr<std::vector<std::string>> SelectIdleWorkers(StatementCache& db,
                                                           const std::string& worker_id,
                                                           int64_t idle_since_ms, int32_t limit);
// Workers that heartbeat since `alive_since_ms` and are not quarantined.
absl::StatusOr<int64_t> CountLiveWorkers(StatementCache& db, int64_t alive_since_ms);
// Records that the worker asked for work at `now_ms` and got none
// (nullopt: it got some, so it is not idle).
absl::Status MarkIdle(StatementCache& db, const std::string& worker_id,
                      std::optional<int64_t> now_ms);
// Starts the trial's next attempt with `worker_id` as rank 0, leased until
// `lease_expires_ms`, and `others` as ranks 1.., each leased until
// `delivery_expires_ms` (their heartbeats, or taking the rank, renew it);
// none of them is idle any more.
absl::Status StartGang(StatementCache& db, int64_t trial_id, const std::string& worker_id,
                       const std::vector<std::string>& others, int64_t now_ms,
                       int64_t lease_expires_ms, int64_t delivery_expires_ms);
// A rank that another worker's lease gave `worker_id` and that it has not
// been told of: marks it told, renews its lease and returns its trial.
absl::StatusOr<std::optional<int64_t>> DeliverAssignedRank(StatementCache& db,
                                                           const std::string& worker_id,
                                                           int64_t lease_expires_ms);
// The rank `worker_id` holds (or held) in the trial's attempt: 0 for the
// attempt's own worker, -1 for none.
absl::StatusOr<int32_t> SelectRankOf(StatementCache& db, const TrialFence& fence,
                                     int64_t trial_id, int32_t attempt,
                                     const std::string& worker_id);

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_STORE_ATTEMPT_UPDATES_H_
