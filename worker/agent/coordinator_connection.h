// The worker's side of the connection to the coordinator: a channel that
// reconnects quickly after a coordinator restart, the one conversion of
// grpc::Status to absl::Status, which failures are worth retrying, and a
// retry loop with exponential back-off.
//
// Thread contract: free functions, thread-safe; CallWithRetry runs on the
// caller's thread and sleeps through the caller's `sleep` function.

#ifndef SSLSWEEP_WORKER_AGENT_COORDINATOR_CONNECTION_H_
#define SSLSWEEP_WORKER_AGENT_COORDINATOR_CONNECTION_H_

#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"

namespace sslsweep {

// An insecure channel to `address` whose reconnection back-off runs from
// 100 ms to at most 1 s (gRPC's default grows to 120 s), so that a worker
// finds a restarted coordinator within about a second; each connection
// attempt gets 2 s (see the .cc on GRPC_ARG_MIN_RECONNECT_BACKOFF_MS).
std::shared_ptr<grpc::Channel> MakeCoordinatorChannel(const std::string& address);

// The same code and message; a deadline stays a deadline.
absl::Status FromGrpcStatus(const grpc::Status& status);

// Failures worth retrying: the coordinator restarting, a network blip, load
// shedding, a transaction conflict (Unavailable, DeadlineExceeded,
// ResourceExhausted, Aborted).
bool IsTransient(const absl::Status& status);

// A stale attempt: the coordinator no longer accepts reports of it
// (FailedPrecondition, or NotFound for a trial it does not know).
bool IsStaleAttempt(const absl::Status& status);

// Prepares a call: it waits for the connection (wait_for_ready) until
// `deadline` (absl::InfiniteFuture(): none) instead of failing at once while
// the coordinator is unreachable. The waiting thread also drives the
// reconnection: gRPC's C core makes progress on a connection attempt only
// while some call polls the channel, so calls that fail fast leave a
// restarted coordinator unreached for seconds.
void PrepareCall(grpc::ClientContext* context, absl::Time deadline);

struct BackoffOptions {
  absl::Duration initial = absl::Milliseconds(100);  // doubled after each failure
  absl::Duration max = absl::Seconds(5);
};

// Calls `call` until it returns a status that is not transient, sleeping
// `sleep(d)` between tries with exponential back-off. `sleep` returns false
// to give up, and then CallWithRetry returns the last (transient) status.
absl::Status CallWithRetry(const BackoffOptions& backoff, absl::FunctionRef<absl::Status()> call,
                           absl::FunctionRef<bool(absl::Duration)> sleep);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_AGENT_COORDINATOR_CONNECTION_H_
