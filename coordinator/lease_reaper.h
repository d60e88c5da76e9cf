// LeaseReaper: a thread that calls Coordinator::ExpireLeases a few times per
// lease, so that a lost worker's trial is back in the queue (or failed after
// max_attempts) at most ~1.1 leases after its last heartbeat. Used by every
// process that hosts a Coordinator; tests call ExpireLeases directly with a
// FakeClock instead.
//
// Thread contract: construct and destroy on one thread; the reaper thread
// runs between the two and logs each expiry to `log`.

#ifndef SSLSWEEP_COORDINATOR_LEASE_REAPER_H_
#define SSLSWEEP_COORDINATOR_LEASE_REAPER_H_

#include <cstdint>
#include <ostream>
#include <thread>

#include "absl/synchronization/notification.h"
#include "coordinator/coordinator.h"

namespace sslsweep {

class LeaseReaper {
 public:
  // Checks every lease_ms / 10 (between 100 ms and 1 s). `coordinator` and
  // `log` must outlive the reaper.
  LeaseReaper(Coordinator* coordinator, int64_t lease_ms, std::ostream* log);
  // Stops the thread and waits for it.
  ~LeaseReaper();
  LeaseReaper(const LeaseReaper&) = delete;
  LeaseReaper& operator=(const LeaseReaper&) = delete;

 private:
  void Loop();

  Coordinator* const coordinator_;
  const int64_t interval_ms_;
  std::ostream* const log_;
  absl::Notification stopping_;
  std::thread thread_;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_LEASE_REAPER_H_
