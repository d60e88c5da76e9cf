// ReportMarkdown: the page `sslsweep report` writes (report.md and the
// figures it embeds), built from the coordinator's answers alone: no gRPC,
// no files, so tests compare exact text.
//
// The page shows the views of Ben-Shaul et al., "Reverse Engineering
// Self-Supervised Learning" (NeurIPS 2023): how the representation clusters
// by each target (fine and coarse: semantic classes; random: the control;
// sample: instances), measured by test NCC accuracy:
//
//   header                     sweep, trials and their states, swept
//                              parameters, what is aggregated (n per group)
//   NCC over training          ncc_test_acc/<target>/embedding, every epoch
//   NCC over layers            ncc_test_acc/<target>/<layer>, last epoch
//   semantic vs random         fine, coarse, random per layer, and the gaps
//                              fine - random, coarse - random (mean ± std of
//                              each trial's gap)
//   CDNV over layers           cdnv/<target>/<layer>, last epoch
//   kNN over layers            knn_test_acc/<target>/<layer>, last epoch
//
// A section whose metrics the sweep lacks says so in one line. Without
// group_by every trial is one group and each figure has one line per target;
// with group_by each view has one figure (and table) per target, with one
// line (column) per group, so that groups are compared within a target.
// Each figure is followed by the table behind it: rows are the x axis
// (epochs or layers), columns the lines, cells "mean ± std" with 4 decimals.
//
// Thread contract: plain values and pure functions.

#ifndef SSLSWEEP_CLI_REPORT_MARKDOWN_H_
#define SSLSWEEP_CLI_REPORT_MARKDOWN_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "proto/sslsweep.pb.h"

namespace sslsweep {

// The metric GLOBs of the report's queries.
inline constexpr char kReportOverEpochsGlob[] = "ncc_test_acc/*/embedding";
inline constexpr char kReportSemanticTargets[][7] = {"fine", "coarse", "random"};
// Semantic vs random compares train NCC accuracy: a random partition's test
// labels are drawn independently of its training classes, so its test
// accuracy is chance by construction; the train accuracy says how well the
// representation clusters arbitrary classes (the paper's control).
inline constexpr char kReportSemanticMetric[] = "ncc_train_acc";

struct ReportInputs {
  v1::GetSweepStatusResponse status;
  std::vector<std::string> group_by;  // empty: one group of every trial
  // The PATH=VALUE filters every query had (`report --where`), for the
  // header; the rows below hold only those trials.
  std::vector<std::string> where;
  // Every metric at each trial's last epoch (epoch "final"), grouped by
  // group_by, or one_group when it is empty.
  v1::QueryResultsResponse last_epoch;
  // kReportOverEpochsGlob at every epoch (epoch "all"), grouped the same
  // way; no rows when the sweep lacks those metrics.
  v1::QueryResultsResponse over_epochs;
  // ncc_train_acc/<t>/* for the semantic targets t the sweep has, at each
  // trial's last epoch, one group per trial (no group_by): each trial's
  // gap to random. No rows when the sweep lacks random or both others.
  v1::QueryResultsResponse last_epoch_per_trial;
};

struct ReportFigure {
  std::string stem;  // file name without extension: STEM.svg, STEM.png
  std::string svg;
};

struct Report {
  std::string markdown;
  std::vector<ReportFigure> figures;  // in the page's order
};

Report BuildReport(const ReportInputs& inputs);

// `text` safe in Markdown running text and table cells: the characters that
// would start markup are backslash-escaped, line breaks become spaces.
std::string MarkdownEscape(absl::string_view text);

// A table cell: "0.7412 ± 0.0123", "0.7412" when n == 1, "-" without value.
std::string MeanStdCell(double mean, double std, int n);

}  // namespace sslsweep

#endif  // SSLSWEEP_CLI_REPORT_MARKDOWN_H_
