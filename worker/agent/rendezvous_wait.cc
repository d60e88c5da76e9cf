#include "worker/agent/rendezvous_wait.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"

namespace sslsweep {

absl::StatusOr<v1::Rendezvous> AwaitRendezvous(const RendezvousWaitOptions& options) {
  const absl::Time deadline = options.now() + options.timeout;
  absl::Duration backoff = options.backoff.initial;
  while (true) {
    v1::GetRendezvousResponse response;
    const absl::Status status = options.poll(&response);
    absl::Duration delay;
    std::string last_failure;
    if (status.ok()) {
      if (response.ready()) {
        const v1::Rendezvous& rendezvous = response.rendezvous();
        if (rendezvous.master_address().empty() || rendezvous.master_port() < 1 ||
            rendezvous.master_port() > 65535) {
          return absl::InvalidArgumentError(absl::StrCat(
              "the coordinator's rendezvous of rank 0 is not usable: address '",
              rendezvous.master_address(), "', port ", rendezvous.master_port(),
              " (expected a host and a port from 1 to 65535)"));
        }
        return rendezvous;
      }
      delay = std::max(options.min_interval, absl::Milliseconds(response.retry_after_ms()));
      backoff = options.backoff.initial;
    } else if (IsTransient(status)) {
      delay = backoff;
      backoff = std::min(backoff * 2, options.backoff.max);
      last_failure = absl::StrCat(" (the last poll failed: ", status.ToString(), ")");
    } else {
      return status;
    }
    const absl::Time now = options.now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("rank 0 did not report its rendezvous within ",
                       absl::ToDoubleSeconds(options.timeout), " s", last_failure));
    }
    if (!options.sleep(std::min(delay, deadline - now))) {
      return absl::CancelledError("the wait for rank 0's rendezvous was interrupted");
    }
  }
}

}  // namespace sslsweep
