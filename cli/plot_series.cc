#include "cli/plot_series.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/layer_order.h"

namespace sslsweep {
namespace {

// What one line plots: the metric name less the x dimension.
struct LineKey {
  int group = 0;
  std::string metric;  // first part, or the whole name when it has fewer than 3
  NameRank target;
  NameRank layer;      // for x = epoch only
  bool operator<(const LineKey& o) const {
    return std::tie(group, metric, target, layer) < std::tie(o.group, o.metric, o.target, o.layer);
  }
};

struct Line {
  std::string group_label;
  std::vector<std::string> parts;  // metric[, target[, layer]]
  std::map<NameRank, ChartPoint> points;  // by layer rank, or {0, epoch, ""}
};

}  // namespace

absl::StatusOr<PlotAxis> ParsePlotAxis(absl::string_view text) {
  if (text == "epoch") return PlotAxis::kEpoch;
  if (text == "layer") return PlotAxis::kLayer;
  return absl::InvalidArgumentError(absl::StrCat("--x '", text, "': expected epoch or layer"));
}

std::string GroupLabel(const v1::QueryResultsResponse& results,
                       const v1::AggregatedResultRow& row) {
  if (results.group_columns_size() == 1 && results.group_columns(0) == "trials") return "";
  if (results.group_columns_size() == 1 && results.group_columns(0) == "trial_id") {
    return absl::StrCat("trial ", row.group_size() > 0 ? row.group(0) : "?");
  }
  std::vector<std::string> parts;
  for (int i = 0; i < results.group_columns_size() && i < row.group_size(); ++i) {
    parts.push_back(absl::StrCat(results.group_columns(i), "=", row.group(i)));
  }
  return absl::StrJoin(parts, ", ");
}

PlotSeries BuildPlotSeries(const v1::QueryResultsResponse& results, PlotAxis axis) {
  const bool by_layer = axis == PlotAxis::kLayer;
  std::map<std::vector<std::string>, int> group_index;
  std::map<LineKey, Line> lines;
  std::map<NameRank, std::string> x_values;  // layers by rank, or epochs
  std::set<std::string> left_out;
  for (const v1::AggregatedResultRow& row : results.rows()) {
    if (!std::isfinite(row.mean())) continue;
    const MetricNameParts parts = SplitMetricName(row.metric());
    if (by_layer && !parts.pivotable) {
      left_out.insert(row.metric());
      continue;
    }
    const std::vector<std::string> group(row.group().begin(), row.group().end());
    const int g = group_index.emplace(group, static_cast<int>(group_index.size())).first->second;
    LineKey key{g, parts.metric, TargetRank(parts.target), {}};
    std::vector<std::string> name_parts = {parts.metric};
    if (parts.pivotable) name_parts.push_back(parts.target);
    NameRank x;
    if (by_layer) {
      x = LayerRank(parts.layer);
      x_values.emplace(x, parts.layer);
    } else {
      key.layer = LayerRank(parts.layer);
      if (parts.pivotable) name_parts.push_back(parts.layer);
      x = {0, row.epoch(), ""};
      x_values.emplace(x, absl::StrCat(row.epoch()));
    }
    Line& line = lines[key];
    if (line.parts.empty()) {
      line.group_label = GroupLabel(results, row);
      line.parts = std::move(name_parts);
    }
    ChartPoint point;
    point.mean = row.mean();
    point.std = row.n() >= 2 ? row.std() : NAN;
    point.n = row.n();
    line.points[x] = point;
  }

  PlotSeries out;
  out.left_out.assign(left_out.begin(), left_out.end());
  std::map<NameRank, double> position;
  for (const auto& [rank, label] : x_values) {
    const double x = by_layer ? static_cast<double>(out.x_labels.size()) : std::get<1>(rank);
    position[rank] = x;
    out.x_positions.push_back(x);
    out.x_labels.push_back(label);
  }
  if (by_layer) out.chart.categories = out.x_labels;
  out.chart.x_label = by_layer ? "layer" : "epoch";

  // The parts of the metric names that differ between lines name them.
  size_t width = 0;
  for (const auto& [key, line] : lines) width = std::max(width, line.parts.size());
  std::vector<bool> varies(width, false);
  for (size_t i = 0; i < width; ++i) {
    std::set<std::string> values;
    for (const auto& [key, line] : lines) values.insert(i < line.parts.size() ? line.parts[i] : "");
    varies[i] = values.size() > 1;
  }
  std::set<std::string> metrics, names;
  for (const auto& [key, line] : lines) {
    metrics.insert(line.parts[0]);
    names.insert(absl::StrJoin(line.parts, "/"));
  }
  out.chart.y_label = names.size() == 1     ? *names.begin()
                      : metrics.size() == 1 ? *metrics.begin()
                                            : "value";
  for (const auto& [key, line] : lines) {
    std::vector<std::string> distinct;
    for (size_t i = 0; i < line.parts.size(); ++i) {
      if (varies[i] && !line.parts[i].empty()) distinct.push_back(line.parts[i]);
    }
    std::string metric_label = absl::StrJoin(distinct, "/");
    ChartSeries series;
    if (line.group_label.empty() || metric_label.empty()) {
      series.name = line.group_label.empty() ? metric_label : line.group_label;
      if (series.name.empty()) series.name = absl::StrJoin(line.parts, "/");
    } else {
      series.name = absl::StrCat(line.group_label, ": ", metric_label);
    }
    for (const auto& [rank, point] : line.points) {
      series.points.push_back(point);
      series.points.back().x = position[rank];
    }
    out.chart.series.push_back(std::move(series));
  }
  return out;
}

}  // namespace sslsweep
