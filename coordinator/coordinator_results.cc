// Coordinator: the aggregated results query and the metrics export (see
// coordinator.h). Checks the shape of each request field here; the Store
// checks the names against what the sweep stores and reads in SQL.

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "coordinator/coordinator.h"
#include "coordinator/request_fields.h"
#include "coordinator/results_query.h"

namespace sslsweep {
namespace {

// Bounds on what one request may ask, so that the SQL stays small.
constexpr int kMaxMetricGlobs = 64;
constexpr int kMaxGroupBy = 16;
constexpr int kMaxWhere = 32;

absl::Status CheckStrings(const char* field,
                          const google::protobuf::RepeatedPtrField<std::string>& values,
                          int max_count) {
  if (values.size() > max_count) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", values.size(), " entries; at most ", max_count));
  }
  for (const std::string& value : values) {
    if (value.empty() || value.size() > kMaxNameBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": expected 1 to ", kMaxNameBytes, " bytes per entry, got ", value.size()));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseEpoch(const std::string& text, ResultsQuery& query) {
  if (text.empty() || text == "final") {
    query.epoch = EpochSelection::kFinal;
  } else if (text == "best") {
    query.epoch = EpochSelection::kBest;
  } else if (text == "all") {
    query.epoch = EpochSelection::kAll;
  } else if (int32_t number = 0; absl::SimpleAtoi(text, &number) && number >= 0 &&
                                 text.find_first_not_of("0123456789") == std::string::npos) {
    query.epoch = EpochSelection::kNumber;
    query.epoch_number = number;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "epoch: '", text, "' is not an epoch selector; expected final, best, all or an epoch "
        "number >= 0"));
  }
  return absl::OkStatus();
}

absl::StatusOr<TrialState> FromProto(v1::TrialState state) {
  switch (state) {
    case v1::TRIAL_PENDING: return TrialState::kPending;
    case v1::TRIAL_RUNNING: return TrialState::kRunning;
    case v1::TRIAL_SUCCEEDED: return TrialState::kSucceeded;
    case v1::TRIAL_FAILED: return TrialState::kFailed;
    case v1::TRIAL_CANCELLED: return TrialState::kCancelled;
    case v1::TRIAL_PRUNED: return TrialState::kPruned;
    default: break;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "states: ", static_cast<int>(state),
      " is not a trial state; expected pending, running, succeeded, failed, cancelled or "
      "pruned"));
}

absl::StatusOr<ResultsQuery> ToResultsQuery(const v1::QueryResultsRequest& request) {
  if (auto s = CheckPositiveId("sweep_id", request.sweep_id()); !s.ok()) return s;
  if (auto s = CheckStrings("metrics", request.metrics(), kMaxMetricGlobs); !s.ok()) return s;
  if (auto s = CheckStrings("group_by", request.group_by(), kMaxGroupBy); !s.ok()) return s;
  if (auto s = CheckStrings("where", request.where(), kMaxWhere); !s.ok()) return s;
  ResultsQuery query;
  query.sweep_id = request.sweep_id();
  query.metric_globs.assign(request.metrics().begin(), request.metrics().end());
  query.group_by.assign(request.group_by().begin(), request.group_by().end());
  if (request.one_group() && !query.group_by.empty()) {
    return absl::InvalidArgumentError(
        "one_group: aggregates every trial into one group; give it or group_by, not both");
  }
  query.one_group = request.one_group();
  if (auto s = ParseEpoch(request.epoch(), query); !s.ok()) return s;
  for (const std::string& filter : request.where()) {
    const size_t equals = filter.find('=');
    if (equals == std::string::npos || equals == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "where: '", filter, "': expected path=value, e.g. optim.lr=0.01"));
    }
    query.where.push_back({filter.substr(0, equals), filter.substr(equals + 1)});
  }
  for (int state : request.states()) {
    absl::StatusOr<TrialState> parsed = FromProto(static_cast<v1::TrialState>(state));
    if (!parsed.ok()) return parsed.status();
    query.states.push_back(*parsed);
  }
  return query;
}

}  // namespace

absl::StatusOr<v1::QueryResultsResponse> Coordinator::QueryResults(
    const v1::QueryResultsRequest& request) {
  absl::StatusOr<ResultsQuery> query = ToResultsQuery(request);
  if (!query.ok()) return query.status();
  absl::StatusOr<AggregatedResults> table = store_->QueryResults(*query);
  if (!table.ok()) return table.status();
  v1::QueryResultsResponse response;
  for (const std::string& column : table->group_columns) response.add_group_columns(column);
  for (ResultsRow& row : table->rows) {
    v1::AggregatedResultRow* out = response.add_rows();
    for (std::string& value : row.group) out->add_group(std::move(value));
    out->set_epoch(row.epoch);
    out->set_metric(std::move(row.metric));
    out->set_mean(row.mean);
    out->set_std(row.std);
    out->set_n(row.n);
    out->set_min(row.min);
    out->set_max(row.max);
  }
  return response;
}

absl::Status Coordinator::ExportMetrics(
    const v1::ExportMetricsRequest& request,
    absl::FunctionRef<bool(const v1::ExportMetricsChunk&)> emit) {
  if (auto s = CheckPositiveId("sweep_id", request.sweep_id()); !s.ok()) return s;
  if (auto s = CheckStrings("metrics", request.metrics(), kMaxMetricGlobs); !s.ok()) return s;
  absl::StatusOr<std::vector<TrialRecord>> trials = store_->ListTrials(request.sweep_id());
  if (!trials.ok()) return trials.status();
  const std::vector<std::string> globs(request.metrics().begin(), request.metrics().end());
  if (auto s = store_->CheckMetricGlobs(request.sweep_id(), globs); !s.ok()) return s;

  // The first chunk: the swept parameters in declaration order, and each
  // trial's state and values (read once: the rows that follow refer to them).
  v1::ExportMetricsChunk chunk;
  std::vector<std::string> columns;
  for (const TrialRecord& t : *trials) {
    for (const ParamValue& p : t.params) {
      if (std::find(columns.begin(), columns.end(), p.path) == columns.end()) {
        columns.push_back(p.path);
      }
    }
  }
  for (const std::string& column : columns) chunk.add_param_columns(column);
  for (const TrialRecord& t : *trials) {
    v1::ExportedTrial* out = chunk.add_trials();
    out->set_trial_id(t.id);
    out->set_state(ToProto(t.state));
    std::map<std::string, std::string> values;
    for (const ParamValue& p : t.params) values[p.path] = p.value;
    for (const std::string& column : columns) out->add_params(values[column]);
  }

  const auto gone = [&] {
    return absl::CancelledError(absl::StrCat("export of sweep ", request.sweep_id(),
                                             ": the receiver went away"));
  };
  std::optional<MetricRow> after;
  bool first = true;
  while (true) {
    absl::StatusOr<std::vector<MetricRow>> page = store_->MetricRowsPage(
        request.sweep_id(), globs, after, options_.export_page_rows);
    if (!page.ok()) return page.status();
    for (const MetricRow& row : *page) {
      v1::ExportedMetric* out = chunk.add_rows();
      out->set_trial_id(row.trial_id);
      out->set_epoch(row.epoch);
      out->set_name(row.name);
      out->set_value(row.value);
    }
    if ((first || !page->empty()) && !emit(chunk)) return gone();
    // A short page is the last; a full one may be followed by nothing.
    if (static_cast<int32_t>(page->size()) < options_.export_page_rows) break;
    after = std::move(page->back());
    chunk.Clear();
    first = false;
  }
  return absl::OkStatus();
}

}  // namespace sslsweep
