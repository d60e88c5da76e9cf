// ResultsView: how `sslsweep results` turns the coordinator's aggregated rows
// (QueryResultsResponse, long format: one row per group, epoch and metric)
// into the table it prints. The coordinator aggregates; this module only
// pivots, sorts and formats.
//
//   no pivot      one row per (group, epoch), one column per metric name.
//   pivot layer   one row per (group, epoch, metric, target), one column per
//                 layer: stage1..stageN, embedding, projector1..K, then any
//                 other layer by name.
//   pivot target  one row per (group, epoch, metric, layer), one column per
//                 target: fine, coarse, random, sample, then others by name.
//   pivot epoch   one row per (group, metric), one column per epoch (needs
//                 the rows of every epoch: --epoch all).
//
// Metric names are <metric>/<target>/<layer>; pivot layer and pivot target
// leave out names with fewer parts (loss/total) and say so in `notes`.
//
// Per trial (the response's group column is "trial_id"), a cell is the
// trial's value. Per group, a cell is "mean ± std (n)" in the table format
// (std "-" when n == 1) and three numeric columns <column>.mean,
// <column>.std and <column>.n in json and csv ("-" / null where absent).
// The table format prints 4 decimals, json and csv %.10g.
//
// Thread contract: plain values and pure functions.

#ifndef SSLSWEEP_CLI_RESULTS_VIEW_H_
#define SSLSWEEP_CLI_RESULTS_VIEW_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cli/output_table.h"
#include "proto/sslsweep.pb.h"

namespace sslsweep {

enum class ResultsPivot { kNone, kLayer, kTarget, kEpoch };

// "" (none), "layer", "target" or "epoch"; InvalidArgument naming them otherwise.
absl::StatusOr<ResultsPivot> ParseResultsPivot(absl::string_view text);

struct ResultsViewOptions {
  ResultsPivot pivot = ResultsPivot::kNone;
  // The --epoch the rows were queried with ("" means final); pivot epoch
  // needs "all".
  std::string epoch;
  // A column of the view to sort rows by, "" to keep the coordinator's
  // order (group, epoch, metric). A group, parameter or key column sorts
  // numerically when every value is a number, else as text; a value column
  // sorts by its mean, or by .mean, .std or .n when named with the suffix.
  // Cells without a value come last either way.
  std::string sort_column;
  bool descending = false;
  OutputFormat format = OutputFormat::kTable;
};

// Checks the options that do not depend on the rows (pivot epoch without
// --epoch all); InvalidArgument saying what to change.
absl::Status CheckResultsViewOptions(const ResultsViewOptions& options);

struct ResultsView {
  OutputTable table;
  std::vector<std::string> notes;  // for stderr: what the view left out
};

// The view of `results`. `trials`, when given, adds each trial's state and
// swept parameters after the trial column of a per-trial view (unused when
// the rows are grouped). InvalidArgument for an unknown sort column (naming
// the valid ones), for pivot epoch without --epoch all, and when pivot
// layer or target leaves no metric.
absl::StatusOr<ResultsView> BuildResultsView(const v1::QueryResultsResponse& results,
                                             const ResultsViewOptions& options,
                                             const v1::GetSweepStatusResponse* trials = nullptr);

}  // namespace sslsweep

#endif  // SSLSWEEP_CLI_RESULTS_VIEW_H_
