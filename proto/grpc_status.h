// Conversion between grpc::Status and absl::Status, in one place.
//
// The two share the canonical code space, so codes map exactly (a deadline
// stays a deadline, NOT_FOUND stays NOT_FOUND); only the message is carried.

#ifndef SSLSWEEP_PROTO_GRPC_STATUS_H_
#define SSLSWEEP_PROTO_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace sslsweep {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

inline absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

}  // namespace sslsweep

#endif  // SSLSWEEP_PROTO_GRPC_STATUS_H_
