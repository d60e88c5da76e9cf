#include "coordinator/store_results_queries.h"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace sslsweep {
namespace {

// A swept parameter of the sweep: its values, each with the index of the
// first trial (in expansion order) that has it.
struct SweptParameter {
  int32_t position = 0;  // declaration order within a trial
  std::map<std::string, int32_t> first_index;
};

struct SweepFacts {
  std::string metric_name;
  std::string metric_goal;
  std::map<std::string, SweptParameter> params;  // by path
};

std::optional<double> AsNumber(const std::string& text) {
  double value = 0;
  if (!absl::SimpleAtod(text, &value) || !std::isfinite(value)) return std::nullopt;
  return value;
}

absl::StatusOr<SweepFacts> LoadSweepFacts(StatementCache& db, int64_t sweep_id) {
  absl::StatusOr<ScopedStatement> sweep =
      db.Get("SELECT metric_name, metric_goal FROM sweeps WHERE id = ?1");
  if (!sweep.ok()) return sweep.status();
  (*sweep)->BindInt64(1, sweep_id);
  absl::StatusOr<bool> found = (*sweep)->Step();
  if (!found.ok()) return found.status();
  if (!*found) return absl::NotFoundError(absl::StrCat("no sweep ", sweep_id));
  SweepFacts facts;
  facts.metric_name = (*sweep)->ColumnText(0);
  facts.metric_goal = (*sweep)->ColumnText(1);

  absl::StatusOr<ScopedStatement> params = db.Get(R"sql(
      SELECT p.path, p.value, min(t.idx), min(p.position)
      FROM trials t JOIN trial_params p ON p.trial_id = t.id
      WHERE t.sweep_id = ?1
      GROUP BY p.path, p.value)sql");
  if (!params.ok()) return params.status();
  (*params)->BindInt64(1, sweep_id);
  absl::Status status = (*params)->ForEachRow([&](const SqliteStatement& row) {
    SweptParameter& param = facts.params[row.ColumnText(0)];
    param.first_index[row.ColumnText(1)] = static_cast<int32_t>(row.ColumnInt64(2));
    const int32_t position = static_cast<int32_t>(row.ColumnInt64(3));
    if (param.first_index.size() == 1 || position < param.position) param.position = position;
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return facts;
}

// "optim.lr, seed": the swept parameters in declaration order.
std::string ParameterList(const SweepFacts& facts) {
  if (facts.params.empty()) return "(none: the sweep sweeps no parameter)";
  std::vector<std::pair<int32_t, std::string>> ordered;
  for (const auto& [path, param] : facts.params) ordered.emplace_back(param.position, path);
  std::sort(ordered.begin(), ordered.end());
  return absl::StrJoin(ordered, ", ", [](std::string* out, const auto& p) {
    absl::StrAppend(out, p.second);
  });
}

// "0.01, 0.001": a parameter's values by first appearance.
std::string ValueList(const SweptParameter& param) {
  std::vector<std::pair<int32_t, std::string>> ordered;
  for (const auto& [value, first] : param.first_index) ordered.emplace_back(first, value);
  std::sort(ordered.begin(), ordered.end());
  return absl::StrJoin(ordered, ", ", [](std::string* out, const auto& p) {
    absl::StrAppend(out, p.second);
  });
}

absl::Status UnknownParameter(const std::string& field, const std::string& path,
                              const SweepFacts& facts) {
  return absl::InvalidArgumentError(absl::StrCat(field, "unknown parameter '", path,
                                                 "'; the sweep's swept parameters are: ",
                                                 ParameterList(facts)));
}

absl::Status CheckGroupBy(const ResultsQuery& query, const SweepFacts& facts) {
  std::set<std::string> seen;
  for (const std::string& path : query.group_by) {
    if (facts.params.count(path) == 0) return UnknownParameter("group_by: ", path, facts);
    if (!seen.insert(path).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("group_by: parameter '", path, "' is given twice"));
    }
  }
  return absl::OkStatus();
}

// The filters with each value as stored: a number equal to a stored value
// (0.001 for 1e-3) becomes that value's text.
absl::StatusOr<std::vector<ParamValue>> ResolveWhere(const ResultsQuery& query,
                                                     const SweepFacts& facts) {
  std::vector<ParamValue> resolved;
  for (const ParamValue& filter : query.where) {
    const std::string field = absl::StrCat("where '", filter.path, "=", filter.value, "': ");
    auto param = facts.params.find(filter.path);
    if (param == facts.params.end()) return UnknownParameter(field, filter.path, facts);
    const std::map<std::string, int32_t>& values = param->second.first_index;
    std::optional<std::string> stored;
    if (values.count(filter.value) > 0) {
      stored = filter.value;
    } else if (std::optional<double> number = AsNumber(filter.value)) {
      for (const auto& [text, first] : values) {
        if (AsNumber(text) == number) stored = text;
      }
    }
    if (!stored) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, "no trial of sweep ", query.sweep_id, " has ", filter.path, "=", filter.value,
          "; its values are: ", ValueList(param->second)));
    }
    resolved.push_back({filter.path, *stored});
  }
  return resolved;
}

