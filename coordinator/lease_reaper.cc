#include "coordinator/lease_reaper.h"

#include <algorithm>

#include "absl/time/time.h"

namespace sslsweep {

LeaseReaper::LeaseReaper(Coordinator* coordinator, int64_t lease_ms, std::ostream* log)
    : coordinator_(coordinator),
      interval_ms_(std::clamp<int64_t>(lease_ms / 10, 100, 1000)),
      log_(log),
      thread_([this] { Loop(); }) {}

LeaseReaper::~LeaseReaper() {
  stopping_.Notify();
  thread_.join();
}

void LeaseReaper::Loop() {
  while (!stopping_.WaitForNotificationWithTimeout(absl::Milliseconds(interval_ms_))) {
    absl::StatusOr<std::vector<ExpiredLease>> expired = coordinator_->ExpireLeases();
    if (!expired.ok()) {
      *log_ << "sslsweep-coordinator: expiring leases: " << expired.status().message()
            << std::endl;
      continue;
    }
    for (const ExpiredLease& lease : *expired) {
      *log_ << "sslsweep-coordinator: trial " << lease.trial_id << " attempt "
            << lease.attempt << " lost with worker " << lease.worker_id << ": "
            << (lease.requeued ? "back in the queue" : "failed after max_attempts")
            << (lease.worker_quarantined ? "; worker quarantined" : "") << std::endl;
    }
  }
}

}  // namespace sslsweep
