#include "coordinator/coordinator.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "coordinator/request_fields.h"
#include "coordinator/sweep_spec.h"

namespace sslsweep {
namespace {

constexpr size_t kMaxReasonBytes = 4096;
constexpr int kMaxMetricsPerReport = 100'000;

// Metric names are `<metric>/<target>/<layer>` (or `loss/<term>`): printable
// ASCII without spaces, so they stay usable as column names and in globs.
absl::Status CheckMetricName(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics.name: expected 1 to ", kMaxNameBytes, " bytes, got ", name.size()));
  }
  for (unsigned char c : name) {
    if (c <= ' ' || c >= 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metrics.name: '", name, "' has a character outside printable ASCII"));
    }
  }
  return absl::OkStatus();
}

void FillSummary(const SweepRecord& sweep, v1::SweepSummary* out) {
  out->set_sweep_id(sweep.id);
  out->set_name(sweep.name);
  out->set_state(ToProto(sweep.state));
  out->set_created_at_ms(sweep.created_at_ms);
  out->set_trials_total(sweep.trials_total);
  const auto count = [&](TrialState s) { return sweep.trial_counts[static_cast<int>(s)]; };
  out->set_trials_pending(count(TrialState::kPending));
  out->set_trials_running(count(TrialState::kRunning));
  out->set_trials_succeeded(count(TrialState::kSucceeded));
  out->set_trials_failed(count(TrialState::kFailed));
  out->set_trials_cancelled(count(TrialState::kCancelled));
  out->set_trials_pruned(count(TrialState::kPruned));
  out->set_priority(sweep.priority);
  out->set_max_concurrent(sweep.max_concurrent);
  out->set_max_attempts(sweep.max_attempts);
  out->set_metric_name(sweep.metric_name);
}

FailureKind FromProto(v1::FailureKind kind) {
  switch (kind) {
    case v1::FAILURE_DIVERGED: return FailureKind::kDiverged;
    case v1::FAILURE_CONFIG: return FailureKind::kConfig;
    case v1::FAILURE_RELEASED: return FailureKind::kReleased;
    case v1::FAILURE_PEER_LOST: return FailureKind::kPeerLost;
    default: return FailureKind::kCrash;
  }
}

}  // namespace

v1::TrialState ToProto(TrialState state) {
  switch (state) {
    case TrialState::kPending: return v1::TRIAL_PENDING;
    case TrialState::kRunning: return v1::TRIAL_RUNNING;
    case TrialState::kSucceeded: return v1::TRIAL_SUCCEEDED;
    case TrialState::kFailed: return v1::TRIAL_FAILED;
    case TrialState::kCancelled: return v1::TRIAL_CANCELLED;
    case TrialState::kPruned: return v1::TRIAL_PRUNED;
  }
  return v1::TRIAL_STATE_UNSPECIFIED;
}

v1::SweepState ToProto(SweepState state) {
  switch (state) {
    case SweepState::kRunning: return v1::SWEEP_RUNNING;
    case SweepState::kFinished: return v1::SWEEP_FINISHED;
    case SweepState::kCancelled: return v1::SWEEP_CANCELLED;
  }
  return v1::SWEEP_STATE_UNSPECIFIED;
}

Coordinator::Coordinator(Store* store, CheckpointFiles* checkpoints, Clock* clock,
                         CoordinatorOptions options)
    : store_(store), checkpoints_(checkpoints), clock_(clock), options_(options) {}

