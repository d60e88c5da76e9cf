#include "cli/tables.h"

#include <fnmatch.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace sslsweep {

std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(header.size(), 0);
  auto widen = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  };
  widen(header);
  for (const auto& row : rows) widen(row);
  std::string out;
  auto append = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      if (i > 0) line += "  ";
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size(), ' ');
    }
    out += line;
    out += '\n';
  };
  append(header);
  for (const auto& row : rows) append(row);
  return out;
}

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

std::string ResultsTable(const v1::GetResultsResponse& results,
                         const std::vector<std::string>& metric_patterns) {
  const std::vector<int> metrics = SelectMetricColumns(results, metric_patterns);
  std::vector<std::string> header = {"trial", "state"};
  for (const std::string& p : results.param_columns()) header.push_back(p);
  header.push_back("epoch");
  for (int i : metrics) header.push_back(results.metric_columns(i));
  std::vector<std::vector<std::string>> rows;
  for (const v1::ResultRow& r : results.rows()) {
    std::vector<std::string> row = {absl::StrCat(r.trial_id()), StateName(r.state())};
    for (const std::string& p : r.params()) row.push_back(p);
    row.push_back(r.epoch() < 0 ? "-" : absl::StrCat(r.epoch()));
    for (int i : metrics) {
      const double v = i < r.metrics_size() ? r.metrics(i) : NAN;
      row.push_back(std::isnan(v) ? "-" : absl::StrFormat("%.4f", v));
    }
    rows.push_back(std::move(row));
  }
  return FormatTable(header, rows);
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

std::string StatusTable(const v1::GetSweepStatusResponse& status) {
  std::vector<std::vector<std::string>> rows;
  for (const v1::TrialStatus& t : status.trials()) {
    std::vector<std::string> params;
    for (const v1::Param& p : t.params()) params.push_back(absl::StrCat(p.path(), "=", p.value()));
    rows.push_back({absl::StrCat(t.trial_id()), StateName(t.state()), absl::StrCat(t.attempt()),
                    absl::StrCat(t.failures(), "/", status.sweep().max_attempts()),
                    TrialWorkers(t),
                    absl::StrCat(std::max(t.epoch(), 0), "/", t.epochs_total()),
                    t.checkpoint_epoch() < 0 ? "-" : absl::StrCat(t.checkpoint_epoch()),
                    absl::StrJoin(params, " "), t.failure_reason()});
  }
  return FormatTable({"trial", "state", "attempt", "failures", "worker", "epoch", "checkpoint",
                      "params", "reason"},
                     rows);
}

std::string SweepSummaryLine(const v1::SweepSummary& s) {
  return absl::StrCat("sweep ", s.sweep_id(), " '", s.name(), "': ", StateName(s.state()), ", ",
                      s.trials_total(), " trials: ", s.trials_succeeded(), " succeeded, ",
                      s.trials_running(), " running, ", s.trials_pending(), " pending, ",
                      s.trials_failed(), " failed, ", s.trials_pruned(), " pruned, ",
                      s.trials_cancelled(), " cancelled");
}

std::string SweepsTable(const v1::ListSweepsResponse& sweeps) {
  std::vector<std::vector<std::string>> rows;
  for (const v1::SweepSummary& s : sweeps.sweeps()) {
    rows.push_back({absl::StrCat(s.sweep_id()), s.name(), StateName(s.state()),
                    absl::StrCat(s.trials_total()), absl::StrCat(s.trials_succeeded()),
                    absl::StrCat(s.trials_running()), absl::StrCat(s.trials_failed())});
  }
  return FormatTable({"sweep", "name", "state", "trials", "succeeded", "running", "failed"},
                     rows);
}

std::string WorkersTable(const v1::ListWorkersResponse& workers, int64_t now_ms) {
  std::vector<std::vector<std::string>> rows;
  for (const v1::WorkerInfo& w : workers.workers()) {
    const char* state = w.state() == v1::WORKER_QUARANTINED ? "quarantined"
                        : w.state() == v1::WORKER_LOST      ? "lost"
                                                            : "alive";
    rows.push_back({w.worker_id(), w.hostname(), state,
                    absl::StrFormat("%.1fs ago", (now_ms - w.last_heartbeat_ms()) / 1000.0),
                    w.running_trial_ids().empty() ? "-" : absl::StrJoin(w.running_trial_ids(), ","),
                    absl::StrCat(w.consecutive_failures()), w.quarantine_reason()});
  }
  return FormatTable({"worker", "host", "state", "last heartbeat", "trials", "failures in a row",
                      "quarantine reason"},
                     rows);
}

}  // namespace sslsweep
