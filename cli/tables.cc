#include "cli/tables.h"

#include <fnmatch.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace sslsweep {

std::string StateName(v1::TrialState state) {
  switch (state) {
    case v1::TRIAL_PENDING: return "pending";
    case v1::TRIAL_RUNNING: return "running";
    case v1::TRIAL_SUCCEEDED: return "succeeded";
    case v1::TRIAL_FAILED: return "failed";
    case v1::TRIAL_CANCELLED: return "cancelled";
    case v1::TRIAL_PRUNED: return "pruned";
    default: return "unknown";
  }
}

std::string StateName(v1::SweepState state) {
  switch (state) {
    case v1::SWEEP_RUNNING: return "running";
    case v1::SWEEP_FINISHED: return "finished";
    case v1::SWEEP_CANCELLED: return "cancelled";
    default: return "unknown";
  }
}

std::vector<int> SelectMetricColumns(const v1::GetResultsResponse& results,
                                     const std::vector<std::string>& metric_patterns) {
  std::vector<int> selected;
  for (int i = 0; i < results.metric_columns_size(); ++i) {
    const std::string& name = results.metric_columns(i);
    bool match = metric_patterns.empty();
    for (const std::string& pattern : metric_patterns) {
      if (fnmatch(pattern.c_str(), name.c_str(), 0) == 0) match = true;
    }
    if (match) selected.push_back(i);
  }
  return selected;
}

OutputTable ResultsTable(const v1::GetResultsResponse& results,
                         const std::vector<std::string>& metric_patterns, OutputFormat format) {
  const std::vector<int> metrics = SelectMetricColumns(results, metric_patterns);
  OutputTable table;
  table.columns = {{"trial", true}, {"state"}};
  // Parameter values stay text: "1e-3" as the sweep spelt it.
  for (const std::string& p : results.param_columns()) table.columns.push_back({p});
  table.columns.push_back({"epoch", true});
  for (int i : metrics) table.columns.push_back({results.metric_columns(i), true});
  for (const v1::ResultRow& r : results.rows()) {
    std::vector<std::string> row = {absl::StrCat(r.trial_id()), StateName(r.state())};
    for (const std::string& p : r.params()) row.push_back(p);
    row.push_back(r.epoch() < 0 ? "-" : absl::StrCat(r.epoch()));
    for (int i : metrics) {
      const double v = i < r.metrics_size() ? r.metrics(i) : NAN;
      row.push_back(std::isnan(v)                          ? "-"
                    : format == OutputFormat::kTable ? absl::StrFormat("%.4f", v)
                                                           : absl::StrFormat("%.10g", v));
    }
    table.rows.push_back(std::move(row));
  }
  return table;
}

namespace {

// Who runs the trial: its worker, every rank's worker (rank 0 first) for a
// data-parallel trial, and how many ranks a waiting one needs.
std::string TrialWorkers(const v1::TrialStatus& t) {
  if (t.rank_worker_ids_size() > 1) return absl::StrJoin(t.rank_worker_ids(), ",");
  if (!t.worker_id().empty()) return t.worker_id();
  return t.ranks() > 1 ? absl::StrCat("- (", t.ranks(), " ranks)") : "-";
}

}  // namespace

std::string ShortDuration(double seconds) {
  if (!(seconds >= 0)) return "-";
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
}