absl::Status Coordinator::Recover() {
  absl::StatusOr<int32_t> renewed = store_->RenewAllLeases(clock_->NowMs() + options_.lease_ms);
  if (!renewed.ok()) return renewed.status();
  changes_.Notify();
  for (int64_t trial_id : checkpoints_->TrialIds()) {
    absl::StatusOr<TrialRecord> trial = store_->GetTrial(trial_id);
    if (!trial.ok() && !absl::IsNotFound(trial.status())) return trial.status();
    const bool keep = trial.ok() && !TrialEnded(trial->state);
    checkpoints_->RemoveAllBut(trial_id, keep ? trial->checkpoint_epoch : -1);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ExpiredLease>> Coordinator::ExpireLeases() {
  absl::StatusOr<std::vector<ExpiredLease>> expired =
      store_->ExpireLeases(clock_->NowMs(), options_.failure_policy);
  if (!expired.ok()) return expired.status();
  if (!expired->empty()) changes_.Notify();
  for (const ExpiredLease& lease : *expired) {
    if (!lease.requeued) checkpoints_->RemoveAllBut(lease.trial_id, -1);
  }
  return expired;
}

absl::StatusOr<v1::SubmitSweepResponse> Coordinator::SubmitSweep(
    const v1::SubmitSweepRequest& request) {
  const std::string source =
      request.source_name().empty() ? "<sweep>" : request.source_name();
  if (request.yaml().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": the sweep is empty"));
  }
  if (request.yaml().size() > options_.max_sweep_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": the sweep is ", request.yaml().size(),
                     " bytes; the limit is ", options_.max_sweep_bytes));
  }
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(request.yaml(), source);
  if (!spec.ok()) return spec.status();
  absl::StatusOr<std::vector<ExpandedTrial>> expanded = ExpandSweep(*spec);
  if (!expanded.ok()) return expanded.status();

  if (request.dry_run()) {
    v1::SubmitSweepResponse response;
    response.set_trial_count(static_cast<int32_t>(expanded->size()));
    for (const std::string& w : spec->warnings) response.add_warnings(w);
    for (const ExpandedTrial& t : *expanded) {
      v1::PlannedTrial* planned = response.add_trials();
      planned->set_index(t.index);
      planned->set_epochs(t.epochs);
      planned->set_ranks(spec->ranks);
      for (const auto& [path, value] : t.params) {
        v1::Param* param = planned->add_params();
        param->set_path(path);
        param->set_value(value);
      }
    }
    return response;
  }

  NewSweep sweep;
  sweep.name = spec->name;
  sweep.source_yaml = request.yaml();
  sweep.metric_name = spec->metric.name;
  sweep.metric_goal = spec->metric.goal;
  sweep.max_attempts = spec->max_attempts;
  sweep.max_concurrent = spec->max_concurrent;
  sweep.priority = spec->priority;
  std::vector<NewTrial> trials;
  trials.reserve(expanded->size());
  for (ExpandedTrial& t : *expanded) {
    NewTrial trial;
    trial.index = t.index;
    trial.config_yaml = std::move(t.config_yaml);
    trial.epochs = t.epochs;
    trial.ranks = spec->ranks;
    for (auto& [path, value] : t.params) trial.params.push_back({path, value});
    trials.push_back(std::move(trial));
  }
  absl::StatusOr<int64_t> id = store_->CreateSweep(sweep, trials, clock_->NowMs());
  if (!id.ok()) return id.status();
  changes_.Notify();

  v1::SubmitSweepResponse response;
  response.set_sweep_id(*id);
  response.set_trial_count(static_cast<int32_t>(trials.size()));
  for (const std::string& w : spec->warnings) response.add_warnings(w);
  return response;
}

absl::StatusOr<v1::ListSweepsResponse> Coordinator::ListSweeps(
    const v1::ListSweepsRequest&) {
  absl::StatusOr<std::vector<SweepRecord>> sweeps = store_->ListSweeps();
  if (!sweeps.ok()) return sweeps.status();
  v1::ListSweepsResponse response;
  for (const SweepRecord& s : *sweeps) FillSummary(s, response.add_sweeps());
  return response;
}

