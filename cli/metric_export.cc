#include "cli/metric_export.h"

#include <charconv>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "cli/output_table.h"
#include "cli/tables.h"
#include "nlohmann/json.hpp"

namespace sslsweep {
namespace {

struct NameParts {
  std::string metric;
  std::string target;  // empty: absent
  std::string layer;   // empty: absent
};

NameParts SplitName(const std::string& name) {
  const size_t first = name.find('/');
  if (first == std::string::npos) return {name, "", ""};
  const size_t second = name.find('/', first + 1);
  if (second == std::string::npos) return {name.substr(0, first), "", ""};
  return {name.substr(0, first), name.substr(first + 1, second - first - 1),
          name.substr(second + 1)};
}

// The shortest text that reads back as the same double; "" for NaN.
std::string ShortestNumber(double value) {
  if (std::isnan(value)) return "";
  char text[64];
  const auto result = std::to_chars(text, text + sizeof text, value);
  return std::string(text, result.ptr);
}

const std::set<std::string>& FixedColumns() {
  static const auto* const columns = new std::set<std::string>{
      "trial_id", "state", "epoch", "metric", "target", "layer", "name", "value"};
  return *columns;
}

}  // namespace

absl::StatusOr<ExportFormat> ParseExportFormat(absl::string_view text) {
  if (text == "csv") return ExportFormat::kCsv;
  if (text == "json") return ExportFormat::kJsonLines;
  return absl::InvalidArgumentError(
      absl::StrCat("--format '", text, "': expected csv or json (JSON Lines)"));
}

absl::StatusOr<std::string> MetricExportWriter::Write(const v1::ExportMetricsChunk& chunk) {
  std::string text;
  if (!started_) {
    started_ = true;
    for (const std::string& path : chunk.param_columns()) {
      param_columns_.push_back(FixedColumns().count(path) > 0 ? "param:" + path : path);
    }
    for (const v1::ExportedTrial& trial : chunk.trials()) {
      TrialColumns& columns = trials_[trial.trial_id()];
      columns.state = StateName(trial.state());
      columns.params.assign(trial.params().begin(), trial.params().end());
      columns.params.resize(param_columns_.size());
    }
    if (format_ == ExportFormat::kCsv) {
      text = "trial_id,state";
      for (const std::string& column : param_columns_) absl::StrAppend(&text, ",", CsvCell(column));
      text += ",epoch,metric,target,layer,name,value\n";
    }
  }
  for (const v1::ExportedMetric& row : chunk.rows()) {
    auto trial = trials_.find(row.trial_id());
    if (trial == trials_.end()) {
      return absl::DataLossError(absl::StrCat("export: a row of trial ", row.trial_id(),
                                              " came before the trial was listed"));
    }
    const NameParts parts = SplitName(row.name());
    if (format_ == ExportFormat::kCsv) {
      absl::StrAppend(&text, row.trial_id(), ",", trial->second.state);
      for (const std::string& value : trial->second.params) absl::StrAppend(&text, ",", CsvCell(value));
      absl::StrAppend(&text, ",", row.epoch(), ",", CsvCell(parts.metric), ",",
                      CsvCell(parts.target), ",", CsvCell(parts.layer), ",", CsvCell(row.name()),
                      ",", ShortestNumber(row.value()), "\n");
    } else {
      nlohmann::ordered_json object = nlohmann::ordered_json::object();
      object["trial_id"] = row.trial_id();
      object["state"] = trial->second.state;
      for (size_t i = 0; i < param_columns_.size(); ++i) {
        object[param_columns_[i]] = trial->second.params[i];
      }
      object["epoch"] = row.epoch();
      object["metric"] = parts.metric;
      object["target"] = parts.target.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(parts.target);
      object["layer"] = parts.layer.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(parts.layer);
      object["name"] = row.name();
      object["value"] = std::isfinite(row.value()) ? nlohmann::ordered_json(row.value())
                                                   : nlohmann::ordered_json();
      absl::StrAppend(&text, object.dump(), "\n");
    }
    ++rows_written_;
  }
  return text;
}

}  // namespace sslsweep