// Metric names of the sweep's first trial with metrics, for error messages.
absl::StatusOr<std::vector<std::string>> ExampleMetricNames(StatementCache& db,
                                                            int64_t sweep_id) {
  absl::StatusOr<ScopedStatement> select = db.Get(R"sql(
      SELECT DISTINCT m.name FROM metrics m
      WHERE m.trial_id = (SELECT t.id FROM trials t
                          WHERE t.sweep_id = ?1
                            AND EXISTS (SELECT 1 FROM metrics e WHERE e.trial_id = t.id)
                          ORDER BY t.idx LIMIT 1)
      ORDER BY m.name)sql");
  if (!select.ok()) return select.status();
  (*select)->BindInt64(1, sweep_id);
  std::vector<std::string> names;
  absl::Status status = (*select)->ForEachRow([&](const SqliteStatement& row) {
    names.push_back(row.ColumnText(0));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return names;
}

// "metrics: loss, ncc_test_acc; targets: fine, random; layers: embedding".
// The parts of <metric>/<target>/<layer> names; shorter names (loss/total,
// time/epoch_seconds) are listed whole, so that "total" is not a target.
std::string MetricParts(const std::vector<std::string>& names) {
  std::set<std::string> parts[3];
  std::set<std::string> others;
  for (const std::string& name : names) {
    std::vector<std::string> split = absl::StrSplit(name, absl::MaxSplits('/', 2));
    if (split.size() != 3) {
      others.insert(name);
      continue;
    }
    for (size_t i = 0; i < split.size(); ++i) parts[i].insert(split[i]);
  }
  std::vector<std::string> text;
  if (!parts[0].empty()) text.push_back(absl::StrCat("metrics: ", absl::StrJoin(parts[0], ", ")));
  if (!parts[1].empty()) text.push_back(absl::StrCat("targets: ", absl::StrJoin(parts[1], ", ")));
  if (!parts[2].empty()) text.push_back(absl::StrCat("layers: ", absl::StrJoin(parts[2], ", ")));
  if (!others.empty()) text.push_back(absl::StrCat("others: ", absl::StrJoin(others, ", ")));
  return absl::StrJoin(text, "; ");
}

}  // namespace

absl::Status CheckMetricGlobs(StatementCache& db, int64_t sweep_id,
                              const std::vector<std::string>& globs) {
  for (const std::string& glob : globs) {
    // Stops at the first match; only a glob that matches nothing reads
    // every metric row of the sweep.
    absl::StatusOr<ScopedStatement> select = db.Get(R"sql(
        SELECT 1 FROM trials t JOIN metrics m ON m.trial_id = t.id
        WHERE t.sweep_id = ?1 AND m.name GLOB ?2 LIMIT 1)sql");
    if (!select.ok()) return select.status();
    (*select)->BindInt64(1, sweep_id);
    (*select)->BindText(2, glob);
    absl::StatusOr<bool> matched = (*select)->Step();
    if (!matched.ok()) return matched.status();
    if (*matched) continue;
    absl::StatusOr<std::vector<std::string>> names = ExampleMetricNames(db, sweep_id);
    if (!names.ok()) return names.status();
    if (names->empty()) {
      return absl::InvalidArgumentError(absl::StrCat("metrics: '", glob, "' matches no metric: sweep ",
                                                     sweep_id, " has no metrics yet"));
    }
    const size_t shown = std::min<size_t>(names->size(), 5);
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics: '", glob, "' matches no metric of sweep ", sweep_id,
        " (a GLOB over <metric>/<target>/<layer>, e.g. 'ncc_test_acc/*/*'); stored names include ",
        absl::StrJoin(names->begin(), names->begin() + shown, ", "), " (",
        MetricParts(*names), ")"));
  }
  return absl::OkStatus();
}