absl::StatusOr<v1::GetSweepStatusResponse> Coordinator::GetSweepStatus(
    const v1::GetSweepStatusRequest& request) {
  if (auto s = CheckPositiveId("sweep_id", request.sweep_id()); !s.ok()) return s;
  absl::StatusOr<SweepRecord> sweep = store_->GetSweep(request.sweep_id());
  if (!sweep.ok()) return sweep.status();
  absl::StatusOr<std::vector<TrialRecord>> trials = store_->ListTrials(request.sweep_id());
  if (!trials.ok()) return trials.status();
  absl::StatusOr<std::vector<TrialProgress>> progress = store_->SweepProgress(request.sweep_id());
  if (!progress.ok()) return progress.status();
  std::map<int64_t, const TrialProgress*> progress_of;
  for (const TrialProgress& p : *progress) progress_of[p.trial_id] = &p;

  v1::GetSweepStatusResponse response;
  FillSummary(*sweep, response.mutable_sweep());
  for (const TrialRecord& t : *trials) {
    v1::TrialStatus* out = response.add_trials();
    out->set_trial_id(t.id);
    out->set_index(t.index);
    out->set_state(ToProto(t.state));
    out->set_attempt(t.attempt);
    out->set_worker_id(t.worker_id);
    out->set_epoch(t.last_epoch);
    out->set_epochs_total(t.epochs);
    out->set_failure_reason(t.failure_reason);
    out->set_failures(t.failures);
    // An ended trial's checkpoint is deleted: nothing will resume from it.
    out->set_checkpoint_epoch(TrialEnded(t.state) ? -1 : t.checkpoint_epoch);
    out->set_ranks(t.ranks);
    for (const std::string& w : t.rank_workers) out->add_rank_worker_ids(w);
    out->set_metric_value(NAN);
    out->set_eta_seconds(-1);
    if (auto it = progress_of.find(t.id); it != progress_of.end()) {
      const TrialProgress& p = *it->second;
      out->set_started_at_ms(p.started_at_ms);
      out->set_ended_at_ms(p.ended_at_ms);
      if (p.metric_value.has_value()) out->set_metric_value(*p.metric_value);
      if (t.state == TrialState::kRunning && p.epoch_seconds.has_value()) {
        out->set_eta_seconds(*p.epoch_seconds * std::max(0, t.epochs - std::max(t.last_epoch, 0)));
      }
    }
    for (const ParamValue& p : t.params) {
      v1::Param* param = out->add_params();
      param->set_path(p.path);
      param->set_value(p.value);
    }
  }
  return response;
}

absl::StatusOr<v1::CancelSweepResponse> Coordinator::CancelSweep(
    const v1::CancelSweepRequest& request) {
  if (auto s = CheckPositiveId("sweep_id", request.sweep_id()); !s.ok()) return s;
  absl::StatusOr<int32_t> cancelled =
      store_->CancelSweep(request.sweep_id(), clock_->NowMs());
  if (!cancelled.ok()) return cancelled.status();
  changes_.Notify();
  // Their checkpoints will not be resumed from.
  if (*cancelled > 0) {
    absl::StatusOr<std::vector<TrialRecord>> trials = store_->ListTrials(request.sweep_id());
    if (!trials.ok()) return trials.status();
    for (const TrialRecord& t : *trials) checkpoints_->RemoveAllBut(t.id, -1);
  }
  v1::CancelSweepResponse response;
  response.set_trials_cancelled(*cancelled);
  return response;
}

absl::StatusOr<v1::CancelTrialResponse> Coordinator::CancelTrial(
    const v1::CancelTrialRequest& request) {
  if (auto s = CheckPositiveId("trial_id", request.trial_id()); !s.ok()) return s;
  absl::StatusOr<bool> cancelled = store_->CancelTrial(request.trial_id(), clock_->NowMs());
  if (!cancelled.ok()) return cancelled.status();
  changes_.Notify();
  if (*cancelled) checkpoints_->RemoveAllBut(request.trial_id(), -1);
  v1::CancelTrialResponse response;
  response.set_cancelled(*cancelled);
  return response;
}

