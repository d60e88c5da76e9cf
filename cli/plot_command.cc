#include "cli/plot_command.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/atomic_file.h"
#include "cli/commands.h"
#include "cli/plot_chart.h"
#include "cli/png_render.h"

namespace sslsweep {

absl::StatusOr<ImageFormat> ImageFormatOf(absl::string_view path) {
  const std::string lower = absl::AsciiStrToLower(path);
  if (absl::EndsWith(lower, ".svg")) return ImageFormat::kSvg;
  if (absl::EndsWith(lower, ".png")) return ImageFormat::kPng;
  return absl::InvalidArgumentError(
      absl::StrCat("--out '", path, "': the extension picks the format: .svg or .png"));
}

absl::Status WriteChart(const std::string& svg, ImageFormat format, const std::string& path) {
  if (format == ImageFormat::kSvg) return WriteFileAtomically(path, svg);
  absl::StatusOr<std::string> png = RenderSvgToPng(svg);
  if (!png.ok()) return png.status();
  return WriteFileAtomically(path, *png);
}

int PlotCommand(SweepClient& client, const PlotOptions& options, std::ostream& out,
                std::ostream& err) {
  // Everything that needs no coordinator first, so a typo costs no round trip.
  if (options.metrics.empty()) {
    return ReportError(absl::InvalidArgumentError(
                           "plot needs --metric GLOB (e.g. 'ncc_test_acc/*/embedding')"),
                       err);
  }
  absl::StatusOr<ImageFormat> format = ImageFormatOf(options.out_path);
  if (!format.ok()) return ReportError(format.status(), err);
  const bool by_layer = options.x == PlotAxis::kLayer;
  if (!by_layer && !options.epoch.empty()) {
    return ReportError(absl::InvalidArgumentError(absl::StrCat(
                           "--epoch '", options.epoch,
                           "' applies to --x layer; --x epoch plots every epoch")),
                       err);
  }
  if (by_layer && options.epoch == "all") {
    return ReportError(absl::InvalidArgumentError(
                           "--x layer plots one epoch: --epoch final, best or N, not all "
                           "(use --x epoch for every epoch)"),
                       err);
  }

  absl::StatusOr<v1::GetSweepStatusResponse> status = client.GetSweepStatus(options.sweep_id);
  if (!status.ok()) return ReportError(status.status(), err);
  v1::QueryResultsRequest query;
  query.set_sweep_id(options.sweep_id);
  for (const std::string& m : options.metrics) query.add_metrics(m);
  for (const std::string& g : options.group_by) query.add_group_by(g);
  for (const std::string& w : options.where) query.add_where(w);
  query.set_one_group(options.group_by.empty());
  query.set_epoch(by_layer ? options.epoch : "all");
  absl::StatusOr<v1::QueryResultsResponse> results = client.QueryResults(query);
  if (!results.ok()) return ReportError(results.status(), err);
  if (results->rows().empty()) {
    return ReportError(absl::InvalidArgumentError(absl::StrCat(
                           "no metrics yet for sweep ", options.sweep_id,
                           options.where.empty() ? "" : " (with these --where filters)")),
                       err);
  }

  PlotSeries series = BuildPlotSeries(*results, options.x);
  if (series.chart.series.empty()) {
    return ReportError(
        absl::InvalidArgumentError(absl::StrCat(
            "--x layer needs metrics named <metric>/<target>/<layer>, and the selected ones "
            "are not: ",
            absl::StrJoin(series.left_out, ", "), " (e.g. --metric 'ncc_test_acc/*/*')")),
        err);
  }
  if (!series.left_out.empty()) {
    err << "sslsweep: note: --x layer leaves out " << absl::StrJoin(series.left_out, ", ")
        << " (not named <metric>/<target>/<layer>)\n";
  }
  ChartSpec& chart = series.chart;
  chart.log_y = options.log_y;
  chart.title = options.title;
  if (chart.title.empty()) {
    chart.title = absl::StrCat(status->sweep().name(), ": ", absl::StrJoin(options.metrics, ", "));
    if (by_layer) {
      absl::StrAppend(&chart.title, " (epoch ", options.epoch.empty() ? "final" : options.epoch,
                      ")");
    }
  }
  if (absl::Status s = WriteChart(RenderLineChartSvg(chart), *format, options.out_path);
      !s.ok()) {
    return ReportError(s, err);
  }
  out << options.out_path << "\n";
  return kExitOk;
}

}  // namespace sslsweep
