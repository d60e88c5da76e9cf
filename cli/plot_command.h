// `sslsweep plot`: a line chart of a sweep's aggregated metrics, written as
// SVG or PNG (the --out extension picks which).
//
// The rows come from the coordinator's QueryResults: every epoch for
// x = epoch, the chosen epoch (final, best or N) for x = layer. Lines:
// plot_series.h. With group_by, the trials of each group (the seeds) are
// aggregated; without it, every trial is aggregated into one group
// (QueryResultsRequest.one_group), so a sweep over seeds plots one line per
// metric with its band. Line = mean, band = ± std (none where n == 1).
//
// Thread contract: one call at a time per SweepClient.

#ifndef SSLSWEEP_CLI_PLOT_COMMAND_H_
#define SSLSWEEP_CLI_PLOT_COMMAND_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cli/plot_series.h"
#include "cli/sweep_client.h"

namespace sslsweep {

enum class ImageFormat { kSvg, kPng };

// The format named by the path's extension (.svg or .png, any case);
// InvalidArgument naming the two otherwise.
absl::StatusOr<ImageFormat> ImageFormatOf(absl::string_view path);

struct PlotOptions {
  int64_t sweep_id = 0;
  std::vector<std::string> metrics;   // GLOBs over <metric>/<target>/<layer>; required
  PlotAxis x = PlotAxis::kEpoch;
  std::vector<std::string> group_by;  // swept parameter paths; empty: one group
  std::vector<std::string> where;     // "path=value", ANDed
  // x = layer: "final" (or ""), "best" or N. x = epoch: must be empty (every
  // epoch is plotted).
  std::string epoch;
  std::string out_path;               // FILE.svg or FILE.png
  std::string title;                  // "": "<sweep name>: <metrics>"
  bool log_y = false;                 // --log-y: a log10 y axis (plot_chart.h)
};

// Queries, draws and writes the chart (through out_path.tmp and a rename),
// then prints out_path on `out`; notes (names left out) go to `err`.
// Exit codes (commands.h): 2 for bad input (no --metric, an --epoch with
// --x epoch or 'all' with --x layer, a bad extension, an unknown sweep,
// metric, group-by or where, a sweep without metrics yet, nothing left to
// plot, an unwritable path), 1 when the coordinator refuses, 3 when it
// cannot be reached. Nothing is written unless the whole chart was built.
int PlotCommand(SweepClient& client, const PlotOptions& options, std::ostream& out,
                std::ostream& err);

// Writes `svg` to `path` as SVG or, rendered, as PNG. PermissionDenied
// naming the path when it cannot be written.
absl::Status WriteChart(const std::string& svg, ImageFormat format, const std::string& path);

}  // namespace sslsweep

#endif  // SSLSWEEP_CLI_PLOT_COMMAND_H_