absl::StatusOr<v1::GetResultsResponse> Coordinator::GetResults(
    const v1::GetResultsRequest& request) {
  if (auto s = CheckPositiveId("sweep_id", request.sweep_id()); !s.ok()) return s;
  absl::StatusOr<std::vector<TrialRecord>> trials = store_->ListTrials(request.sweep_id());
  if (!trials.ok()) return trials.status();
  absl::StatusOr<std::vector<EpochMetrics>> finals = store_->FinalMetrics(request.sweep_id());
  if (!finals.ok()) return finals.status();

  // Columns: the swept parameters in declaration order, then every metric
  // name seen at any trial's final epoch, sorted.
  v1::GetResultsResponse response;
  std::vector<std::string> param_columns;
  for (const TrialRecord& t : *trials) {
    for (const ParamValue& p : t.params) {
      if (std::find(param_columns.begin(), param_columns.end(), p.path) ==
          param_columns.end()) {
        param_columns.push_back(p.path);
      }
    }
  }
  std::set<std::string> metric_names;
  std::map<int64_t, const EpochMetrics*> final_by_trial;
  for (const EpochMetrics& e : *finals) {
    final_by_trial[e.trial_id] = &e;
    for (const MetricValue& m : e.metrics) metric_names.insert(m.name);
  }
  for (const std::string& p : param_columns) response.add_param_columns(p);
  for (const std::string& m : metric_names) response.add_metric_columns(m);

  for (const TrialRecord& t : *trials) {
    v1::ResultRow* row = response.add_rows();
    row->set_trial_id(t.id);
    row->set_state(ToProto(t.state));
    std::map<std::string, std::string> params;
    for (const ParamValue& p : t.params) params[p.path] = p.value;
    for (const std::string& column : param_columns) row->add_params(params[column]);
    std::map<std::string, double> values;
    row->set_epoch(-1);
    if (auto it = final_by_trial.find(t.id); it != final_by_trial.end()) {
      row->set_epoch(it->second->epoch);
      for (const MetricValue& m : it->second->metrics) values[m.name] = m.value;
    }
    for (const std::string& name : metric_names) {
      auto it = values.find(name);
      row->add_metrics(it == values.end() ? NAN : it->second);
    }
  }
  return response;
}

absl::StatusOr<v1::ListWorkersResponse> Coordinator::ListWorkers(
    const v1::ListWorkersRequest&) {
  absl::StatusOr<std::vector<WorkerRecord>> workers = store_->ListWorkers();
  if (!workers.ok()) return workers.status();
  const int64_t now = clock_->NowMs();
  v1::ListWorkersResponse response;
  for (const WorkerRecord& w : *workers) {
    v1::WorkerInfo* out = response.add_workers();
    out->set_worker_id(w.id);
    out->set_hostname(w.hostname);
    out->set_pid(w.pid);
    out->set_last_heartbeat_ms(w.last_heartbeat_ms);
    for (int64_t id : w.running_trial_ids) out->add_running_trial_ids(id);
    out->set_consecutive_failures(w.consecutive_failures);
    out->set_quarantine_reason(w.quarantine_reason);
    if (w.quarantined) {
      out->set_state(v1::WORKER_QUARANTINED);
    } else if (now - w.last_heartbeat_ms > options_.lease_ms) {
      out->set_state(v1::WORKER_LOST);
    } else {
      out->set_state(v1::WORKER_ALIVE);
    }
  }
  return response;
}

absl::StatusOr<v1::UnquarantineWorkerResponse> Coordinator::UnquarantineWorker(
    const v1::UnquarantineWorkerRequest& request) {
  if (auto s = CheckWorkerId(request.worker_id()); !s.ok()) return s;
  if (auto s = store_->UnquarantineWorker(request.worker_id()); !s.ok()) return s;
  return v1::UnquarantineWorkerResponse();
}

absl::StatusOr<v1::RegisterWorkerResponse> Coordinator::RegisterWorker(
    const v1::RegisterWorkerRequest& request) {
  if (auto s = CheckHostName("hostname", request.hostname()); !s.ok()) return s;
  absl::StatusOr<std::string> id =
      store_->RegisterWorker(request.hostname(), request.pid(), clock_->NowMs());
  if (!id.ok()) return id.status();
  v1::RegisterWorkerResponse response;
  response.set_worker_id(*id);
  response.set_heartbeat_interval_ms(options_.heartbeat_interval_ms);
  return response;
}

