// SweepWatch: turns successive looks at a sweep (GetSweepStatusResponse)
// into the events of a WatchSweep stream (proto SweepEvent): a snapshot
// first, then, per look, what changed since the last one.
//
// Per trial, in this order: each attempt that ended and went back to the
// queue (attempt_requeued), the start of its current attempt
// (trial_started), every epoch stored since the last look (epoch_reported,
// one per epoch), and its end (trial_ended); trials by index. After the
// look at which the sweep is no longer running: sweep_ended, and the watch
// has ended. A look reads nothing but the status it is given and, through
// Lookups, how an attempt ended and which epochs were stored: tests drive
// it with hand-made statuses.
//
// Thread contract: confined to one thread (one watch per stream).

#ifndef SSLSWEEP_COORDINATOR_SWEEP_WATCH_H_
#define SSLSWEEP_COORDINATOR_SWEEP_WATCH_H_

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/store.h"
#include "proto/sslsweep.pb.h"

namespace sslsweep {

class SweepWatch {
 public:
  // What a look needs beyond the status (the Coordinator reads the Store).
  struct Lookups {
    // How the trial's attempt ended.
    std::function<absl::StatusOr<AttemptEnd>(int64_t trial_id, int32_t attempt)> attempt_end;
    // The trial's epochs with metrics after `after_epoch`, ascending, with
    // the sweep metric's value at each.
    std::function<absl::StatusOr<std::vector<EpochValue>>(int64_t trial_id, int32_t after_epoch)>
        epochs_after;
  };

  explicit SweepWatch(Lookups lookups) : lookups_(std::move(lookups)) {}

  // The snapshot event, and sweep_ended after it if the sweep has already
  // ended. Call once, first.
  std::vector<v1::SweepEvent> Start(const v1::GetSweepStatusResponse& status, int64_t now_ms);

  // The events since the last look, in the order above, each stamped
  // `now_ms`. A lookup's error is returned as it is.
  absl::StatusOr<std::vector<v1::SweepEvent>> Update(const v1::GetSweepStatusResponse& status,
                                                     int64_t now_ms);

  // Whether sweep_ended was given: nothing more will come.
  bool ended() const { return ended_; }

 private:
  // What the watcher has been told about a trial.
  struct Told {
    v1::TrialState state = v1::TRIAL_PENDING;
    int32_t started_attempt = 0;  // highest attempt whose start was told
    int32_t ended_attempt = 0;    // highest attempt whose end was told
    int32_t epoch = -1;           // highest epoch told
  };

  const Lookups lookups_;
  std::map<int64_t, Told> told_;  // by trial id
  bool ended_ = false;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_SWEEP_WATCH_H_
