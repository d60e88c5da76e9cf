#include "cli/results_view.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/layer_order.h"
#include "cli/tables.h"

namespace sslsweep {
namespace {

constexpr char kMissing[] = "-";

struct Stats {
  double mean = NAN;
  double std = NAN;
  int n = 0;  // 0: no value
};

// Orders value columns and the last part of row keys: (class, number, name).
using Rank = NameRank;
using MetricParts = MetricNameParts;

std::string PivotName(ResultsPivot pivot) {
  switch (pivot) {
    case ResultsPivot::kLayer: return "layer";
    case ResultsPivot::kTarget: return "target";
    case ResultsPivot::kEpoch: return "epoch";
    case ResultsPivot::kNone: break;
  }
  return "";
}

// The view before formatting: key cells as text, value cells as statistics.
struct KeyColumn {
  std::string name;
  bool numeric = false;
};
struct ViewRow {
  std::vector<std::string> keys;
  std::vector<Stats> values;
};
struct View {
  std::vector<KeyColumn> keys;
  std::vector<std::string> values;
  std::vector<ViewRow> rows;
};

struct RowKey {
  int group = 0;
  int epoch = 0;
  std::string metric;
  Rank sub;
  bool operator<(const RowKey& o) const {
    return std::tie(group, epoch, metric, sub) < std::tie(o.group, o.epoch, o.metric, o.sub);
  }
};

bool IsMissing(const std::string& cell) { return cell.empty() || cell == kMissing; }

// What --sort names: a key column, or a statistic of a value column.
struct SortColumn {
  int key = -1;    // index into View::keys, or -1
  int value = -1;  // index into View::values, or -1
  enum Stat { kMean, kStd, kN } stat = kMean;
};

absl::StatusOr<SortColumn> ResolveSortColumn(const View& view, const std::string& name) {
  SortColumn sort;
  for (size_t i = 0; i < view.keys.size(); ++i) {
    if (view.keys[i].name == name) {
      sort.key = static_cast<int>(i);
      return sort;
    }
  }
  const auto find_value = [&](absl::string_view column) {
    for (size_t i = 0; i < view.values.size(); ++i) {
      if (view.values[i] == column) return static_cast<int>(i);
    }
    return -1;
  };
  sort.value = find_value(name);
  if (sort.value >= 0) return sort;
  static const std::pair<const char*, SortColumn::Stat> kSuffixes[] = {
      {".mean", SortColumn::kMean}, {".std", SortColumn::kStd}, {".n", SortColumn::kN}};
  for (const auto& [suffix, stat] : kSuffixes) {
    if (!absl::EndsWith(name, suffix)) continue;
    sort.value = find_value(absl::string_view(name).substr(0, name.size() - strlen(suffix)));
    sort.stat = stat;
    if (sort.value >= 0) return sort;
  }
  std::vector<std::string> valid;
  for (const KeyColumn& k : view.keys) valid.push_back(k.name);
  valid.insert(valid.end(), view.values.begin(), view.values.end());
  return absl::InvalidArgumentError(absl::StrCat(
      "--sort '", name, "': no such column; the columns are: ", absl::StrJoin(valid, ", "),
      view.values.empty() ? "" : " (a value column sorts by its mean; add .std or .n to sort by "
                                 "those)"));
}

absl::Status SortRows(View& view, const ResultsViewOptions& options) {
  absl::StatusOr<SortColumn> column = ResolveSortColumn(view, options.sort_column);
  if (!column.ok()) return column.status();
  const SortColumn sort = *column;
  // Key columns: numerically when every present value is a number.
  bool numeric = true;
  if (sort.key >= 0) {
    for (const ViewRow& row : view.rows) {
      double unused = 0;
      const std::string& cell = row.keys[sort.key];
      if (!IsMissing(cell) && !absl::SimpleAtod(cell, &unused)) numeric = false;
    }
  }
  const auto number = [&](const ViewRow& row) -> std::optional<double> {
    if (sort.key >= 0) {
      double v = 0;
      const std::string& cell = row.keys[sort.key];
      if (IsMissing(cell) || !absl::SimpleAtod(cell, &v)) return std::nullopt;
      return v;
    }
    const Stats& s = row.values[sort.value];
    if (s.n == 0) return std::nullopt;
    const double v = sort.stat == SortColumn::kMean ? s.mean
                     : sort.stat == SortColumn::kStd ? s.std
                                                     : static_cast<double>(s.n);
    if (std::isnan(v)) return std::nullopt;
    return v;
  };
  const bool as_text = sort.key >= 0 && !numeric;
  std::stable_sort(view.rows.begin(), view.rows.end(), [&](const ViewRow& a, const ViewRow& b) {
    if (as_text) {
      const std::string& x = a.keys[sort.key];
      const std::string& y = b.keys[sort.key];
      if (IsMissing(x) || IsMissing(y)) return !IsMissing(x) && IsMissing(y);
      return options.descending ? y < x : x < y;
    }
    const std::optional<double> x = number(a);
    const std::optional<double> y = number(b);
    if (!x || !y) return x.has_value() && !y.has_value();  // without a value: last
    return options.descending ? *y < *x : *x < *y;
  });
  return absl::OkStatus();
}

std::string Number(double value, OutputFormat format) {
  if (!std::isfinite(value)) return kMissing;
  return format == OutputFormat::kTable ? absl::StrFormat("%.4f", value)
                                        : absl::StrFormat("%.10g", value);
}

OutputTable Render(const View& view, bool per_trial, OutputFormat format) {
  OutputTable table;
  for (const KeyColumn& k : view.keys) table.columns.push_back({k.name, k.numeric});
  const bool split_stats = !per_trial && format != OutputFormat::kTable;
  for (const std::string& v : view.values) {
    if (split_stats) {
      for (const char* suffix : {".mean", ".std", ".n"}) {
        table.columns.push_back({absl::StrCat(v, suffix), true});
      }
    } else {
      table.columns.push_back({v, per_trial});
    }
  }
  for (const ViewRow& row : view.rows) {
    std::vector<std::string> cells = row.keys;
    for (const Stats& s : row.values) {
      if (per_trial) {
        cells.push_back(s.n == 0 ? kMissing : Number(s.mean, format));
      } else if (split_stats) {
        cells.push_back(s.n == 0 ? kMissing : Number(s.mean, format));
        cells.push_back(s.n == 0 ? kMissing : Number(s.std, format));
        cells.push_back(s.n == 0 ? kMissing : absl::StrCat(s.n));
      } else {
        cells.push_back(s.n == 0 ? kMissing
                                 : absl::StrCat(Number(s.mean, format), " ± ",
                                                s.n > 1 ? Number(s.std, format) : kMissing, " (",
                                                s.n, ")"));
      }
    }
    table.rows.push_back(std::move(cells));
  }
  return table;
}

}  // namespace

absl::StatusOr<ResultsPivot> ParseResultsPivot(absl::string_view text) {
  if (text.empty()) return ResultsPivot::kNone;
  if (text == "layer") return ResultsPivot::kLayer;
  if (text == "target") return ResultsPivot::kTarget;
  if (text == "epoch") return ResultsPivot::kEpoch;
  return absl::InvalidArgumentError(
      absl::StrCat("--pivot '", text, "': expected layer, target or epoch"));
}

absl::Status CheckResultsViewOptions(const ResultsViewOptions& options) {
  if (options.pivot == ResultsPivot::kEpoch && options.epoch != "all") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--pivot epoch needs the values of every epoch: add --epoch all (--epoch is '",
        options.epoch.empty() ? "final" : options.epoch, "')"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ResultsView> BuildResultsView(const v1::QueryResultsResponse& results,
                                             const ResultsViewOptions& options,
                                             const v1::GetSweepStatusResponse* trials) {
  if (absl::Status s = CheckResultsViewOptions(options); !s.ok()) return s;
  const bool per_trial =
      results.group_columns_size() == 1 && results.group_columns(0) == "trial_id";

  // Per-trial context: state and swept parameters, columns in first-appearance order.
  std::map<std::string, const v1::TrialStatus*> trial_by_id;
  std::vector<std::string> param_columns;
  if (per_trial && trials != nullptr) {
    for (const v1::TrialStatus& t : trials->trials()) {
      trial_by_id[absl::StrCat(t.trial_id())] = &t;
      for (const v1::Param& p : t.params()) {
        if (std::find(param_columns.begin(), param_columns.end(), p.path()) ==
            param_columns.end()) {
          param_columns.push_back(p.path());
        }
      }
    }
  }

  View view;
  if (per_trial) {
    view.keys.push_back({"trial", true});
    if (trials != nullptr) {
      view.keys.push_back({"state"});
      for (const std::string& p : param_columns) view.keys.push_back({p});
    }
  } else {
    for (const std::string& g : results.group_columns()) view.keys.push_back({g});
  }
  if (options.pivot != ResultsPivot::kEpoch) view.keys.push_back({"epoch", true});
  switch (options.pivot) {
    case ResultsPivot::kLayer: view.keys.insert(view.keys.end(), {{"metric"}, {"target"}}); break;
    case ResultsPivot::kTarget: view.keys.insert(view.keys.end(), {{"metric"}, {"layer"}}); break;
    case ResultsPivot::kEpoch: view.keys.push_back({"metric"}); break;
    case ResultsPivot::kNone: break;
  }

  std::map<std::vector<std::string>, int> group_index;
  std::map<RowKey, std::vector<std::string>> row_keys;
  std::map<RowKey, std::map<Rank, Stats>> cells;
  std::map<Rank, std::string> value_columns;
  std::set<std::string> dropped;
  for (const v1::AggregatedResultRow& row : results.rows()) {
    const std::vector<std::string> group(row.group().begin(), row.group().end());
    const int g = group_index.emplace(group, static_cast<int>(group_index.size())).first->second;
    const MetricParts parts = SplitMetricName(row.metric());
    RowKey key{g, row.epoch(), "", {}};
    Rank column;
    std::string column_name;
    std::vector<std::string> extra_keys;
    switch (options.pivot) {
      case ResultsPivot::kNone:
        column = {0, 0, row.metric()};
        column_name = row.metric();
        break;
      case ResultsPivot::kEpoch:
        key.epoch = 0;
        key.metric = row.metric();
        column = {0, row.epoch(), ""};
        column_name = absl::StrCat(row.epoch());
        extra_keys = {row.metric()};
        break;
      case ResultsPivot::kLayer:
      case ResultsPivot::kTarget: {
        if (!parts.pivotable) {
          dropped.insert(row.metric());
          continue;
        }
        const bool by_layer = options.pivot == ResultsPivot::kLayer;
        key.metric = parts.metric;
        key.sub = by_layer ? TargetRank(parts.target) : LayerRank(parts.layer);
        column = by_layer ? LayerRank(parts.layer) : TargetRank(parts.target);
        column_name = by_layer ? parts.layer : parts.target;
        extra_keys = {parts.metric, by_layer ? parts.target : parts.layer};
        break;
      }
    }
    value_columns.emplace(column, column_name);
    cells[key][column] = Stats{row.mean(), row.std(), row.n()};
    if (row_keys.count(key) > 0) continue;
    std::vector<std::string> keys = group;
    if (per_trial && trials != nullptr) {
      auto trial = trial_by_id.find(group.empty() ? "" : group[0]);
      std::vector<std::string> params(param_columns.size(), kMissing);
      std::string state = kMissing;
      if (trial != trial_by_id.end()) {
        state = StateName(trial->second->state());
        for (const v1::Param& p : trial->second->params()) {
          const auto at = std::find(param_columns.begin(), param_columns.end(), p.path());
          params[at - param_columns.begin()] = p.value();
        }
      }
      keys.push_back(state);
      keys.insert(keys.end(), params.begin(), params.end());
    }
    if (options.pivot != ResultsPivot::kEpoch) {
      keys.push_back(row.epoch() < 0 ? kMissing : absl::StrCat(row.epoch()));
    }
    keys.insert(keys.end(), extra_keys.begin(), extra_keys.end());
    row_keys.emplace(key, std::move(keys));
  }

  ResultsView out;
  if (!dropped.empty()) {
    if (row_keys.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--pivot ", PivotName(options.pivot),
          " needs metrics named <metric>/<target>/<layer>, and the selected ones are not: ",
          absl::StrJoin(dropped, ", "), " (choose others with --metric, e.g. 'ncc_test_acc/*/*')"));
    }
    out.notes.push_back(absl::StrCat("--pivot ", PivotName(options.pivot), " leaves out ",
                                     absl::StrJoin(dropped, ", "),
                                     " (not named <metric>/<target>/<layer>)"));
  }
  std::map<Rank, int> column_index;
  for (const auto& [rank, name] : value_columns) {
    column_index[rank] = static_cast<int>(view.values.size());
    view.values.push_back(name);
  }
  for (auto& [key, keys] : row_keys) {
    ViewRow row{std::move(keys), std::vector<Stats>(view.values.size())};
    for (const auto& [rank, stats] : cells[key]) row.values[column_index[rank]] = stats;
    view.rows.push_back(std::move(row));
  }
  if (!options.sort_column.empty()) {
    if (absl::Status s = SortRows(view, options); !s.ok()) return s;
  }
  out.table = Render(view, per_trial, options.format);
  return out;
}

}  // namespace sslsweep