namespace {

// The aggregation statement and the values of its numbered parameters.
// Only fixed fragments and ?N placeholders go into the text.
struct AggregationSql {
  std::string text;
  std::vector<std::pair<int, std::string>> texts;  // (parameter, bound text)
  std::vector<std::pair<int, int64_t>> numbers;    // (parameter, bound number)
};

AggregationSql BuildAggregationSql(const ResultsQuery& query, const SweepFacts& facts,
                                   const std::vector<ParamValue>& where) {
  AggregationSql sql;
  int next = 1;
  auto bind = [&](const std::string& value) {
    sql.texts.emplace_back(next, value);
    return absl::StrCat("?", next++);
  };
  auto bind_number = [&](int64_t value) {
    sql.numbers.emplace_back(next, value);
    return absl::StrCat("?", next++);
  };
  const std::string sweep_id = bind_number(query.sweep_id);
  const size_t keys = std::max<size_t>(query.group_by.size(), 1);
  std::vector<std::string> group_columns;
  for (size_t i = 0; i < keys; ++i) group_columns.push_back(absl::StrCat("g", i));
  const std::string groups = absl::StrJoin(group_columns, ", ");
  const bool per_epoch =
      query.epoch == EpochSelection::kAll || query.epoch == EpochSelection::kNumber;

  std::string& s = sql.text;
  s = "WITH chosen AS MATERIALIZED (SELECT t.id AS trial_id";
  if (query.one_group) {
    s += ", 'all' AS g0, 1 AS grp";
  } else if (query.group_by.empty()) {
    s += ", t.id AS g0, t.id AS grp";
  } else {
    std::vector<std::string> values;
    for (size_t i = 0; i < keys; ++i) {
      absl::StrAppend(&s, ", p", i, ".value AS g", i);
      values.push_back(absl::StrCat("p", i, ".value"));
    }
    // Sorting on one integer per group is cheaper than on its texts.
    absl::StrAppend(&s, ", dense_rank() OVER (ORDER BY ", absl::StrJoin(values, ", "),
                    ") AS grp");
  }
  switch (query.epoch) {
    case EpochSelection::kFinal:
      s += ", (SELECT max(e.epoch) FROM metrics e WHERE e.trial_id = t.id) AS epoch";
      break;
    case EpochSelection::kBest:
      // The sign is -1 to maximize, 1 to minimize; the earliest epoch wins a tie.
      absl::StrAppend(&s, ", (SELECT b.epoch FROM metrics b WHERE b.trial_id = t.id AND b.name = ",
                      bind(facts.metric_name), " ORDER BY b.value * ",
                      bind_number(facts.metric_goal == "maximize" ? -1 : 1),
                      ", b.epoch LIMIT 1) AS epoch");
      break;
    case EpochSelection::kNumber:
      absl::StrAppend(&s, ", ", bind_number(query.epoch_number), " AS epoch");
      break;
    case EpochSelection::kAll:
      break;
  }
  s += " FROM trials t";
  for (size_t i = 0; i < query.group_by.size(); ++i) {
    absl::StrAppend(&s, " JOIN trial_params p", i, " ON p", i, ".trial_id = t.id AND p", i,
                    ".path = ", bind(query.group_by[i]));
  }
  for (size_t i = 0; i < where.size(); ++i) {
    absl::StrAppend(&s, " JOIN trial_params w", i, " ON w", i, ".trial_id = t.id AND w", i,
                    ".path = ", bind(where[i].path));
    absl::StrAppend(&s, " AND w", i, ".value = ", bind(where[i].value));
  }
  absl::StrAppend(&s, " WHERE t.sweep_id = ", sweep_id);
  if (!query.states.empty()) {
    std::vector<std::string> states;
    for (TrialState state : query.states) states.push_back(bind(TrialStateName(state)));
    absl::StrAppend(&s, " AND t.state IN (", absl::StrJoin(states, ", "), ")");
  }
  s += ")";
  // Every epoch: the epochs 0..the sweep's longest trial, so that the
  // metrics are looked up by their whole key (trial, epoch, name range)
  // rather than scanned trial by trial.
  if (query.epoch == EpochSelection::kAll) {
    absl::StrAppend(&s, ", epochs(epoch) AS (SELECT 0 UNION ALL SELECT epoch + 1 FROM epochs"
                        " WHERE epoch < (SELECT max(epochs) FROM trials WHERE sweep_id = ",
                    sweep_id, "))");
  }
  absl::StrAppend(&s, ", picked AS (SELECT c.grp, c.", absl::StrJoin(group_columns, ", c."),
                  ", m.epoch, m.name, m.value FROM chosen c");
  if (query.epoch == EpochSelection::kAll) {
    s += " JOIN epochs e JOIN metrics m ON m.trial_id = c.trial_id AND m.epoch = e.epoch";
  } else {
    s += " JOIN metrics m ON m.trial_id = c.trial_id AND m.epoch = c.epoch";
  }
  if (!query.metric_globs.empty()) {
    // A glob's literal prefix bounds the names: a range the key serves.
    std::vector<std::string> globs;
    for (const std::string& glob : query.metric_globs) {
      std::string condition = absl::StrCat("m.name GLOB ", bind(glob));
      const std::string prefix = glob.substr(0, glob.find_first_of("*?["));
      if (!prefix.empty() && static_cast<unsigned char>(prefix.back()) < 0x7f) {
        std::string upper = prefix;
        upper.back() = static_cast<char>(upper.back() + 1);
        condition = absl::StrCat("(m.name >= ", bind(prefix), " AND m.name < ", bind(upper),
                                 " AND ", condition, ")");
      }
      globs.push_back(condition);
    }
    absl::StrAppend(&s, " WHERE (", absl::StrJoin(globs, " OR "), ")");
  }
  // One sort: rows grouped by an integer group number, epoch and name;
  // sample_variance (RegisterResultsFunctions) is Welford's one-pass
  // update, which does not cancel catastrophically as sum(x^2) - sum(x)^2/n
  // does when the spread is small against the mean.
  absl::StrAppend(&s, ") SELECT ", groups,
                  ", min(epoch), max(epoch), name, avg(value), count(*), min(value), max(value),"
                  " sample_variance(value) FROM picked GROUP BY grp",
                  per_epoch ? ", epoch" : "", ", name");
  return sql;
}

// Sorts rows by group (each column numerically when all its values are
// numbers, else by first appearance), then epoch, then metric name.
void SortRows(const ResultsQuery& query, const SweepFacts& facts, std::vector<ResultsRow>& rows) {
  const size_t keys = std::max<size_t>(query.group_by.size(), 1);
  std::vector<bool> numeric(keys, true);
  for (const ResultsRow& row : rows) {
    for (size_t i = 0; i < keys; ++i) {
      if (numeric[i] && !AsNumber(row.group[i])) numeric[i] = false;
    }
  }
  // Per column: (number or first index, first index), compared in order.
  auto key = [&](const ResultsRow& row, size_t i) -> std::pair<double, int32_t> {
    int32_t first = 0;
    if (!query.group_by.empty()) {
      const auto& values = facts.params.at(query.group_by[i]).first_index;
      auto it = values.find(row.group[i]);
      if (it != values.end()) first = it->second;
    }
    return {numeric[i] ? *AsNumber(row.group[i]) : static_cast<double>(first), first};
  };
  std::sort(rows.begin(), rows.end(), [&](const ResultsRow& a, const ResultsRow& b) {
    for (size_t i = 0; i < keys; ++i) {
      const auto ka = key(a, i);
      const auto kb = key(b, i);
      if (ka != kb) return ka < kb;
      if (a.group[i] != b.group[i]) return a.group[i] < b.group[i];
    }
    if (a.epoch != b.epoch) return a.epoch < b.epoch;
    return a.metric < b.metric;
  });
}

// sample_variance(x): Welford's running mean and sum of squared deviations.
struct VarianceState {
  int64_t n;
  double mean;
  double squares;
};

void VarianceStep(sqlite3_context* context, int, sqlite3_value** args) {
  auto* state =
      static_cast<VarianceState*>(sqlite3_aggregate_context(context, sizeof(VarianceState)));
  if (state == nullptr) return sqlite3_result_error_nomem(context);
  if (sqlite3_value_type(args[0]) == SQLITE_NULL) return;
  const double x = sqlite3_value_double(args[0]);
  ++state->n;
  const double delta = x - state->mean;
  state->mean += delta / state->n;
  state->squares += delta * (x - state->mean);
}

void VarianceFinal(sqlite3_context* context) {
  auto* state = static_cast<VarianceState*>(sqlite3_aggregate_context(context, 0));
  if (state == nullptr || state->n < 2) return sqlite3_result_null(context);
  sqlite3_result_double(context, state->squares / (state->n - 1));
}

}  // namespace

