// ChangeSignal: wakes the coordinator's watchers when the store changed.
//
// The Coordinator calls Notify() after every write that changes what a
// live view shows (a sweep submitted or cancelled, a trial leased,
// reported, finished, failed, pruned or expired); a WatchSweep stream
// waits on it between two reads of its sweep, with a timeout, so that it
// also notices changes nobody notified and a client that went away.
//
// Thread contract: thread-safe.

#ifndef SSLSWEEP_COORDINATOR_CHANGE_SIGNAL_H_
#define SSLSWEEP_COORDINATOR_CHANGE_SIGNAL_H_

#include <cstdint>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sslsweep {

class ChangeSignal {
 public:
  // How many times Notify() was called: a watcher reads it before it reads
  // the store, so that a change during that read wakes its next wait.
  uint64_t generation() const {
    absl::MutexLock lock(&mu_);
    return generation_;
  }

  // A change was committed: wakes every waiter.
  void Notify() {
    absl::MutexLock lock(&mu_);
    ++generation_;
    changed_.SignalAll();
  }

  // Waits until the generation is no longer `seen` or `timeout` passed;
  // returns the generation then.
  uint64_t WaitForChange(uint64_t seen, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    const absl::Time deadline = absl::Now() + timeout;
    while (generation_ == seen) {
      if (changed_.WaitWithDeadline(&mu_, deadline)) break;  // timed out
    }
    return generation_;
  }

 private:
  mutable absl::Mutex mu_;
  absl::CondVar changed_;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_CHANGE_SIGNAL_H_
