#include "coordinator/coordinator.h"

#include <cmath>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "coordinator/sweep_spec.h"

namespace sslsweep {
namespace {

constexpr size_t kMaxNameBytes = 256;
constexpr size_t kMaxReasonBytes = 4096;
constexpr int kMaxMetricsPerReport = 100'000;

absl::Status CheckPositiveId(const char* field, int64_t id) {
  if (id > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": expected a positive id, got ", id));
}

absl::Status CheckWorkerId(const std::string& worker_id) {
  if (worker_id.empty()) {
    return absl::InvalidArgumentError("worker_id: required; register first");
  }
  if (worker_id.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError("worker_id: longer than 256 bytes");
  }
  return absl::OkStatus();
}

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
}

}  // namespace

v1::TrialState ToProto(TrialState state) {
  switch (state) {
    case TrialState::kPending: return v1::TRIAL_PENDING;
    case TrialState::kRunning: return v1::TRIAL_RUNNING;
    case TrialState::kSucceeded: return v1::TRIAL_SUCCEEDED;
    case TrialState::kFailed: return v1::TRIAL_FAILED;
    case TrialState::kCancelled: return v1::TRIAL_CANCELLED;
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

Coordinator::Coordinator(Store* store, Clock* clock, CoordinatorOptions options)
    : store_(store), clock_(clock), options_(options) {}

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

  NewSweep sweep{spec->name, request.yaml(), spec->metric.name, spec->metric.goal};
  std::vector<NewTrial> trials;
  trials.reserve(expanded->size());
  for (ExpandedTrial& t : *expanded) {
    NewTrial trial;
    trial.index = t.index;
    trial.config_yaml = std::move(t.config_yaml);
    trial.epochs = t.epochs;
    for (auto& [path, value] : t.params) trial.params.push_back({path, value});
    trials.push_back(std::move(trial));
  }
  absl::StatusOr<int64_t> id = store_->CreateSweep(sweep, trials, clock_->NowMs());
  if (!id.ok()) return id.status();

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
  v1::CancelSweepResponse response;
  response.set_trials_cancelled(*cancelled);
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
  v1::ListWorkersResponse response;
  for (const WorkerRecord& w : *workers) {
    v1::WorkerInfo* out = response.add_workers();
    out->set_worker_id(w.id);
    out->set_hostname(w.hostname);
    out->set_last_heartbeat_ms(w.last_heartbeat_ms);
    absl::StatusOr<std::vector<int64_t>> running = store_->RunningTrials(w.id);
    if (!running.ok()) return running.status();
    for (int64_t id : *running) out->add_running_trial_ids(id);
  }
  return response;
}

absl::StatusOr<v1::RegisterWorkerResponse> Coordinator::RegisterWorker(
    const v1::RegisterWorkerRequest& request) {
  if (request.hostname().empty() || request.hostname().size() > kMaxNameBytes) {
    return absl::InvalidArgumentError("hostname: expected 1 to 256 bytes");
  }
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
  if (auto s = store_->Heartbeat(request.worker_id(), clock_->NowMs(), options_.lease_ms);
      !s.ok()) {
    return s;
  }
  // A trial the worker runs that the store no longer gives it (cancelled,
  // or ended) must stop.
  absl::StatusOr<std::vector<int64_t>> running = store_->RunningTrials(request.worker_id());
  if (!running.ok()) return running.status();
  std::set<int64_t> held(running->begin(), running->end());
  v1::HeartbeatResponse response;
  for (int64_t id : request.running_trial_ids()) {
    if (held.count(id) == 0) response.add_stop_trial_ids(id);
  }
  return response;
}

absl::StatusOr<v1::LeaseTrialResponse> Coordinator::LeaseTrial(
    const v1::LeaseTrialRequest& request) {
  if (auto s = CheckWorkerId(request.worker_id()); !s.ok()) return s;
  const int64_t now = clock_->NowMs();
  // Asking for work is a sign of life; it also rejects unknown workers.
  if (auto s = store_->Heartbeat(request.worker_id(), now, options_.lease_ms); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::optional<TrialRecord>> trial =
      store_->LeaseNextTrial(request.worker_id(), now, options_.lease_ms);
  if (!trial.ok()) return trial.status();
  v1::LeaseTrialResponse response;
  if (!trial->has_value()) {
    response.set_granted(false);
    response.set_retry_after_ms(options_.idle_retry_ms);
    return response;
  }
  const TrialRecord& t = **trial;
  response.set_granted(true);
  v1::TrialAssignment* a = response.mutable_trial();
  a->set_trial_id(t.id);
  a->set_attempt(t.attempt);
  a->set_sweep_id(t.sweep_id);
  a->set_config_yaml(t.config_yaml);
  a->set_epochs(t.epochs);
  return response;
}

absl::Status Coordinator::CheckAttempt(const std::string& worker_id, int64_t trial_id,
                                       int32_t attempt) {
  if (auto s = CheckWorkerId(worker_id); !s.ok()) return s;
  if (auto s = CheckPositiveId("trial_id", trial_id); !s.ok()) return s;
  if (attempt < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("attempt: expected a leased attempt (>= 1), got ", attempt));
  }
  absl::StatusOr<TrialRecord> trial = store_->GetTrial(trial_id);
  if (!trial.ok()) return trial.status();
  if (trial->worker_id != worker_id || trial->attempt != attempt) {
    return absl::FailedPreconditionError(absl::StrCat(
        "trial ", trial_id, " attempt ", attempt, " is not held by ", worker_id,
        " (current attempt ", trial->attempt, " on '", trial->worker_id,
        "'); stop it"));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::ReportMetricsResponse> Coordinator::ReportMetrics(
    const v1::ReportMetricsRequest& request) {
  if (auto s = CheckAttempt(request.worker_id(), request.trial_id(), request.attempt());
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
  absl::StatusOr<int32_t> written = store_->RecordMetrics(
      request.trial_id(), request.attempt(), request.epoch(), metrics);
  if (!written.ok()) return written.status();
  v1::ReportMetricsResponse response;
  response.set_rows_written(*written);
  return response;
}

absl::StatusOr<v1::FinishTrialResponse> Coordinator::FinishTrial(
    const v1::FinishTrialRequest& request) {
  if (auto s = CheckAttempt(request.worker_id(), request.trial_id(), request.attempt());
      !s.ok()) {
    return s;
  }
  if (auto s = store_->FinishTrial(request.trial_id(), request.attempt(), clock_->NowMs());
      !s.ok()) {
    return s;
  }
  return v1::FinishTrialResponse();
}

absl::StatusOr<v1::FailTrialResponse> Coordinator::FailTrial(
    const v1::FailTrialRequest& request) {
  if (auto s = CheckAttempt(request.worker_id(), request.trial_id(), request.attempt());
      !s.ok()) {
    return s;
  }
  std::string reason = request.reason().substr(0, kMaxReasonBytes);
  if (reason.empty()) reason = "no reason given";
  if (auto s = store_->FailTrial(request.trial_id(), request.attempt(), reason,
                                 clock_->NowMs());
      !s.ok()) {
    return s;
  }
  return v1::FailTrialResponse();
}

}  // namespace sslsweep
