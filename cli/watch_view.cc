#include "cli/watch_view.h"

#include <time.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/tables.h"

namespace sslsweep {
namespace {

bool Ended(v1::TrialState state) {
  return state != v1::TRIAL_PENDING && state != v1::TRIAL_RUNNING;
}

// "trial 3 [lr=0.01 seed=1]": each parameter by the last part of its path,
// or by its whole path where two would read alike.
std::string Label(const v1::TrialStatus& trial) {
  std::string label = absl::StrCat("trial ", trial.trial_id());
  if (trial.params_size() == 0) return label;
  std::map<std::string, int> uses;
  const auto short_name = [](const std::string& path) {
    const size_t dot = path.rfind('.');
    return dot == std::string::npos ? path : path.substr(dot + 1);
  };
  for (const v1::Param& p : trial.params()) ++uses[short_name(p.path())];
  std::vector<std::string> parts;
  for (const v1::Param& p : trial.params()) {
    const std::string name = uses[short_name(p.path())] > 1 ? p.path() : short_name(p.path());
    parts.push_back(absl::StrCat(name, "=", p.value()));
  }
  return absl::StrCat(label, " [", absl::StrJoin(parts, " "), "]");
}

std::string EpochText(int32_t epoch, int32_t total) {
  return absl::StrCat(std::max(epoch, 0), "/", total);
}

// Cuts `line` to `width` columns (bytes: the block is ASCII but for
// parameter values, which a cut may split; the terminal shows a
// replacement character then).
std::string Cut(std::string line, int width) {
  if (width > 0 && line.size() > static_cast<size_t>(width)) line.resize(width);
  return line;
}

}  // namespace

std::string FormatUtcTime(int64_t ms) {
  const time_t seconds = static_cast<time_t>(ms / 1000);
  struct tm utc;
  gmtime_r(&seconds, &utc);
  char text[32];
  strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

std::string FormatDuration(double seconds) {
  const int64_t s = static_cast<int64_t>(std::llround(std::max(seconds, 0.0)));
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrCat(s / 60, "m", absl::StrFormat("%02d", s % 60), "s");
  return absl::StrCat(s / 3600, "h", absl::StrFormat("%02d", (s % 3600) / 60), "m");
}

WatchView::WatchView(WatchViewOptions options) : options_(std::move(options)) {}

std::string WatchView::Metric(double value, const char* separator) const {
  if (metric_name_.empty() || std::isnan(value)) return "";
  return absl::StrCat(" ", metric_name_, separator, absl::StrFormat("%.4f", value));
}

void WatchView::Count(v1::TrialState from, v1::TrialState to) {
  --counts_[from];
  ++counts_[to];
}

std::string WatchView::TrialLine(const Trial& trial) const {
  std::string line = absl::StrCat(trial.label, " ", StateName(trial.state));
  if (trial.state == v1::TRIAL_RUNNING) {
    absl::StrAppend(&line, " attempt ", trial.attempt, " on ", absl::StrJoin(trial.workers, ","));
  }
  if (trial.epoch >= 0) {
    absl::StrAppend(&line, " epoch ", EpochText(trial.epoch, trial.epochs_total),
                    Metric(trial.metric_value, "="));
  }
  if (!trial.reason.empty()) absl::StrAppend(&line, ": ", trial.reason);
  return line;
}

std::string WatchView::ProgressLine(const Trial& trial) const {
  const int width = options_.bar_width;
  const int done = std::max(trial.epoch, 0);
  const int filled = trial.epochs_total > 0
                         ? std::min(width, static_cast<int>(int64_t{done} * width /
                                                            trial.epochs_total))
                         : 0;
  std::string line = absl::StrCat(trial.label, "  ", std::string(filled, '#'),
                                  std::string(width - filled, '-'), "  ",
                                  EpochText(trial.epoch, trial.epochs_total));
  if (!metric_name_.empty() && !std::isnan(trial.metric_value)) {
    absl::StrAppend(&line, "  ", metric_name_, " ", absl::StrFormat("%.4f", trial.metric_value));
  }
  if (trial.eta_seconds >= 0) absl::StrAppend(&line, "  ETA ", FormatDuration(trial.eta_seconds));
  return line;
}

std::string WatchView::SweepLine() const {
  int ended = 0;
  for (const auto& [state, count] : counts_) {
    if (Ended(static_cast<v1::TrialState>(state))) ended += count;
  }
  const auto count = [&](v1::TrialState s) {
    auto it = counts_.find(s);
    return it == counts_.end() ? 0 : it->second;
  };
  return absl::StrCat("sweep ", sweep_id_, " '", sweep_name_, "': ", count(v1::TRIAL_RUNNING),
                      " running, ", count(v1::TRIAL_PENDING), " pending, ", ended, " of ",
                      trials_.size(), " ended");
}

std::vector<std::string> WatchView::Block() const {
  std::vector<std::string> lines;
  if (ended_) return lines;
  std::vector<const Trial*> running;
  for (const auto& [id, trial] : trials_) {
    if (trial.state == v1::TRIAL_RUNNING) running.push_back(&trial);
  }
  std::sort(running.begin(), running.end(),
            [](const Trial* a, const Trial* b) { return a->index < b->index; });
  for (const Trial* trial : running) lines.push_back(ProgressLine(*trial));
  lines.push_back(SweepLine());
  return lines;
}

std::vector<std::string> WatchView::EventLines(const v1::SweepEvent& event) {
  std::vector<std::string> lines;
  switch (event.event_case()) {
    case v1::SweepEvent::kSnapshot: {
      const v1::SweepSummary& sweep = event.snapshot().sweep();
      sweep_id_ = sweep.sweep_id();
      sweep_name_ = sweep.name();
      metric_name_ = sweep.metric_name();
      trials_.clear();
      counts_.clear();
      for (const v1::TrialStatus& t : event.snapshot().trials()) {
        Trial& trial = trials_[t.trial_id()];
        trial.index = t.index();
        trial.label = Label(t);
        trial.state = t.state();
        trial.attempt = t.attempt();
        trial.workers.assign(t.rank_worker_ids().begin(), t.rank_worker_ids().end());
        if (trial.workers.empty() && !t.worker_id().empty()) trial.workers = {t.worker_id()};
        trial.epoch = t.epoch();
        trial.epochs_total = t.epochs_total();
        trial.metric_value = t.metric_value();
        trial.eta_seconds = t.eta_seconds();
        trial.reason = t.failure_reason();
        ++counts_[t.state()];
      }
      std::string line = SweepLine();
      if (!metric_name_.empty()) absl::StrAppend(&line, "; metric ", metric_name_);
      lines.push_back(line);
      for (const v1::TrialStatus& t : event.snapshot().trials()) {
        if (t.state() != v1::TRIAL_PENDING) {
          lines.push_back(TrialLine(trials_[t.trial_id()]));
        }
      }
      break;
    }
    case v1::SweepEvent::kTrialStarted: {
      const v1::TrialStarted& e = event.trial_started();
      Trial& trial = trials_[e.trial_id()];
      Count(trial.state, v1::TRIAL_RUNNING);
      trial.state = v1::TRIAL_RUNNING;
      trial.attempt = e.attempt();
      trial.workers.assign(e.worker_ids().begin(), e.worker_ids().end());
      trial.eta_seconds = -1;
      std::string line = absl::StrCat(trial.label, " started attempt ", e.attempt(), " on ",
                                      absl::StrJoin(trial.workers, ","));
      if (e.resume_epoch() >= 0) absl::StrAppend(&line, ", resuming from epoch ", e.resume_epoch());
      lines.push_back(line);
      break;
    }
    case v1::SweepEvent::kEpochReported: {
      const v1::EpochReported& e = event.epoch_reported();
      Trial& trial = trials_[e.trial_id()];
      trial.epoch = e.epoch();
      trial.epochs_total = e.epochs_total();
      if (!std::isnan(e.metric_value())) trial.metric_value = e.metric_value();
      trial.eta_seconds = e.eta_seconds();
      lines.push_back(absl::StrCat("trial ", e.trial_id(), " epoch ",
                                   EpochText(e.epoch(), e.epochs_total()),
                                   Metric(e.metric_value(), "=")));
      break;
    }
    case v1::SweepEvent::kAttemptRequeued: {
      const v1::AttemptRequeued& e = event.attempt_requeued();
      Trial& trial = trials_[e.trial_id()];
      Count(trial.state, v1::TRIAL_PENDING);
      trial.state = v1::TRIAL_PENDING;
      std::string line = absl::StrCat("trial ", e.trial_id(), " attempt ", e.attempt(), " ",
                                      e.outcome());
      if (!e.reason().empty()) absl::StrAppend(&line, ": ", e.reason());
      absl::StrAppend(&line, "; requeued");
      if (e.outcome() != "released") {
        absl::StrAppend(&line, " (", e.failures(), " of ", e.max_attempts(), " failed attempts)");
      }
      lines.push_back(line);
      break;
    }
    case v1::SweepEvent::kTrialEnded: {
      const v1::TrialEnded& e = event.trial_ended();
      Trial& trial = trials_[e.trial_id()];
      Count(trial.state, e.state());
      trial.state = e.state();
      trial.epoch = e.epoch();
      if (!std::isnan(e.metric_value())) trial.metric_value = e.metric_value();
      std::string line = absl::StrCat("trial ", e.trial_id(), " ", StateName(e.state()));
      if (e.epoch() >= 0) {
        absl::StrAppend(&line, " at epoch ", EpochText(e.epoch(), trial.epochs_total),
                        Metric(e.metric_value(), "="));
      }
      if (!e.reason().empty()) absl::StrAppend(&line, ": ", e.reason());
      lines.push_back(line);
      break;
    }
    case v1::SweepEvent::kSweepEnded: {
      const v1::SweepSummary& sweep = event.sweep_ended().sweep();
      const bool cancelled = sweep.state() == v1::SWEEP_CANCELLED;
      lines.push_back(absl::StrCat(
          "sweep ", sweep.sweep_id(), " ", cancelled ? "cancelled" : "finished", ": ",
          sweep.trials_total(), " trials: ", sweep.trials_succeeded(), " succeeded, ",
          sweep.trials_failed(), " failed, ", sweep.trials_pruned(), " pruned, ",
          sweep.trials_cancelled(), " cancelled"));
      ended_ = true;
      failed_ = cancelled || sweep.trials_failed() > 0;
      break;
    }
    default:
      break;  // an event this build does not know: nothing to show
  }
  return lines;
}

std::string WatchView::Apply(const v1::SweepEvent& event) {
  const std::string time = options_.format_time ? options_.format_time(event.time_ms())
                                                : FormatUtcTime(event.time_ms());
  std::string text;
  if (options_.terminal) {
    for (int i = 0; i < block_lines_; ++i) text += "\x1b[1A\x1b[2K";
  }
  for (const std::string& line : EventLines(event)) absl::StrAppend(&text, time, " ", line, "\n");
  if (options_.terminal) {
    const std::vector<std::string> block = Block();
    for (const std::string& line : block) absl::StrAppend(&text, Cut(line, options_.width), "\n");
    block_lines_ = static_cast<int>(block.size());
  }
  return text;
}

}  // namespace sslsweep
