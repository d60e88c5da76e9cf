#include "coordinator/sweep_watch.h"

#include <cmath>
#include <string>
#include <utility>

namespace sslsweep {
namespace {

bool Ended(v1::TrialState state) {
  return state != v1::TRIAL_PENDING && state != v1::TRIAL_RUNNING;
}

v1::SweepEvent Stamped(int64_t now_ms) {
  v1::SweepEvent event;
  event.set_time_ms(now_ms);
  return event;
}

v1::SweepEvent SweepEndedEvent(const v1::SweepSummary& sweep, int64_t now_ms) {
  v1::SweepEvent event = Stamped(now_ms);
  *event.mutable_sweep_ended()->mutable_sweep() = sweep;
  return event;
}

}  // namespace

std::vector<v1::SweepEvent> SweepWatch::Start(const v1::GetSweepStatusResponse& status,
                                              int64_t now_ms) {
  std::vector<v1::SweepEvent> events;
  v1::SweepEvent snapshot = Stamped(now_ms);
  *snapshot.mutable_snapshot()->mutable_sweep() = status.sweep();
  *snapshot.mutable_snapshot()->mutable_trials() = status.trials();
  events.push_back(std::move(snapshot));
  for (const v1::TrialStatus& trial : status.trials()) {
    Told& told = told_[trial.trial_id()];
    told.state = trial.state();
    told.started_attempt = trial.attempt();
    // A running attempt has not ended; a pending trial's attempt (if any)
    // ended and went back to the queue; an ended trial's ended with it.
    told.ended_attempt = trial.state() == v1::TRIAL_RUNNING ? trial.attempt() - 1 : trial.attempt();
    told.epoch = trial.epoch();
  }
  if (status.sweep().state() != v1::SWEEP_RUNNING) {
    events.push_back(SweepEndedEvent(status.sweep(), now_ms));
    ended_ = true;
  }
  return events;
}

absl::StatusOr<std::vector<v1::SweepEvent>> SweepWatch::Update(
    const v1::GetSweepStatusResponse& status, int64_t now_ms) {
  std::vector<v1::SweepEvent> events;
  if (ended_) return events;
  for (const v1::TrialStatus& trial : status.trials()) {
    Told& told = told_[trial.trial_id()];
    if (Ended(told.state)) continue;  // an ended trial never changes again
    const int32_t attempt = trial.attempt();
    const v1::TrialState state = trial.state();

    // Every attempt before the current one ended; so did a pending trial's.
    const int32_t requeued_through = state == v1::TRIAL_PENDING ? attempt : attempt - 1;
    for (int32_t a = told.ended_attempt + 1; a <= requeued_through; ++a) {
      absl::StatusOr<AttemptEnd> end = lookups_.attempt_end(trial.trial_id(), a);
      if (!end.ok()) return end.status();
      v1::SweepEvent event = Stamped(now_ms);
      v1::AttemptRequeued* requeued = event.mutable_attempt_requeued();
      requeued->set_trial_id(trial.trial_id());
      requeued->set_attempt(a);
      requeued->set_outcome(end->outcome);
      requeued->set_reason(end->reason);
      requeued->set_failures(trial.failures());
      requeued->set_max_attempts(status.sweep().max_attempts());
      events.push_back(std::move(event));
      told.ended_attempt = a;
      if (told.started_attempt < a) told.started_attempt = a;
    }

    if (state == v1::TRIAL_RUNNING && attempt > told.started_attempt) {
      v1::SweepEvent event = Stamped(now_ms);
      v1::TrialStarted* started = event.mutable_trial_started();
      started->set_trial_id(trial.trial_id());
      started->set_attempt(attempt);
      if (trial.rank_worker_ids_size() > 0) {
        *started->mutable_worker_ids() = trial.rank_worker_ids();
      } else {
        started->add_worker_ids(trial.worker_id());
      }
      started->set_resume_epoch(trial.checkpoint_epoch());
      events.push_back(std::move(event));
      told.started_attempt = attempt;
    }

    if (trial.epoch() > told.epoch) {
      absl::StatusOr<std::vector<EpochValue>> epochs =
          lookups_.epochs_after(trial.trial_id(), told.epoch);
      if (!epochs.ok()) return epochs.status();
      for (const EpochValue& e : *epochs) {
        if (e.epoch > trial.epoch()) break;  // stored after the status was read
        v1::SweepEvent event = Stamped(now_ms);
        v1::EpochReported* reported = event.mutable_epoch_reported();
        reported->set_trial_id(trial.trial_id());
        reported->set_epoch(e.epoch);
        reported->set_epochs_total(trial.epochs_total());
        reported->set_metric_value(e.value.value_or(NAN));
        reported->set_eta_seconds(e.epoch == trial.epoch() ? trial.eta_seconds() : -1);
        events.push_back(std::move(event));
      }
      told.epoch = trial.epoch();
    }

    if (Ended(state)) {
      v1::SweepEvent event = Stamped(now_ms);
      v1::TrialEnded* end = event.mutable_trial_ended();
      end->set_trial_id(trial.trial_id());
      end->set_state(state);
      end->set_epoch(trial.epoch());
      end->set_metric_value(trial.metric_value());
      end->set_reason(trial.failure_reason());
      events.push_back(std::move(event));
      told.ended_attempt = attempt;
    }
    told.state = state;
  }
  if (status.sweep().state() != v1::SWEEP_RUNNING) {
    events.push_back(SweepEndedEvent(status.sweep(), now_ms));
    ended_ = true;
  }
  return events;
}

}  // namespace sslsweep
