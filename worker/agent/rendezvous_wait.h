// AwaitRendezvous: how a rank k > 0 of a data-parallel trial waits for rank
// 0's rendezvous (the address and port of its c10d store) before it starts
// its trainer: it polls the coordinator (GetRendezvous) until the answer is
// ready, every retry_after_ms of the answer but never more often than
// min_interval, and retries transient failures (coordinator_connection.h)
// with exponential back-off, for at most `timeout` in all.
//
// The call, the sleep and the clock are seams (the agent passes its
// interruptible GetRendezvous call and sleep; tests a fake clock), so this
// knows nothing of gRPC.
//
// Thread contract: runs on the caller's thread, through the caller's seams.

#ifndef SSLSWEEP_WORKER_AGENT_RENDEZVOUS_WAIT_H_
#define SSLSWEEP_WORKER_AGENT_RENDEZVOUS_WAIT_H_

#include <functional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "proto/sslsweep.pb.h"
#include "worker/agent/coordinator_connection.h"

namespace sslsweep {

struct RendezvousWaitOptions {
  absl::Duration timeout = absl::Minutes(5);  // from the first poll
  // The least time between two polls, whatever retry_after_ms says.
  absl::Duration min_interval = absl::Milliseconds(100);
  BackoffOptions backoff;  // between transient failures
  // One GetRendezvous call.
  std::function<absl::Status(v1::GetRendezvousResponse*)> poll;
  // Sleeps `delay`; false if interrupted (the worker or the attempt stops).
  std::function<bool(absl::Duration delay)> sleep;
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

// Polls until the rendezvous is ready and returns it. Errors: Cancelled if
// `sleep` was interrupted (or `poll` answered Cancelled); DeadlineExceeded
// "rank 0 did not report its rendezvous within T s" once `timeout` passed
// with no ready answer (a poll is still made at the limit); InvalidArgument
// if the ready rendezvous names no address or a port outside 1 to 65535;
// any other failure of `poll` that is not transient, as it is (e.g.
// FailedPrecondition or NotFound: the attempt is stale).
absl::StatusOr<v1::Rendezvous> AwaitRendezvous(const RendezvousWaitOptions& options);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_AGENT_RENDEZVOUS_WAIT_H_
