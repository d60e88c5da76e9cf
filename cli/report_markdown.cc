#include "cli/report_markdown.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/layer_order.h"
#include "cli/plot_chart.h"
#include "cli/plot_series.h"
#include "cli/tables.h"

namespace sslsweep {
namespace {

constexpr char kNoValue[] = "-";

// One view of the page: a metric drawn along an axis.
struct View {
  std::string stem;     // figure file names start with it
  std::string metric;   // first part of the names, e.g. "ncc_test_acc"
  std::string heading;  // the section's
  std::string about;    // a sentence under the heading
  std::string title;    // the figure's (the page's header names the sweep)
  std::string y_label;
  PlotAxis axis = PlotAxis::kLayer;
  bool log_y = false;
};

using Group = std::vector<std::string>;

// The rows of `results` whose name is <metric>/<target>/<layer> (a given
// target when `target` is not null), with its group columns.
v1::QueryResultsResponse RowsOf(const v1::QueryResultsResponse& results, const std::string& metric,
                                const std::string* target = nullptr) {
  v1::QueryResultsResponse out;
  *out.mutable_group_columns() = results.group_columns();
  for (const v1::AggregatedResultRow& row : results.rows()) {
    const MetricNameParts parts = SplitMetricName(row.metric());
    if (!parts.pivotable || parts.metric != metric) continue;
    if (target != nullptr && parts.target != *target) continue;
    *out.add_rows() = row;
  }
  return out;
}

// A name in a code span, or escaped text when it holds a backtick.
std::string CodeSpan(const std::string& text) {
  if (text.find('`') != std::string::npos || text.find('\n') != std::string::npos) {
    return MarkdownEscape(text);
  }
  return absl::StrCat("`", text, "`");
}

std::vector<std::string> TargetsOf(const v1::QueryResultsResponse& rows) {
  std::map<NameRank, std::string> targets;
  for (const v1::AggregatedResultRow& row : rows.rows()) {
    const MetricNameParts parts = SplitMetricName(row.metric());
    targets.emplace(TargetRank(parts.target), parts.target);
  }
  std::vector<std::string> out;
  for (const auto& [rank, target] : targets) out.push_back(target);
  return out;
}

// A file name stem: letters, digits, '-' and '_' kept, anything else '_';
// a stem already used gets "_2", "_3", ...
std::string UniqueStem(const std::string& base, std::set<std::string>& used) {
  std::string stem;
  for (char c : base) stem += std::isalnum(static_cast<unsigned char>(c)) || c == '-' ? c : '_';
  std::string candidate = stem;
  for (int i = 2; !used.insert(candidate).second; ++i) candidate = absl::StrCat(stem, "_", i);
  return candidate;
}

// The table behind a chart: a row per x position, a column per line.
std::string SeriesTable(const PlotSeries& series) {
  std::string md = absl::StrCat("| ", series.chart.x_label);
  std::string rule = "| ---";
  for (const ChartSeries& s : series.chart.series) {
    absl::StrAppend(&md, " | ", MarkdownEscape(s.name));
    absl::StrAppend(&rule, " | ---:");
  }
  absl::StrAppend(&md, " |\n", rule, " |\n");
  bool fewer = false;
  for (size_t i = 0; i < series.x_positions.size(); ++i) {
    absl::StrAppend(&md, "| ", MarkdownEscape(series.x_labels[i]));
    for (const ChartSeries& s : series.chart.series) {
      int most = 0;
      for (const ChartPoint& p : s.points) most = std::max(most, p.n);
      const auto point = std::find_if(s.points.begin(), s.points.end(), [&](const ChartPoint& p) {
        return p.x == series.x_positions[i];
      });
      std::string cell = kNoValue;
      if (point != s.points.end()) {
        cell = MeanStdCell(point->mean, point->std, point->n);
        if (point->n < most) {
          absl::StrAppend(&cell, " (n=", point->n, ")");
          fewer = true;
        }
      }
      absl::StrAppend(&md, " | ", cell);
    }
    absl::StrAppend(&md, " |\n");
  }
  if (fewer) absl::StrAppend(&md, "\n(n=k): a cell over fewer trials than the rest of its column.\n");
  return md;
}

void AppendFigure(const std::string& base_stem, const std::string& title,
                  const v1::QueryResultsResponse& rows, const View& view, Report& report,
                  std::set<std::string>& stems) {
  PlotSeries series = BuildPlotSeries(rows, view.axis);
  // One group of every trial: the lines are the targets, in TargetsOf's
  // order; name them so even when there is only one.
  const std::vector<std::string> targets = TargetsOf(rows);
  if (rows.group_columns_size() == 1 && rows.group_columns(0) == "trials" &&
      targets.size() == series.chart.series.size()) {
    for (size_t i = 0; i < targets.size(); ++i) series.chart.series[i].name = targets[i];
  }
  series.chart.title = title;
  series.chart.y_label = view.y_label;
  series.chart.log_y = view.log_y;
  const std::string stem = UniqueStem(base_stem, stems);
  report.figures.push_back({stem, RenderLineChartSvg(series.chart)});
  absl::StrAppend(&report.markdown, "![", MarkdownEscape(title), "](", stem, ".png)\n\n[SVG](",
                  stem, ".svg)\n\n", SeriesTable(series), "\n");
}

void AppendView(const ReportInputs& inputs, const v1::QueryResultsResponse& source,
                const View& view, Report& report, std::set<std::string>& stems) {
  absl::StrAppend(&report.markdown, "## ", view.heading, "\n\n");
  const v1::QueryResultsResponse rows = RowsOf(source, view.metric);
  if (rows.rows().empty()) {
    absl::StrAppend(&report.markdown, "Skipped: this sweep has no `", view.metric,
                    view.axis == PlotAxis::kEpoch ? "/<target>/embedding" : "/<target>/<layer>",
                    "` metrics.\n\n");
    return;
  }
  absl::StrAppend(&report.markdown, view.about, "\n\n");
  if (inputs.group_by.empty()) {
    AppendFigure(view.stem, view.title, rows, view, report, stems);
    return;
  }
  for (const std::string& target : TargetsOf(rows)) {
    absl::StrAppend(&report.markdown, "### Target ", MarkdownEscape(target), "\n\n");
    AppendFigure(absl::StrCat(view.stem, "_", target),
                 absl::StrCat(view.title, ", target ", target),
                 RowsOf(source, view.metric, &target), view, report, stems);
  }
}

// Mean ± std (divisor n - 1) of `values`.
std::string GapCell(const std::vector<double>& values) {
  if (values.empty()) return kNoValue;
  double mean = 0;
  for (double v : values) mean += v;
  mean /= values.size();
  double squares = 0;
  for (double v : values) squares += (v - mean) * (v - mean);
  const int n = static_cast<int>(values.size());
  return MeanStdCell(mean, n > 1 ? std::sqrt(squares / (n - 1)) : NAN, n);
}

void AppendSemanticVsRandom(const ReportInputs& inputs, Report& report) {
  absl::StrAppend(&report.markdown, "## Semantic vs random targets\n\n");
  const v1::QueryResultsResponse ncc = RowsOf(inputs.last_epoch, kReportSemanticMetric);
  std::set<std::string> targets;
  for (const std::string& t : TargetsOf(ncc)) targets.insert(t);
  std::vector<std::string> semantic;
  for (const char* t : {"fine", "coarse"}) {
    if (targets.count(t) > 0) semantic.push_back(t);
  }
  if (targets.count("random") == 0 || semantic.empty()) {
    absl::StrAppend(&report.markdown,
                    "Skipped: this sweep lacks `", kReportSemanticMetric,
                    "` for the `random` target or for both `fine` and `coarse`.\n\n");
    return;
  }
  absl::StrAppend(&report.markdown,
                  "Train NCC accuracy at the last epoch, per layer, of the semantic targets "
                  "and of the random control, and the gaps (each trial's difference, then mean "
                  "± std over the trials). A positive gap: the representation clusters by the "
                  "semantic classes more than by arbitrary classes of the same size. Train, not "
                  "test: the random partition's test labels are drawn independently of its "
                  "training classes, so its test accuracy is chance by construction.\n\n");

  // Each trial's group, from its parameters (as the coordinator groups).
  std::map<std::string, Group> group_of_trial;
  for (const v1::TrialStatus& t : inputs.status.trials()) {
    Group group;
    for (const std::string& path : inputs.group_by) {
      for (const v1::Param& p : t.params()) {
        if (p.path() == path) group.push_back(p.value());
      }
    }
    if (inputs.group_by.empty()) group = {"all"};
    if (group.size() == std::max<size_t>(inputs.group_by.size(), 1)) {
      group_of_trial[absl::StrCat(t.trial_id())] = group;
    }
  }
  // value[group][layer][target] per trial.
  std::map<Group, std::map<std::string, std::map<std::string, std::map<std::string, double>>>>
      per_trial;
  for (const v1::AggregatedResultRow& row : inputs.last_epoch_per_trial.rows()) {
    const MetricNameParts parts = SplitMetricName(row.metric());
    const auto group = group_of_trial.find(row.group_size() > 0 ? row.group(0) : "");
    if (!parts.pivotable || group == group_of_trial.end() || !std::isfinite(row.mean())) continue;
    per_trial[group->second][parts.layer][row.group(0)][parts.target] = row.mean();
  }

  // The aggregated cells, by group in the coordinator's order.
  std::vector<Group> groups;
  std::map<Group, std::string> labels;
  std::map<Group, std::map<NameRank, std::string>> layers;
  std::map<Group, std::map<std::pair<std::string, std::string>, std::string>> cells;
  for (const v1::AggregatedResultRow& row : ncc.rows()) {
    const Group group(row.group().begin(), row.group().end());
    if (labels.emplace(group, GroupLabel(ncc, row)).second) groups.push_back(group);
    const MetricNameParts parts = SplitMetricName(row.metric());
    layers[group].emplace(LayerRank(parts.layer), parts.layer);
    cells[group][{parts.layer, parts.target}] = MeanStdCell(row.mean(), row.std(), row.n());
  }
  for (const Group& group : groups) {
    if (!inputs.group_by.empty()) {
      absl::StrAppend(&report.markdown, "### ", MarkdownEscape(labels[group]), "\n\n");
    }
    absl::StrAppend(&report.markdown, "| layer");
    std::string rule = "| ---";
    for (const std::string& t : semantic) absl::StrAppend(&report.markdown, " | ", t);
    absl::StrAppend(&report.markdown, " | random");
    for (const std::string& t : semantic) absl::StrAppend(&report.markdown, " | ", t, " − random");
    for (size_t i = 0; i < 2 * semantic.size() + 1; ++i) absl::StrAppend(&rule, " | ---:");
    absl::StrAppend(&report.markdown, " |\n", rule, " |\n");
    for (const auto& [rank, layer] : layers[group]) {
      absl::StrAppend(&report.markdown, "| ", MarkdownEscape(layer));
      for (const std::string& t : semantic) {
        const auto cell = cells[group].find({layer, t});
        absl::StrAppend(&report.markdown, " | ",
                        cell == cells[group].end() ? kNoValue : cell->second);
      }
      const auto random = cells[group].find({layer, "random"});
      absl::StrAppend(&report.markdown, " | ",
                      random == cells[group].end() ? kNoValue : random->second);
      for (const std::string& t : semantic) {
        std::vector<double> gaps;
        for (const auto& [trial, values] : per_trial[group][layer]) {
          const auto s = values.find(t), r = values.find("random");
          if (s != values.end() && r != values.end()) gaps.push_back(s->second - r->second);
        }
        absl::StrAppend(&report.markdown, " | ", GapCell(gaps));
      }
      absl::StrAppend(&report.markdown, " |\n");
    }
    absl::StrAppend(&report.markdown, "\n");
  }
}

std::string TrialStates(const v1::GetSweepStatusResponse& status) {
  std::map<v1::TrialState, int> counts;
  for (const v1::TrialStatus& t : status.trials()) ++counts[t.state()];
  std::vector<std::string> parts;
  for (const auto& [state, count] : counts) {
    parts.push_back(absl::StrCat(count, " ", StateName(state)));
  }
  return absl::StrCat(status.trials_size(), status.trials_size() == 1 ? " trial" : " trials",
                      parts.empty() ? "" : ": ", absl::StrJoin(parts, ", "));
}

void AppendHeader(const ReportInputs& inputs, Report& report) {
  const v1::SweepSummary& sweep = inputs.status.sweep();
  std::string& md = report.markdown;
  absl::StrAppend(&md, "# Sweep report: ", MarkdownEscape(sweep.name()), "\n\n");
  absl::StrAppend(&md, "- Sweep ", sweep.sweep_id(), ", ", StateName(sweep.state()), "; ",
                  TrialStates(inputs.status), ".\n");
  // Swept parameters, with their values in trial order.
  std::vector<std::string> paths;
  std::map<std::string, std::vector<std::string>> values;
  for (const v1::TrialStatus& t : inputs.status.trials()) {
    for (const v1::Param& p : t.params()) {
      std::vector<std::string>& v = values[p.path()];
      if (v.empty()) paths.push_back(p.path());
      if (std::find(v.begin(), v.end(), p.value()) == v.end()) v.push_back(p.value());
    }
  }
  std::vector<std::string> swept;
  for (const std::string& path : paths) {
    std::vector<std::string> escaped;
    for (const std::string& v : values[path]) escaped.push_back(MarkdownEscape(v));
    swept.push_back(absl::StrCat(CodeSpan(path), " (", absl::StrJoin(escaped, ", "), ")"));
  }
  absl::StrAppend(&md, "- Swept parameters: ", swept.empty() ? "none" : absl::StrJoin(swept, "; "),
                  ".\n");
  if (!sweep.metric_name().empty()) {
    absl::StrAppend(&md, "- Sweep metric: ", CodeSpan(sweep.metric_name()), ".\n");
  }
  if (!inputs.where.empty()) {
    std::vector<std::string> filters;
    for (const std::string& w : inputs.where) filters.push_back(CodeSpan(w));
    absl::StrAppend(&md, "- Only the trials with ", absl::StrJoin(filters, " and "),
                    " (the trial counts above are the whole sweep's).\n");
  }
  // n per group, and the epoch "last" means.
  std::vector<Group> groups;
  std::map<Group, std::pair<std::string, int>> n_of;
  std::set<int> epochs;
  for (const v1::AggregatedResultRow& row : inputs.last_epoch.rows()) {
    const Group group(row.group().begin(), row.group().end());
    auto [at, added] = n_of.emplace(group, std::make_pair(GroupLabel(inputs.last_epoch, row), 0));
    if (added) groups.push_back(group);
    at->second.second = std::max(at->second.second, row.n());
    epochs.insert(row.epoch());
  }
  if (inputs.group_by.empty()) {
    const int n = groups.empty() ? 0 : n_of[groups[0]].second;
    absl::StrAppend(&md, "- Aggregated: every trial with metrics is one group (n = ", n,
                    "); a cell is mean ± std over its trials (sample std, divisor n − 1; the "
                    "mean alone when n = 1).\n");
  } else {
    std::vector<std::string> escaped;
    for (const std::string& g : inputs.group_by) escaped.push_back(CodeSpan(g));
    std::vector<std::string> ns;
    for (const Group& g : groups) {
      ns.push_back(absl::StrCat(MarkdownEscape(n_of[g].first), " (n = ", n_of[g].second, ")"));
    }
    absl::StrAppend(&md, "- Aggregated: trials grouped by ", absl::StrJoin(escaped, ", "),
                    "; the trials of a group (the other swept parameters, e.g. seeds) give "
                    "mean ± std (sample std, divisor n − 1; the mean alone when n = 1). Groups: ",
                    absl::StrJoin(ns, "; "),
                    ". Each view has one figure and table per target, with a line (column) per "
                    "group.\n");
  }
  std::string last = "each trial's last epoch with metrics";
  if (epochs.size() == 1 && *epochs.begin() >= 0) {
    absl::StrAppend(&last, " (epoch ", *epochs.begin(), ")");
  } else {
    absl::StrAppend(&last, " (the trials' last epochs differ)");
  }
  absl::StrAppend(&md, "- Last epoch: ", last, ".\n\n");
  absl::StrAppend(
      &md,
      "NCC accuracy (nearest class centre, on the test rows) measures how the representation "
      "clusters by a target's classes: `fine` and `coarse` are semantic classes, `random` a "
      "random partition into as many classes as `fine` (the control), `sample` the augmented "
      "views of each image (instance clustering). Ben-Shaul et al., \"Reverse Engineering "
      "Self-Supervised Learning\", NeurIPS 2023; definitions in docs/metrics.md.\n\n");
}

}  // namespace

std::string MarkdownEscape(absl::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\n' || c == '\r') {
      out += ' ';
      continue;
    }
    if (std::string_view("\\`*_[]<>|&~#").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

std::string MeanStdCell(double mean, double std, int n) {
  if (n <= 0 || !std::isfinite(mean)) return kNoValue;
  if (n == 1 || !std::isfinite(std)) return absl::StrFormat("%.4f", mean);
  return absl::StrFormat("%.4f ± %.4f", mean, std);
}

Report BuildReport(const ReportInputs& inputs) {
  Report report;
  std::set<std::string> stems;
  AppendHeader(inputs, report);
  View over_epochs;
  over_epochs.stem = "ncc_over_epochs";
  over_epochs.metric = "ncc_test_acc";
  over_epochs.heading = "NCC accuracy over training, per target";
  over_epochs.about =
      "Test NCC accuracy of the embedding after every epoch (epoch 0: at initialisation).";
  over_epochs.title = "NCC accuracy over training (test, embedding)";
  over_epochs.y_label = "NCC accuracy";
  over_epochs.axis = PlotAxis::kEpoch;
  AppendView(inputs, inputs.over_epochs, over_epochs, report, stems);

  View over_layers = over_epochs;
  over_layers.stem = "ncc_over_layers";
  over_layers.heading = "NCC accuracy over layers at the last epoch, per target";
  over_layers.about = "Test NCC accuracy of every layer, in network order, at the last epoch.";
  over_layers.title = "NCC accuracy over layers (test, last epoch)";
  over_layers.axis = PlotAxis::kLayer;
  AppendView(inputs, inputs.last_epoch, over_layers, report, stems);

  AppendSemanticVsRandom(inputs, report);

  View cdnv = over_layers;
  cdnv.stem = "cdnv_over_layers";
  cdnv.metric = "cdnv";
  cdnv.heading = "CDNV over layers at the last epoch, per target";
  cdnv.about =
      "Class-distance normalised variance of the training features (Galanti et al., ICLR "
      "2022): lower = tighter clusters, further apart. The figure's axis is logarithmic: "
      "the random target's CDNV is orders of magnitude above the others'.";
  cdnv.title = "CDNV over layers (train, last epoch)";
  cdnv.y_label = "CDNV (log scale; lower = tighter)";
  cdnv.log_y = true;
  AppendView(inputs, inputs.last_epoch, cdnv, report, stems);

  View knn = over_layers;
  knn.stem = "knn_over_layers";
  knn.metric = "knn_test_acc";
  knn.heading = "kNN accuracy over layers at the last epoch, per target";
  knn.about = "Weighted k-nearest-neighbour accuracy of the test rows (cosine similarity).";
  knn.title = "kNN accuracy over layers (test, last epoch)";
  knn.y_label = "kNN accuracy";
  AppendView(inputs, inputs.last_epoch, knn, report, stems);
  return report;
}

}  // namespace sslsweep