absl::StatusOr<v1::HeartbeatResponse> Coordinator::Heartbeat(
    const v1::HeartbeatRequest& request) {
  if (auto s = CheckWorkerId(request.worker_id()); !s.ok()) return s;
  absl::StatusOr<HeartbeatOutcome> outcome =
      store_->Heartbeat(request.worker_id(), clock_->NowMs(), options_.lease_ms);
  if (!outcome.ok()) return outcome.status();
  // A trial the worker runs that the store no longer gives it (cancelled,
  // pruned, or leased again after this worker's lease expired) must stop.
  const std::set<int64_t> held(outcome->running_trial_ids.begin(),
                               outcome->running_trial_ids.end());
  v1::HeartbeatResponse response;
  for (int64_t id : request.running_trial_ids()) {
    if (held.count(id) == 0) response.add_stop_trial_ids(id);
  }
  response.set_quarantined(outcome->quarantined);
  return response;
}

absl::StatusOr<v1::LeaseTrialResponse> Coordinator::LeaseTrial(
    const v1::LeaseTrialRequest& request) {
  if (auto s = CheckWorkerId(request.worker_id()); !s.ok()) return s;
  absl::StatusOr<std::optional<TrialRecord>> trial = store_->LeaseNextTrial(
      request.worker_id(), clock_->NowMs(), options_.lease_ms, options_.gang_idle_window_ms);
  v1::LeaseTrialResponse response;
  // The store refuses a quarantined worker with FailedPrecondition: not an
  // error of the call, an answer ("no trials for you, and why").
  if (absl::IsFailedPrecondition(trial.status())) {
    response.set_granted(false);
    response.set_refused_reason(std::string(trial.status().message()));
    response.set_retry_after_ms(options_.quarantined_retry_ms);
    return response;
  }
  if (!trial.ok()) return trial.status();
  if (!trial->has_value()) {
    absl::StatusOr<bool> pending = store_->HasUnfinishedTrials();
    if (!pending.ok()) return pending.status();
    response.set_granted(false);
    response.set_retry_after_ms(options_.idle_retry_ms);
    response.set_trials_pending(*pending);
    return response;
  }
  changes_.Notify();
  const TrialRecord& t = **trial;
  response.set_granted(true);
  v1::TrialAssignment* a = response.mutable_trial();
  a->set_trial_id(t.id);
  a->set_attempt(t.attempt);
  a->set_sweep_id(t.sweep_id);
  a->set_config_yaml(t.config_yaml);
  a->set_epochs(t.epochs);
  a->set_checkpoint_epoch(t.checkpoint_epoch);
  a->set_world_size(t.ranks);
  const auto rank = std::find(t.rank_workers.begin(), t.rank_workers.end(), request.worker_id());
  if (rank == t.rank_workers.end()) {
    return absl::InternalError(absl::StrCat("trial ", t.id, " was leased to ",
                                            request.worker_id(), " without a rank"));
  }
  a->set_rank(static_cast<int32_t>(rank - t.rank_workers.begin()));
  return response;
}

absl::StatusOr<v1::ReportRendezvousResponse> Coordinator::ReportRendezvous(
    const v1::ReportRendezvousRequest& request) {
  if (auto s = CheckAttemptFields(request.worker_id(), request.trial_id(), request.attempt());
      !s.ok()) {
    return s;
  }
  const v1::Rendezvous& point = request.rendezvous();
  if (auto s = CheckHostName("rendezvous.master_address", point.master_address()); !s.ok()) {
    return s;
  }
  if (point.master_port() < 1 || point.master_port() > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rendezvous.master_port: expected 1 to 65535, got ", point.master_port()));
  }
  if (auto s = store_->RecordRendezvous(request.worker_id(), request.trial_id(),
                                        request.attempt(),
                                        RendezvousPoint{point.master_address(),
                                                        point.master_port()});
      !s.ok()) {
    return s;
  }
  return v1::ReportRendezvousResponse();
}

