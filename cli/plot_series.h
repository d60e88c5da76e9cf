// PlotSeries: the coordinator's aggregated rows (QueryResultsResponse, one
// row per group, epoch and metric) as the lines of a chart, for `sslsweep
// plot` and `report`.
//
//   x = epoch  one line per (group, metric name); the rows of every epoch
//              (--epoch all) are the points.
//   x = layer  one line per (group, <metric>/<target>); the layers are the
//              points, in network order (layer_order.h). Names without a
//              layer part (loss/total) are left out and listed.
//
// Lines are ordered by group (the response's order), then metric, target
// (fine, coarse, random, sample, ...) and layer. A line's name is its group
// ("optim.lr=0.01, method=vicreg"; nothing when all trials are one group)
// and the parts of its metric name that differ between lines ("fine"), so
// that a legend says only what tells the lines apart.
//
// Thread contract: plain values and pure functions.

#ifndef SSLSWEEP_CLI_PLOT_SERIES_H_
#define SSLSWEEP_CLI_PLOT_SERIES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cli/plot_chart.h"
#include "proto/sslsweep.pb.h"

namespace sslsweep {

enum class PlotAxis { kEpoch, kLayer };

// "epoch" or "layer"; InvalidArgument naming them otherwise.
absl::StatusOr<PlotAxis> ParsePlotAxis(absl::string_view text);

struct PlotSeries {
  // Axis labels, categories and lines; the title is left to the caller.
  ChartSpec chart;
  // The x positions with a point, in order, and their labels (epochs as
  // decimals, or layer names): the rows of the table behind the chart.
  std::vector<double> x_positions;
  std::vector<std::string> x_labels;
  // Metric names that x = layer leaves out (no layer part), sorted.
  std::vector<std::string> left_out;
};

// The lines of `results` along `axis`. Rows whose mean is not finite are
// skipped. Never fails; a response without rows gives a chart without lines.
PlotSeries BuildPlotSeries(const v1::QueryResultsResponse& results, PlotAxis axis);

// The label of a group: "p=v, q=w" for group_by columns, "trial N" for the
// per-trial column trial_id, "" for one group of every trial ("trials").
std::string GroupLabel(const v1::QueryResultsResponse& results,
                       const v1::AggregatedResultRow& row);

}  // namespace sslsweep

#endif  // SSLSWEEP_CLI_PLOT_SERIES_H_
