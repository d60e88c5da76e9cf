// Coordinator: early termination (hyperband), apart from the scheduling
// logic in coordinator.cc: each sweep's state rebuilt from the store on
// first use, and the pruning of the running trials it stops.

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/coordinator.h"
#include "coordinator/sweep_spec.h"

namespace sslsweep {

absl::StatusOr<Coordinator::EarlyTermination*> Coordinator::LoadEarlyTermination(
    int64_t sweep_id) {
  auto it = hyperband_.find(sweep_id);
  if (it != hyperband_.end()) return &it->second;
  absl::StatusOr<SweepRecord> sweep = store_->GetSweep(sweep_id);
  if (!sweep.ok()) return sweep.status();
  // The sweep was validated when it was submitted; parse it again for its
  // early_terminate section rather than keep a second copy of it.
  absl::StatusOr<SweepSpec> spec =
      ParseSweepSpec(sweep->source_yaml, absl::StrCat("sweep ", sweep_id));
  if (!spec.ok()) return spec.status();
  EarlyTermination& entry = hyperband_[sweep_id];
  if (!spec->early_terminate.has_value() || spec->metric.name.empty()) return &entry;
  entry.metric = spec->metric.name;
  entry.state = std::make_unique<HyperbandState>(*spec->early_terminate, spec->metric.name,
                                                 spec->metric.goal);
  absl::StatusOr<std::vector<MetricHistory>> histories =
      store_->MetricHistories(sweep_id, spec->metric.name);
  if (!histories.ok()) {
    hyperband_.erase(sweep_id);
    return histories.status();
  }
  for (const MetricHistory& history : *histories) {
    if (TrialEnded(history.state)) entry.ended.insert(history.trial_id);
    for (const auto& [epoch, value] : history.values) {
      entry.state->Record(history.trial_id, epoch, value);
    }
  }
  return &entry;
}

absl::StatusOr<std::optional<std::string>> Coordinator::ApplyEarlyTermination(
    int64_t sweep_id, int64_t trial_id, int32_t epoch, const std::vector<MetricValue>& metrics) {
  absl::MutexLock lock(&hyperband_mu_);
  absl::StatusOr<EarlyTermination*> loaded = LoadEarlyTermination(sweep_id);
  if (!loaded.ok()) return loaded.status();
  EarlyTermination& et = **loaded;
  if (et.state == nullptr) return std::optional<std::string>();
  auto metric = std::find_if(metrics.begin(), metrics.end(),
                             [&](const MetricValue& m) { return m.name == et.metric; });
  if (metric == metrics.end()) return std::optional<std::string>();
  et.state->Record(trial_id, epoch, metric->value);

  // New values move the bands' thresholds, so any running trial of the
  // sweep may have to stop now, not only the one that reported.
  std::vector<int64_t> candidates;
  for (int64_t id : et.state->TrialIds()) {
    if (et.ended.count(id) == 0) candidates.push_back(id);
  }
  std::optional<std::string> own_stop;
  for (const HyperbandStop& stop : et.state->TrialsToStop(candidates)) {
    absl::StatusOr<TrialRecord> trial = store_->GetTrial(stop.trial_id);
    if (!trial.ok()) return trial.status();
    if (TrialEnded(trial->state)) {
      et.ended.insert(stop.trial_id);
      continue;
    }
    if (trial->state != TrialState::kRunning) continue;  // pruned once it runs and reports
    absl::Status pruned =
        store_->PruneTrial(stop.trial_id, trial->attempt, stop.reason, clock_->NowMs());
    // Ended meanwhile (finished, failed, cancelled): nothing to stop.
    if (absl::IsFailedPrecondition(pruned)) continue;
    if (!pruned.ok()) return pruned;
    changes_.Notify();
    et.ended.insert(stop.trial_id);
    checkpoints_->RemoveAllBut(stop.trial_id, -1);
    if (stop.trial_id == trial_id) own_stop = stop.reason;
  }
  return own_stop;
}

}  // namespace sslsweep
