// Checks of the request fields that name things (ids, workers, attempts),
// shared by the Coordinator's methods in coordinator.cc and
// coordinator_checkpoints.cc. Each error is InvalidArgument naming the field.

#ifndef SSLSWEEP_COORDINATOR_REQUEST_FIELDS_H_
#define SSLSWEEP_COORDINATOR_REQUEST_FIELDS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace sslsweep {

inline constexpr size_t kMaxNameBytes = 256;

inline absl::Status CheckPositiveId(const char* field, int64_t id) {
  if (id > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, ": expected a positive id, got ", id));
}

inline absl::Status CheckWorkerId(const std::string& worker_id) {
  if (worker_id.empty()) {
    return absl::InvalidArgumentError("worker_id: required; register first");
  }
  if (worker_id.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError("worker_id: longer than 256 bytes");
  }
  return absl::OkStatus();
}

// A host name or address: 1 to 256 bytes of printable ASCII, no spaces
// (hostname of a worker, the address its ranks meet at).
inline absl::Status CheckHostName(const char* field, const std::string& name) {
  if (name.empty() || name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": expected 1 to ", kMaxNameBytes, " bytes, got ", name.size()));
  }
  for (unsigned char c : name) {
    if (c <= ' ' || c >= 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": '", name, "' has a character outside printable ASCII"));
    }
  }
  return absl::OkStatus();
}

// The fields that name an attempt; whether the worker holds it is the
// store's (or HeldAttempt's) to check.
inline absl::Status CheckAttemptFields(const std::string& worker_id, int64_t trial_id,
                                       int32_t attempt) {
  if (auto s = CheckWorkerId(worker_id); !s.ok()) return s;
  if (auto s = CheckPositiveId("trial_id", trial_id); !s.ok()) return s;
  if (attempt < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("attempt: expected a leased attempt (>= 1), got ", attempt));
  }
  return absl::OkStatus();
}

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_REQUEST_FIELDS_H_
