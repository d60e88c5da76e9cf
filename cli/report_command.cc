#include "cli/report_command.h"

#include <filesystem>
#include <set>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "cli/atomic_file.h"
#include "cli/commands.h"
#include "cli/layer_order.h"
#include "cli/png_render.h"

namespace sslsweep {
namespace {

v1::QueryResultsRequest BaseQuery(const ReportOptions& options) {
  v1::QueryResultsRequest query;
  query.set_sweep_id(options.sweep_id);
  for (const std::string& g : options.group_by) query.add_group_by(g);
  for (const std::string& w : options.where) query.add_where(w);
  query.set_one_group(options.group_by.empty());
  return query;
}

}  // namespace

absl::StatusOr<ReportInputs> QueryReportInputs(SweepClient& client, const ReportOptions& options) {
  ReportInputs inputs;
  inputs.group_by = options.group_by;
  inputs.where = options.where;
  absl::StatusOr<v1::GetSweepStatusResponse> status = client.GetSweepStatus(options.sweep_id);
  if (!status.ok()) return status.status();
  inputs.status = *std::move(status);

  v1::QueryResultsRequest query = BaseQuery(options);
  query.set_epoch("final");
  absl::StatusOr<v1::QueryResultsResponse> last = client.QueryResults(query);
  if (!last.ok()) return last.status();
  if (last->rows().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no metrics yet for sweep ", options.sweep_id));
  }
  inputs.last_epoch = *std::move(last);

  // Only the queries whose metrics exist: a GLOB that matches nothing is an error.
  bool has_embedding_ncc = false;
  std::set<std::string> ncc_targets;  // of kReportSemanticMetric
  for (const v1::AggregatedResultRow& row : inputs.last_epoch.rows()) {
    const MetricNameParts parts = SplitMetricName(row.metric());
    if (!parts.pivotable) continue;
    if (parts.metric == "ncc_test_acc" && parts.layer == "embedding") has_embedding_ncc = true;
    if (parts.metric == kReportSemanticMetric) ncc_targets.insert(parts.target);
  }
  if (has_embedding_ncc) {
    query = BaseQuery(options);
    query.set_epoch("all");
    query.add_metrics(kReportOverEpochsGlob);
    absl::StatusOr<v1::QueryResultsResponse> over = client.QueryResults(query);
    if (!over.ok()) return over.status();
    inputs.over_epochs = *std::move(over);
  }
  if (ncc_targets.count("random") > 0 &&
      (ncc_targets.count("fine") > 0 || ncc_targets.count("coarse") > 0)) {
    query = v1::QueryResultsRequest();
    query.set_sweep_id(options.sweep_id);
    for (const std::string& w : options.where) query.add_where(w);
    query.set_epoch("final");
    for (const char* target : kReportSemanticTargets) {
      if (ncc_targets.count(target) > 0) query.add_metrics(absl::StrCat(kReportSemanticMetric, "/", target, "/*"));
    }
    absl::StatusOr<v1::QueryResultsResponse> per_trial = client.QueryResults(query);
    if (!per_trial.ok()) return per_trial.status();
    inputs.last_epoch_per_trial = *std::move(per_trial);
  }
  return inputs;
}

absl::Status WriteReport(const Report& report, const std::string& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error || !std::filesystem::is_directory(dir)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot create the report directory ", dir, ": ",
        error ? error.message() : "a file of that name exists"));
  }
  const std::filesystem::path base(dir);
  for (const ReportFigure& figure : report.figures) {
    if (absl::Status s = WriteFileAtomically((base / (figure.stem + ".svg")).string(), figure.svg);
        !s.ok()) {
      return s;
    }
    absl::StatusOr<std::string> png = RenderSvgToPng(figure.svg);
    if (!png.ok()) return png.status();
    if (absl::Status s = WriteFileAtomically((base / (figure.stem + ".png")).string(), *png);
        !s.ok()) {
      return s;
    }
  }
  return WriteFileAtomically((base / "report.md").string(), report.markdown);
}

int ReportCommand(SweepClient& client, const ReportOptions& options, std::ostream& out,
                  std::ostream& err) {
  if (options.out_dir.empty()) {
    return ReportError(absl::InvalidArgumentError("report needs --out DIR"), err);
  }
  absl::StatusOr<ReportInputs> inputs = QueryReportInputs(client, options);
  if (!inputs.ok()) return ReportError(inputs.status(), err);
  const Report report = BuildReport(*inputs);
  if (absl::Status s = WriteReport(report, options.out_dir); !s.ok()) return ReportError(s, err);
  out << (std::filesystem::path(options.out_dir) / "report.md").string() << "\n";
  return kExitOk;
}

}  // namespace sslsweep