absl::StatusOr<v1::GetRendezvousResponse> Coordinator::GetRendezvous(
    const v1::GetRendezvousRequest& request) {
  if (auto s = CheckAttemptFields(request.worker_id(), request.trial_id(), request.attempt());
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::optional<RendezvousPoint>> point =
      store_->GetRendezvous(request.worker_id(), request.trial_id(), request.attempt());
  if (!point.ok()) return point.status();
  v1::GetRendezvousResponse response;
  if (!point->has_value()) {
    response.set_retry_after_ms(options_.rendezvous_retry_ms);
    return response;
  }
  response.set_ready(true);
  response.mutable_rendezvous()->set_master_address((*point)->master_address);
  response.mutable_rendezvous()->set_master_port((*point)->master_port);
  return response;
}


absl::StatusOr<v1::ReportMetricsResponse> Coordinator::ReportMetrics(
    const v1::ReportMetricsRequest& request) {
  if (auto s = CheckAttemptFields(request.worker_id(), request.trial_id(), request.attempt());
      !s.ok()) {
    return s;
  }
  if (request.epoch() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("epoch: expected >= 0, got ", request.epoch()));
  }
  if (request.metrics_size() == 0 || request.metrics_size() > kMaxMetricsPerReport) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics: expected 1 to ", kMaxMetricsPerReport, " values, got ",
        request.metrics_size()));
  }
  std::vector<MetricValue> metrics;
  metrics.reserve(request.metrics_size());
  std::set<std::string> seen;
  for (const v1::Metric& m : request.metrics()) {
    if (auto s = CheckMetricName(m.name()); !s.ok()) return s;
    if (!std::isfinite(m.value())) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics.value: '", m.name(), "' is not finite"));
    }
    if (!seen.insert(m.name()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics.name: '", m.name(), "' appears twice"));
    }
    metrics.push_back({m.name(), m.value()});
  }
  absl::StatusOr<RecordedMetrics> recorded = store_->RecordMetrics(
      request.worker_id(), request.trial_id(), request.attempt(), request.epoch(), metrics);
  if (!recorded.ok()) return recorded.status();
  changes_.Notify();
  v1::ReportMetricsResponse response;
  response.set_rows_written(recorded->rows_written);
  absl::StatusOr<std::optional<std::string>> stop = ApplyEarlyTermination(
      recorded->sweep_id, request.trial_id(), request.epoch(), metrics);
  if (!stop.ok()) return stop.status();
  if (stop->has_value()) {
    response.set_stop(true);
    response.set_stop_reason(**stop);
  }
  return response;
}

absl::StatusOr<v1::FinishTrialResponse> Coordinator::FinishTrial(
    const v1::FinishTrialRequest& request) {
  if (auto s = CheckAttemptFields(request.worker_id(), request.trial_id(), request.attempt());
      !s.ok()) {
    return s;
  }
  if (auto s = store_->FinishTrial(request.worker_id(), request.trial_id(), request.attempt(),
                                   clock_->NowMs());
      !s.ok()) {
    return s;
  }
  changes_.Notify();
  checkpoints_->RemoveAllBut(request.trial_id(), -1);
  return v1::FinishTrialResponse();
}

absl::StatusOr<v1::FailTrialResponse> Coordinator::FailTrial(
    const v1::FailTrialRequest& request) {
  if (auto s = CheckAttemptFields(request.worker_id(), request.trial_id(), request.attempt());
      !s.ok()) {
    return s;
  }
  std::string reason = request.reason().substr(0, kMaxReasonBytes);
  if (reason.empty()) reason = "no reason given";
  absl::StatusOr<FailOutcome> outcome = store_->FailTrial(
      request.worker_id(), request.trial_id(), request.attempt(), FromProto(request.kind()),
      reason, clock_->NowMs(), options_.failure_policy);
  if (!outcome.ok()) return outcome.status();
  changes_.Notify();
  if (!outcome->requeued) checkpoints_->RemoveAllBut(request.trial_id(), -1);
  v1::FailTrialResponse response;
  response.set_will_retry(outcome->requeued);
  return response;
}

}  // namespace sslsweep
