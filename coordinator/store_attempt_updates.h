// Row changes that start and end attempts, the building blocks of
// store_lease_queries.cc: the fence lookup and check that every report from
// a worker passes, ending an attempt, ending or requeueing its trial,
// counting a failure against a worker, and finishing a sweep. Each runs
// inside a write transaction its caller opened.
//
// Thread contract: not thread-safe; the caller serialises the use of the
// connection behind `db`.

#ifndef SSLSWEEP_COORDINATOR_STORE_ATTEMPT_UPDATES_H_
#define SSLSWEEP_COORDINATOR_STORE_ATTEMPT_UPDATES_H_

#include <cstdint>
#include <optional>
#include <string>

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

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_STORE_ATTEMPT_UPDATES_H_
