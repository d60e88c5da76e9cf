// Coordinator: the live view of a sweep (WatchSweep; see coordinator.h).
// Each look reads the sweep's status as GetSweepStatus does; SweepWatch
// turns the looks into events.

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "coordinator/coordinator.h"
#include "coordinator/request_fields.h"
#include "coordinator/sweep_watch.h"

namespace sslsweep {

absl::Status Coordinator::WatchSweep(const v1::WatchSweepRequest& request,
                                     absl::FunctionRef<absl::Status()> still_open,
                                     absl::FunctionRef<bool(const v1::SweepEvent&)> emit) {
  if (auto s = CheckPositiveId("sweep_id", request.sweep_id()); !s.ok()) return s;
  v1::GetSweepStatusRequest look;
  look.set_sweep_id(request.sweep_id());
  // Read before the look: a change committed during it wakes the next wait.
  uint64_t seen = changes_.generation();
  absl::StatusOr<v1::GetSweepStatusResponse> status = GetSweepStatus(look);
  if (!status.ok()) return status.status();
  const std::string metric = status->sweep().metric_name();
  SweepWatch watch(SweepWatch::Lookups{
      [this](int64_t trial_id, int32_t attempt) {
        return store_->GetAttemptEnd(trial_id, attempt);
      },
      [this, metric](int64_t trial_id, int32_t after_epoch) {
        return store_->EpochsAfter(trial_id, after_epoch, metric);
      }});
  const auto send = [&](const std::vector<v1::SweepEvent>& events) -> absl::Status {
    for (const v1::SweepEvent& event : events) {
      if (!emit(event)) {
        return absl::CancelledError(
            absl::StrCat("watch of sweep ", request.sweep_id(), ": the watcher went away"));
      }
    }
    return absl::OkStatus();
  };
  if (auto s = send(watch.Start(*status, clock_->NowMs())); !s.ok()) return s;
  absl::Time looked = absl::Now();
  while (!watch.ended()) {
    seen = changes_.WaitForChange(seen, absl::Milliseconds(options_.watch_poll_ms));
    if (auto s = still_open(); !s.ok()) return s;
    const absl::Duration since = absl::Now() - looked;
    if (since < absl::Milliseconds(options_.watch_min_interval_ms)) {
      absl::SleepFor(absl::Milliseconds(options_.watch_min_interval_ms) - since);
      if (auto s = still_open(); !s.ok()) return s;
    }
    looked = absl::Now();
    status = GetSweepStatus(look);
    if (!status.ok()) return status.status();
    absl::StatusOr<std::vector<v1::SweepEvent>> events = watch.Update(*status, clock_->NowMs());
    if (!events.ok()) return events.status();
    if (auto s = send(*events); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace sslsweep
