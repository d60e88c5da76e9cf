// report_markdown.h: the exact page for a small sweep built from fixture
// responses (no coordinator), the sections a sweep without their metrics
// skips, one figure per target with --group-by, and Markdown escaping.

#include "cli/report_markdown.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/aggregated_rows_test_util.h"

namespace sslsweep {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The semantic-vs-random table reads ncc_train_acc: gives every
// ncc_test_acc row a train twin with the same values.
void AddTrainCopies(v1::QueryResultsResponse& rows) {
  const int size = rows.rows_size();
  for (int i = 0; i < size; ++i) {
    const v1::AggregatedResultRow row = rows.rows(i);
    if (!absl::StartsWith(row.metric(), "ncc_test_acc/")) continue;
    v1::AggregatedResultRow* twin = rows.add_rows();
    *twin = row;
    twin->set_metric(absl::StrCat("ncc_train_acc/", row.metric().substr(13)));
  }
}

// Sweep 7, "paper <1>": seeds 0, 1, 2 (trials 11, 12, 13), two epochs after
// the initialisation; NCC of fine and random at stage1 and the embedding.
// Trial t's value of ncc_test_acc/<target>/<layer> at epoch e:
//   fine:   0.5 + 0.1 * e + 0.01 * (t - 12) (+ 0.1 at the embedding)
//   random: 0.1 + 0.02 * (t - 12)
ReportInputs SeedsInputs() {
  ReportInputs in;
  v1::SweepSummary* sweep = in.status.mutable_sweep();
  sweep->set_sweep_id(7);
  sweep->set_name("paper <1>");
  sweep->set_state(v1::SWEEP_FINISHED);
  sweep->set_metric_name("ncc_test_acc/fine/embedding");
  for (int t = 11; t <= 13; ++t) {
    v1::TrialStatus* trial = in.status.add_trials();
    trial->set_trial_id(t);
    trial->set_state(t == 13 ? v1::TRIAL_FAILED : v1::TRIAL_SUCCEEDED);
    v1::Param* p = trial->add_params();
    p->set_path("seed");
    p->set_value(absl::StrCat(t - 11));
  }
  const auto fine = [](int t, int e, bool embedding) {
    return 0.5 + 0.1 * e + 0.01 * (t - 12) + (embedding ? 0.1 : 0);
  };
  const auto random = [](int t) { return 0.1 + 0.02 * (t - 12); };
  // Over three trials t - 12 is -1, 0, 1: mean at t = 12, std 0.01 or 0.02.
  in.last_epoch.add_group_columns("trials");
  for (const char* layer : {"embedding", "stage1"}) {
    const bool embedding = std::string(layer) == "embedding";
    *in.last_epoch.add_rows() = Row({"all"}, 2, absl::StrCat("ncc_test_acc/fine/", layer),
                                    fine(12, 2, embedding), 0.01, 3);
    *in.last_epoch.add_rows() = Row({"all"}, 2, absl::StrCat("ncc_test_acc/random/", layer),
                                    random(12), 0.02, 3);
  }
  *in.last_epoch.add_rows() = Row({"all"}, 2, "loss/total", 1.25, 0.5, 3);
  in.over_epochs.add_group_columns("trials");
  for (int e = 0; e <= 2; ++e) {
    // Trial 13 failed after epoch 1: epoch 2 aggregates two trials.
    *in.over_epochs.add_rows() =
        Row({"all"}, e, "ncc_test_acc/fine/embedding", fine(12, e, true), 0.01, 3);
    *in.over_epochs.add_rows() =
        Row({"all"}, e, "ncc_test_acc/random/embedding", random(12), 0.02, e == 2 ? 2 : 3);
  }
  in.last_epoch_per_trial.add_group_columns("trial_id");
  for (int t = 11; t <= 13; ++t) {
    for (const char* layer : {"embedding", "stage1"}) {
      const bool embedding = std::string(layer) == "embedding";
      const std::string id = absl::StrCat(t);
      *in.last_epoch_per_trial.add_rows() = Row({id}, 2, absl::StrCat("ncc_test_acc/fine/", layer),
                                                fine(t, 2, embedding), NAN, 1);
      *in.last_epoch_per_trial.add_rows() =
          Row({id}, 2, absl::StrCat("ncc_test_acc/random/", layer), random(t), NAN, 1);
    }
  }
  AddTrainCopies(in.last_epoch);
  AddTrainCopies(in.last_epoch_per_trial);
  return in;
}

constexpr char kSeedsReport[] = R"md(# Sweep report: paper \<1\>

- Sweep 7, finished; 3 trials: 2 succeeded, 1 failed.
- Swept parameters: `seed` (0, 1, 2).
- Sweep metric: `ncc_test_acc/fine/embedding`.
- Aggregated: every trial with metrics is one group (n = 3); a cell is mean ± std over its trials (sample std, divisor n − 1; the mean alone when n = 1).
- Last epoch: each trial's last epoch with metrics (epoch 2).

NCC accuracy (nearest class centre, on the test rows) measures how the representation clusters by a target's classes: `fine` and `coarse` are semantic classes, `random` a random partition into as many classes as `fine` (the control), `sample` the augmented views of each image (instance clustering). Ben-Shaul et al., "Reverse Engineering Self-Supervised Learning", NeurIPS 2023; definitions in docs/metrics.md.

## NCC accuracy over training, per target

Test NCC accuracy of the embedding after every epoch (epoch 0: at initialisation).

![NCC accuracy over training (test, embedding)](ncc_over_epochs.png)

[SVG](ncc_over_epochs.svg)

| epoch | fine | random |
| --- | ---: | ---: |
| 0 | 0.6000 ± 0.0100 | 0.1000 ± 0.0200 |
| 1 | 0.7000 ± 0.0100 | 0.1000 ± 0.0200 |
| 2 | 0.8000 ± 0.0100 | 0.1000 ± 0.0200 (n=2) |

(n=k): a cell over fewer trials than the rest of its column.

## NCC accuracy over layers at the last epoch, per target

Test NCC accuracy of every layer, in network order, at the last epoch.

![NCC accuracy over layers (test, last epoch)](ncc_over_layers.png)

[SVG](ncc_over_layers.svg)

| layer | fine | random |
| --- | ---: | ---: |
| stage1 | 0.7000 ± 0.0100 | 0.1000 ± 0.0200 |
| embedding | 0.8000 ± 0.0100 | 0.1000 ± 0.0200 |

## Semantic vs random targets

Train NCC accuracy at the last epoch, per layer, of the semantic targets and of the random control, and the gaps (each trial's difference, then mean ± std over the trials). A positive gap: the representation clusters by the semantic classes more than by arbitrary classes of the same size. Train, not test: the random partition's test labels are drawn independently of its training classes, so its test accuracy is chance by construction.

| layer | fine | random | fine − random |
| --- | ---: | ---: | ---: |
| stage1 | 0.7000 ± 0.0100 | 0.1000 ± 0.0200 | 0.6000 ± 0.0100 |
| embedding | 0.8000 ± 0.0100 | 0.1000 ± 0.0200 | 0.7000 ± 0.0100 |

## CDNV over layers at the last epoch, per target

Skipped: this sweep has no `cdnv/<target>/<layer>` metrics.

## kNN accuracy over layers at the last epoch, per target

Skipped: this sweep has no `knn_test_acc/<target>/<layer>` metrics.

)md";

TEST(ReportMarkdownTest, SeedsOfOneSweepGiveExactlyThisPage) {
  const Report report = BuildReport(SeedsInputs());
  EXPECT_EQ(report.markdown, kSeedsReport);
  ASSERT_EQ(report.figures.size(), 2u);
  EXPECT_EQ(report.figures[0].stem, "ncc_over_epochs");
  EXPECT_EQ(report.figures[1].stem, "ncc_over_layers");
  EXPECT_THAT(report.figures[0].svg, HasSubstr("<title>NCC accuracy over training (test, "
                                               "embedding)</title>"));
  EXPECT_THAT(report.figures[1].svg, HasSubstr(">stage1</text>"));
}

TEST(ReportMarkdownTest, SectionsWithoutTheirMetricsAreSkippedInOneLine) {
  ReportInputs in = SeedsInputs();
  in.over_epochs.clear_rows();
  in.last_epoch.clear_rows();
  *in.last_epoch.add_rows() = Row({"all"}, 2, "ncc_test_acc/fine/stage1", 0.5, 0.1, 3);
  *in.last_epoch.add_rows() = Row({"all"}, 2, "cdnv/fine/stage1", 2.5, 0.5, 3);
  in.last_epoch_per_trial.clear_rows();
  const Report report = BuildReport(in);
  EXPECT_THAT(report.markdown,
              HasSubstr("## NCC accuracy over training, per target\n\nSkipped: this sweep has "
                        "no `ncc_test_acc/<target>/embedding` metrics.\n\n## NCC accuracy over "
                        "layers at the last epoch, per target\n\nTest NCC"));
  EXPECT_THAT(report.markdown,
              HasSubstr("## Semantic vs random targets\n\nSkipped: this sweep lacks "
                        "`ncc_train_acc` for the `random` target or for both `fine` and "
                        "`coarse`.\n\n## CDNV"));
  EXPECT_THAT(report.markdown, HasSubstr("| layer | fine |\n| --- | ---: |\n| stage1 | 0.5000 ± "
                                         "0.1000 |\n"));
  EXPECT_THAT(report.markdown, HasSubstr("| layer | fine |\n| --- | ---: |\n| stage1 | 2.5000 ± "
                                         "0.5000 |\n"));
  EXPECT_THAT(report.markdown,
              HasSubstr("## kNN accuracy over layers at the last epoch, per target\n\nSkipped: "
                        "this sweep has no `knn_test_acc/<target>/<layer>` metrics.\n"));
  ASSERT_EQ(report.figures.size(), 2u);
  EXPECT_EQ(report.figures[0].stem, "ncc_over_layers");
  EXPECT_EQ(report.figures[1].stem, "cdnv_over_layers");
}

TEST(ReportMarkdownTest, GroupByDrawsOneFigurePerTargetWithALinePerGroup) {
  ReportInputs in = SeedsInputs();
  in.group_by = {"method"};
  in.status.mutable_trials(0)->add_params()->set_path("method");
  in.status.mutable_trials(0)->mutable_params(1)->set_value("vicreg");
  in.status.mutable_trials(1)->add_params()->set_path("method");
  in.status.mutable_trials(1)->mutable_params(1)->set_value("sim|clr");
  in.status.mutable_trials(2)->add_params()->set_path("method");
  in.status.mutable_trials(2)->mutable_params(1)->set_value("vicreg");
  v1::QueryResultsResponse last;
  last.add_group_columns("method");
  // Trials 11 and 13 (vicreg): fine 0.79, 0.81; random 0.08, 0.12. Trial 12: 0.8, 0.1.
  *last.add_rows() = Row({"vicreg"}, 2, "ncc_test_acc/fine/embedding", 0.8, 0.0141, 2);
  *last.add_rows() = Row({"vicreg"}, 2, "ncc_test_acc/random/embedding", 0.1, 0.0283, 2);
  *last.add_rows() = Row({"sim|clr"}, 2, "ncc_test_acc/fine/embedding", 0.8, NAN, 1);
  *last.add_rows() = Row({"sim|clr"}, 2, "ncc_test_acc/random/embedding", 0.1, NAN, 1);
  in.last_epoch = last;
  in.over_epochs = last;
  AddTrainCopies(in.last_epoch);
  const Report report = BuildReport(in);
  std::vector<std::string> stems;
  for (const ReportFigure& f : report.figures) stems.push_back(f.stem);
  EXPECT_THAT(stems, ::testing::ElementsAre("ncc_over_epochs_fine", "ncc_over_epochs_random",
                                            "ncc_over_layers_fine", "ncc_over_layers_random"));
  EXPECT_THAT(report.markdown,
              HasSubstr("trials grouped by `method`; the trials of a group (the other swept "
                        "parameters, e.g. seeds) give mean ± std (sample std, divisor n − 1; the "
                        "mean alone when n = 1). Groups: method=vicreg (n = 2); method=sim\\|clr "
                        "(n = 1). Each view has one figure and table per target"));
  EXPECT_THAT(report.markdown, HasSubstr("### Target fine\n\n![NCC accuracy over layers "
                                         "(test, last epoch), target fine]"
                                         "(ncc_over_layers_fine.png)\n\n[SVG]"
                                         "(ncc_over_layers_fine.svg)\n\n| layer | "
                                         "method=vicreg | method=sim\\|clr |\n| --- | ---: | "
                                         "---: |\n| embedding | 0.8000 ± 0.0141 | 0.8000 |\n"));
  // Gaps from the per-trial rows: vicreg 0.71 and 0.69, sim|clr 0.7.
  EXPECT_THAT(report.markdown, HasSubstr("### method=vicreg\n\n| layer | fine | random | fine − "
                                         "random |\n| --- | ---: | ---: | ---: |\n| embedding | "
                                         "0.8000 ± 0.0141 | 0.1000 ± 0.0283 | 0.7000 ± 0.0141 "
                                         "|\n"));
  EXPECT_THAT(report.markdown, HasSubstr("### method=sim\\|clr\n\n| layer | fine | random | "
                                         "fine − random |\n| --- | ---: | ---: | ---: |\n| "
                                         "embedding | 0.8000 | 0.1000 | 0.7000 |\n"));
}

TEST(ReportMarkdownTest, EscapesMarkupAndFormatsCells) {
  EXPECT_EQ(MarkdownEscape("a|b *c* _d_ [e](f) <g> `h` \\ & ~ #\nx"),
            "a\\|b \\*c\\* \\_d\\_ \\[e\\](f) \\<g\\> \\`h\\` \\\\ \\& \\~ \\# x");
  EXPECT_EQ(MeanStdCell(0.74123, 0.01234, 3), "0.7412 ± 0.0123");
  EXPECT_EQ(MeanStdCell(0.74123, NAN, 1), "0.7412");
  EXPECT_EQ(MeanStdCell(NAN, NAN, 0), "-");
}

}  // namespace
}  // namespace sslsweep
