#include "worker/agent/coordinator_connection.h"

#include <algorithm>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace sslsweep {

std::shared_ptr<grpc::Channel> MakeCoordinatorChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // Despite its name, gRPC's C core reads this as the time a connection
  // attempt (TCP and HTTP/2 handshakes) gets before it is abandoned, not as
  // a back-off floor (the default is 20 s). At 100 ms a coordinator busy
  // restarting on a loaded machine may never be reached ("tcp handshaker
  // shutdown"); a refused connection fails at once whatever it is.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 2000);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  // grpc::StatusCode and absl::StatusCode share their numbering.
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

bool IsTransient(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted:
      return true;
    default:
      return false;
  }
}

bool IsStaleAttempt(const absl::Status& status) {
  return status.code() == absl::StatusCode::kFailedPrecondition ||
         status.code() == absl::StatusCode::kNotFound;
}

void PrepareCall(grpc::ClientContext* context, absl::Time deadline) {
  context->set_wait_for_ready(true);
  if (deadline != absl::InfiniteFuture()) context->set_deadline(absl::ToChronoTime(deadline));
}

absl::Status CallWithRetry(const BackoffOptions& backoff, absl::FunctionRef<absl::Status()> call,
                           absl::FunctionRef<bool(absl::Duration)> sleep) {
  absl::Duration delay = backoff.initial;
  while (true) {
    absl::Status status = call();
    if (!IsTransient(status) || !sleep(delay)) return status;
    delay = std::min(delay * 2, backoff.max);
  }
}

}  // namespace sslsweep