absl::Status RegisterResultsFunctions(sqlite3* db) {
  return SqliteStatus(
      sqlite3_create_function_v2(db, "sample_variance", 1,
                                 SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, nullptr,
                                 nullptr, &VarianceStep, &VarianceFinal, nullptr),
      db, "registering sample_variance");
}

absl::StatusOr<AggregatedResults> SelectResults(StatementCache& db, const ResultsQuery& query) {
  absl::StatusOr<SweepFacts> facts = LoadSweepFacts(db, query.sweep_id);
  if (!facts.ok()) return facts.status();
  if (absl::Status s = CheckGroupBy(query, *facts); !s.ok()) return s;
  absl::StatusOr<std::vector<ParamValue>> where = ResolveWhere(query, *facts);
  if (!where.ok()) return where.status();
  if (query.epoch == EpochSelection::kBest && facts->metric_name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "epoch 'best' needs the sweep's metric, and sweep ", query.sweep_id,
        " has none (metric.name in its sweep file); use final, all or an epoch number"));
  }
  if (absl::Status s = CheckMetricGlobs(db, query.sweep_id, query.metric_globs); !s.ok()) {
    return s;
  }

  const AggregationSql sql = BuildAggregationSql(query, *facts, *where);
  absl::StatusOr<ScopedStatement> select = db.Get(sql.text);
  if (!select.ok()) return select.status();
  for (const auto& [index, number] : sql.numbers) (*select)->BindInt64(index, number);
  for (const auto& [index, text] : sql.texts) (*select)->BindText(index, text);

  AggregatedResults table;
  table.group_columns = query.group_by;
  if (table.group_columns.empty()) {
    table.group_columns = {query.one_group ? "trials" : "trial_id"};
  }
  const int keys = static_cast<int>(table.group_columns.size());
  absl::Status status = (*select)->ForEachRow([&](const SqliteStatement& row) {
    ResultsRow out;
    for (int i = 0; i < keys; ++i) out.group.push_back(row.ColumnText(i));
    const int64_t first_epoch = row.ColumnInt64(keys);
    out.epoch = first_epoch == row.ColumnInt64(keys + 1) ? static_cast<int32_t>(first_epoch) : -1;
    out.metric = row.ColumnText(keys + 2);
    out.mean = row.ColumnDouble(keys + 3);
    out.n = static_cast<int32_t>(row.ColumnInt64(keys + 4));
    out.min = row.ColumnDouble(keys + 5);
    out.max = row.ColumnDouble(keys + 6);
    // n == 1 divides by zero, which SQLite answers with NULL.
    out.std = row.ColumnIsNull(keys + 7) ? NAN : std::sqrt(std::max(0.0, row.ColumnDouble(keys + 7)));
    table.rows.push_back(std::move(out));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  SortRows(query, *facts, table.rows);
  return table;
}

}  // namespace sslsweep
