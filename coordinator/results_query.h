// ResultsQuery and AggregatedResults: an aggregated results query over a sweep's
// metrics (mean, sample standard deviation, n, min, max per group, epoch
// and metric) and its answer, as plain values. Store::QueryResults runs it
// in SQL (store_results_queries.h); the Coordinator builds it from a
// v1::QueryResultsRequest. docs/schema.md ("Aggregated results") gives the
// SQL shape.
//
// Thread contract: plain values, no shared state.

#ifndef SSLSWEEP_COORDINATOR_RESULTS_QUERY_H_
#define SSLSWEEP_COORDINATOR_RESULTS_QUERY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "coordinator/store.h"

namespace sslsweep {

// Which epoch of each trial a query reads.
enum class EpochSelection {
  kFinal,   // the trial's highest epoch with any metric
  kBest,    // the epoch where the sweep's metric is best (earliest on ties)
  kAll,     // every epoch; rows are per epoch
  kNumber,  // ResultsQuery::epoch_number only
};

struct ResultsQuery {
  int64_t sweep_id = 0;
  // SQLite GLOB patterns over metric names; a metric is kept if one
  // matches. Empty: every metric.
  std::vector<std::string> metric_globs;
  // Swept parameter paths; empty: one group per trial (key: its id), or
  // with one_group a single group of every trial (column "trials", key
  // "all").
  std::vector<std::string> group_by;
  bool one_group = false;
  EpochSelection epoch = EpochSelection::kFinal;
  int32_t epoch_number = 0;  // for kNumber; >= 0
  // Parameter filters (path, value text), ANDed.
  std::vector<ParamValue> where;
  // Only trials in these states; empty: every state.
  std::vector<TrialState> states;
};

struct ResultsRow {
  std::vector<std::string> group;  // aligned with AggregatedResults::group_columns
  // The epoch; -1 for kFinal / kBest when the aggregated trials' epochs differ.
  int32_t epoch = -1;
  std::string metric;
  double mean = 0;
  double std = 0;  // sample (n - 1); NaN when n == 1
  int32_t n = 0;   // trials aggregated
  double min = 0;
  double max = 0;
};

struct AggregatedResults {
  std::vector<std::string> group_columns;  // the query's group_by, or {"trial_id"}
  // By group (each column numerically when all its values are numbers, else
  // by first appearance in trial order), then epoch, then metric name.
  std::vector<ResultsRow> rows;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_RESULTS_QUERY_H_