OutputTable StatusTable(const v1::GetSweepStatusResponse& status, int64_t now_ms) {
  OutputTable table;
  const std::string metric =
      status.sweep().metric_name().empty() ? "metric" : status.sweep().metric_name();
  table.columns = {{"trial", true}, {"state"},  {"attempt", true},    {"failures"},
                   {"worker"},      {"epoch"},  {metric, true},       {"elapsed"},
                   {"eta"},         {"checkpoint", true}, {"params"}, {"reason"}};
  for (const v1::TrialStatus& t : status.trials()) {
    std::vector<std::string> params;
    for (const v1::Param& p : t.params()) params.push_back(absl::StrCat(p.path(), "=", p.value()));
    table.rows.push_back({absl::StrCat(t.trial_id()), StateName(t.state()), absl::StrCat(t.attempt()),
                    absl::StrCat(t.failures(), "/", status.sweep().max_attempts()),
                    TrialWorkers(t),
                    absl::StrCat(std::max(t.epoch(), 0), "/", t.epochs_total()),
                    std::isnan(t.metric_value()) ? "-" : absl::StrFormat("%.4f", t.metric_value()),
                    t.started_at_ms() <= 0
                        ? "-"
                        : ShortDuration(((t.ended_at_ms() > 0 ? t.ended_at_ms() : now_ms) -
                                         t.started_at_ms()) /
                                        1000.0),
                    ShortDuration(t.eta_seconds()),
                    t.checkpoint_epoch() < 0 ? "-" : absl::StrCat(t.checkpoint_epoch()),
                    absl::StrJoin(params, " "), t.failure_reason()});
  }
  return table;
}

OutputTable PlannedTrialsTable(const v1::SubmitSweepResponse& planned) {
  OutputTable table;
  table.columns = {{"index", true}, {"ranks", true}, {"epochs", true}};
  if (planned.trials_size() > 0) {
    for (const v1::Param& p : planned.trials(0).params()) table.columns.push_back({p.path()});
  }
  for (const v1::PlannedTrial& t : planned.trials()) {
    std::vector<std::string> row = {absl::StrCat(t.index()), absl::StrCat(t.ranks()),
                                    absl::StrCat(t.epochs())};
    for (const v1::Param& p : t.params()) row.push_back(p.value());
    table.rows.push_back(std::move(row));
  }
  return table;
}

std::string SweepSummaryLine(const v1::SweepSummary& s) {
  return absl::StrCat("sweep ", s.sweep_id(), " '", s.name(), "': ", StateName(s.state()), ", ",
                      s.trials_total(), " trials: ", s.trials_succeeded(), " succeeded, ",
                      s.trials_running(), " running, ", s.trials_pending(), " pending, ",
                      s.trials_failed(), " failed, ", s.trials_pruned(), " pruned, ",
                      s.trials_cancelled(), " cancelled");
}

OutputTable SweepsTable(const v1::ListSweepsResponse& sweeps) {
  OutputTable table;
  table.columns = {{"sweep", true},     {"name"},         {"state"},      {"trials", true},
                   {"succeeded", true}, {"running", true}, {"failed", true}};
  for (const v1::SweepSummary& s : sweeps.sweeps()) {
    table.rows.push_back({absl::StrCat(s.sweep_id()), s.name(), StateName(s.state()),
                    absl::StrCat(s.trials_total()), absl::StrCat(s.trials_succeeded()),
                    absl::StrCat(s.trials_running()), absl::StrCat(s.trials_failed())});
  }
  return table;
}

OutputTable WorkersTable(const v1::ListWorkersResponse& workers, int64_t now_ms) {
  OutputTable table;
  table.columns = {{"worker"}, {"host"},   {"state"}, {"last heartbeat"}, {"trials"},
                   {"failures in a row", true}, {"quarantine reason"}};
  for (const v1::WorkerInfo& w : workers.workers()) {
    const char* state = w.state() == v1::WORKER_QUARANTINED ? "quarantined"
                        : w.state() == v1::WORKER_LOST      ? "lost"
                                                            : "alive";
    table.rows.push_back({w.worker_id(), w.hostname(), state,
                    absl::StrFormat("%.1fs ago", (now_ms - w.last_heartbeat_ms()) / 1000.0),
                    w.running_trial_ids().empty() ? "-" : absl::StrJoin(w.running_trial_ids(), ","),
                    absl::StrCat(w.consecutive_failures()), w.quarantine_reason()});
  }
  return table;
}

}  // namespace sslsweep
