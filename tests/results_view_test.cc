// `sslsweep results` views, exactly as printed, from hand-built coordinator
// answers (QueryResultsResponse): per trial, grouped (mean ± std (n)),
// pivoted by layer, target and epoch, sorted, in every format.

#include <cmath>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "cli/output_table.h"
#include "cli/results_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sslsweep {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

void AddRow(v1::QueryResultsResponse& results, const std::string& group, int epoch,
            const std::string& metric, double mean, double std, int n) {
  v1::AggregatedResultRow* row = results.add_rows();
  row->add_group(group);
  row->set_epoch(epoch);
  row->set_metric(metric);
  row->set_mean(mean);
  row->set_std(std);
  row->set_n(n);
  row->set_min(mean);
  row->set_max(mean);
}

// Two trials at their final epoch, as the coordinator answers without group_by.
v1::QueryResultsResponse PerTrial() {
  v1::QueryResultsResponse results;
  results.add_group_columns("trial_id");
  AddRow(results, "1", 2, "loss/total", 1.5, NAN, 1);
  AddRow(results, "1", 2, "ncc_test_acc/fine/embedding", 0.75, NAN, 1);
  AddRow(results, "2", 1, "loss/total", 1.25, NAN, 1);
  AddRow(results, "2", 1, "ncc_test_acc/fine/embedding", 0.8125, NAN, 1);
  return results;
}

v1::GetSweepStatusResponse Trials() {
  v1::GetSweepStatusResponse status;
  for (auto [id, state, lr] : {std::tuple{1, v1::TRIAL_SUCCEEDED, "1e-3"},
                               std::tuple{2, v1::TRIAL_PRUNED, "0.01"}}) {
    v1::TrialStatus* t = status.add_trials();
    t->set_trial_id(id);
    t->set_state(state);
    v1::Param* p = t->add_params();
    p->set_path("optim.lr");
    p->set_value(lr);
  }
  return status;
}

// Grouped by optim.lr: three seeds at 0.001, one at 0.01 (std NaN, n 1),
// which lacks ncc_test_acc/coarse/projector1. Only the metrics in `keep`
// (all when empty), in the coordinator's order (group, then metric name).
v1::QueryResultsResponse ByLearningRate(const std::set<std::string>& keep = {}) {
  v1::QueryResultsResponse results;
  results.add_group_columns("optim.lr");
  const auto add = [&](const std::string& lr, const std::string& metric, double mean, double std,
                       int n) {
    if (keep.empty() || keep.count(metric) > 0) AddRow(results, lr, 8, metric, mean, std, n);
  };
  add("0.001", "loss/total", 2.5, 0.25, 3);
  add("0.001", "ncc_test_acc/coarse/embedding", 0.9, 0.01, 3);
  add("0.001", "ncc_test_acc/coarse/projector1", 0.85, 0.02, 3);
  add("0.001", "ncc_test_acc/fine/embedding", 0.7, 0.05, 3);
  add("0.001", "ncc_test_acc/fine/stage1", 0.5, 0.04, 3);
  add("0.01", "loss/total", 3.0, NAN, 1);
  add("0.01", "ncc_test_acc/coarse/embedding", 0.8, NAN, 1);
  add("0.01", "ncc_test_acc/fine/embedding", 0.75, NAN, 1);
  add("0.01", "ncc_test_acc/fine/stage1", 0.6, NAN, 1);
  return results;
}

const std::set<std::string> kTwoMetrics = {"loss/total", "ncc_test_acc/fine/embedding"};

std::string Render(const v1::QueryResultsResponse& results, ResultsViewOptions options,
                   const v1::GetSweepStatusResponse* trials = nullptr) {
  absl::StatusOr<ResultsView> view = BuildResultsView(results, options, trials);
  EXPECT_TRUE(view.ok()) << view.status();
  if (!view.ok()) return "";
  return RenderTable(view->table, options.format);
}

ResultsViewOptions Options(OutputFormat format, ResultsPivot pivot = ResultsPivot::kNone) {
  ResultsViewOptions options;
  options.format = format;
  options.pivot = pivot;
  return options;
}

TEST(ResultsViewTest, PerTrialWithStateAndParameters) {
  const v1::GetSweepStatusResponse trials = Trials();
  EXPECT_EQ(Render(PerTrial(), Options(OutputFormat::kTable), &trials),
            "trial  state      optim.lr  epoch  loss/total  ncc_test_acc/fine/embedding\n"
            "1      succeeded  1e-3      2      1.5000      0.7500\n"
            "2      pruned     0.01      1      1.2500      0.8125\n");
  EXPECT_EQ(Render(PerTrial(), Options(OutputFormat::kCsv), &trials),
            "trial,state,optim.lr,epoch,loss/total,ncc_test_acc/fine/embedding\n"
            "1,succeeded,1e-3,2,1.5,0.75\n"
            "2,pruned,0.01,1,1.25,0.8125\n");
  EXPECT_EQ(Render(PerTrial(), Options(OutputFormat::kJson)),
            R"([
  {
    "trial": 1,
    "epoch": 2,
    "loss/total": 1.5,
    "ncc_test_acc/fine/embedding": 0.75
  },
  {
    "trial": 2,
    "epoch": 1,
    "loss/total": 1.25,
    "ncc_test_acc/fine/embedding": 0.8125
  }
]
)");
}

TEST(ResultsViewTest, GroupedCellsAreMeanStdAndN) {
  EXPECT_EQ(Render(ByLearningRate(kTwoMetrics), Options(OutputFormat::kTable)),
            "optim.lr  epoch  loss/total           ncc_test_acc/fine/embedding\n"
            "0.001     8      2.5000 ± 0.2500 (3)  0.7000 ± 0.0500 (3)\n"
            "0.01      8      3.0000 ± - (1)       0.7500 ± - (1)\n");
}

TEST(ResultsViewTest, GroupedCsvHasMeanStdAndNColumns) {
  EXPECT_EQ(Render(ByLearningRate(kTwoMetrics), Options(OutputFormat::kCsv)),
            "optim.lr,epoch,loss/total.mean,loss/total.std,loss/total.n,"
            "ncc_test_acc/fine/embedding.mean,ncc_test_acc/fine/embedding.std,"
            "ncc_test_acc/fine/embedding.n\n"
            "0.001,8,2.5,0.25,3,0.7,0.05,3\n"
            "0.01,8,3,-,1,0.75,-,1\n");
}

TEST(ResultsViewTest, GroupedJsonHasNumbersAndNullForNoStd) {
  EXPECT_EQ(Render(ByLearningRate({"loss/total"}), Options(OutputFormat::kJson)),
            R"([
  {
    "optim.lr": "0.001",
    "epoch": 8,
    "loss/total.mean": 2.5,
    "loss/total.std": 0.25,
    "loss/total.n": 3
  },
  {
    "optim.lr": "0.01",
    "epoch": 8,
    "loss/total.mean": 3,
    "loss/total.std": null,
    "loss/total.n": 1
  }
]
)");
}

TEST(ResultsViewTest, PivotLayerOrdersLayersAsTheBackboneAndNotesWhatItLeavesOut) {
  absl::StatusOr<ResultsView> view =
      BuildResultsView(ByLearningRate(), Options(OutputFormat::kTable, ResultsPivot::kLayer));
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(RenderTable(view->table, OutputFormat::kTable),
            "optim.lr  epoch  metric        target  stage1               embedding            "
            "projector1\n"
            "0.001     8      ncc_test_acc  fine    0.5000 ± 0.0400 (3)  0.7000 ± 0.0500 (3)  -\n"
            "0.001     8      ncc_test_acc  coarse  -                    0.9000 ± 0.0100 (3)  "
            "0.8500 ± 0.0200 (3)\n"
            "0.01      8      ncc_test_acc  fine    0.6000 ± - (1)       0.7500 ± - (1)       -\n"
            "0.01      8      ncc_test_acc  coarse  -                    0.8000 ± - (1)       -\n");
  EXPECT_THAT(view->notes, ElementsAre("--pivot layer leaves out loss/total (not named "
                                       "<metric>/<target>/<layer>)"));
}

TEST(ResultsViewTest, PivotTargetAsCsv) {
  EXPECT_EQ(Render(ByLearningRate(), Options(OutputFormat::kCsv, ResultsPivot::kTarget)),
            "optim.lr,epoch,metric,layer,fine.mean,fine.std,fine.n,coarse.mean,coarse.std,"
            "coarse.n\n"
            "0.001,8,ncc_test_acc,stage1,0.5,0.04,3,-,-,-\n"
            "0.001,8,ncc_test_acc,embedding,0.7,0.05,3,0.9,0.01,3\n"
            "0.001,8,ncc_test_acc,projector1,-,-,-,0.85,0.02,3\n"
            "0.01,8,ncc_test_acc,stage1,0.6,-,1,-,-,-\n"
            "0.01,8,ncc_test_acc,embedding,0.75,-,1,0.8,-,1\n");
}

TEST(ResultsViewTest, PivotWithoutPivotableMetricsIsAnError) {
  absl::StatusOr<ResultsView> view = BuildResultsView(
      ByLearningRate({"loss/total"}), Options(OutputFormat::kTable, ResultsPivot::kTarget));
  EXPECT_EQ(view.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(view.status().message(),
              HasSubstr("--pivot target needs metrics named <metric>/<target>/<layer>, and the "
                        "selected ones are not: loss/total"));
}

// Every epoch of two trials; the second was pruned after epoch 1.
v1::QueryResultsResponse PerTrialEveryEpoch() {
  v1::QueryResultsResponse results;
  results.add_group_columns("trial_id");
  AddRow(results, "1", 0, "ncc_test_acc/fine/embedding", 0.25, NAN, 1);
  AddRow(results, "1", 1, "loss/total", 1.5, NAN, 1);
  AddRow(results, "1", 1, "ncc_test_acc/fine/embedding", 0.5, NAN, 1);
  AddRow(results, "1", 2, "ncc_test_acc/fine/embedding", 0.75, NAN, 1);
  AddRow(results, "2", 0, "ncc_test_acc/fine/embedding", 0.25, NAN, 1);
  AddRow(results, "2", 1, "ncc_test_acc/fine/embedding", 0.625, NAN, 1);
  return results;
}

TEST(ResultsViewTest, PivotEpochMakesAColumnPerEpoch) {
  ResultsViewOptions options = Options(OutputFormat::kTable, ResultsPivot::kEpoch);
  options.epoch = "all";
  EXPECT_EQ(Render(PerTrialEveryEpoch(), options),
            "trial  metric                       0       1       2\n"
            "1      loss/total                   -       1.5000  -\n"
            "1      ncc_test_acc/fine/embedding  0.2500  0.5000  0.7500\n"
            "2      ncc_test_acc/fine/embedding  0.2500  0.6250  -\n");
  options.format = OutputFormat::kCsv;
  EXPECT_EQ(Render(PerTrialEveryEpoch(), options),
            "trial,metric,0,1,2\n"
            "1,loss/total,-,1.5,-\n"
            "1,ncc_test_acc/fine/embedding,0.25,0.5,0.75\n"
            "2,ncc_test_acc/fine/embedding,0.25,0.625,-\n");
}

TEST(ResultsViewTest, PivotEpochNeedsEveryEpoch) {
  ResultsViewOptions options = Options(OutputFormat::kTable, ResultsPivot::kEpoch);
  options.epoch = "final";
  absl::StatusOr<ResultsView> view = BuildResultsView(PerTrialEveryEpoch(), options);
  EXPECT_EQ(view.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(view.status().message(),
            "--pivot epoch needs the values of every epoch: add --epoch all (--epoch is 'final')");
  EXPECT_EQ(CheckResultsViewOptions(options).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ResultsViewTest, SortsByAMetricAscendingAndDescending) {
  ResultsViewOptions options = Options(OutputFormat::kCsv);
  options.sort_column = "ncc_test_acc/fine/embedding";
  const std::string header =
      "optim.lr,epoch,loss/total.mean,loss/total.std,loss/total.n,"
      "ncc_test_acc/fine/embedding.mean,ncc_test_acc/fine/embedding.std,"
      "ncc_test_acc/fine/embedding.n\n";
  const std::string small = "0.001,8,2.5,0.25,3,0.7,0.05,3\n";
  const std::string big = "0.01,8,3,-,1,0.75,-,1\n";
  EXPECT_EQ(Render(ByLearningRate(kTwoMetrics), options), header + small + big);
  options.descending = true;
  EXPECT_EQ(Render(ByLearningRate(kTwoMetrics), options), header + big + small);
  // A statistic by its suffix; rows without it come last in either direction.
  options.sort_column = "loss/total.std";
  EXPECT_EQ(Render(ByLearningRate(kTwoMetrics), options), header + small + big);
  options.descending = false;
  EXPECT_EQ(Render(ByLearningRate(kTwoMetrics), options), header + small + big);
}

TEST(ResultsViewTest, SortsNumericColumnsAsNumbersAndTextAsText) {
  v1::QueryResultsResponse results;
  results.add_group_columns("trial_id");
  AddRow(results, "2", 1, "loss/total", 1.0, NAN, 1);
  AddRow(results, "10", 1, "loss/total", 2.0, NAN, 1);
  AddRow(results, "9", 1, "loss/total", 3.0, NAN, 1);
  ResultsViewOptions options = Options(OutputFormat::kCsv);
  options.sort_column = "trial";
  options.descending = true;
  EXPECT_EQ(Render(results, options), "trial,epoch,loss/total\n10,1,2\n9,1,3\n2,1,1\n");

  v1::QueryResultsResponse methods;
  methods.add_group_columns("method");
  AddRow(methods, "vicreg", 1, "loss/total", 1.0, 0.5, 2);
  AddRow(methods, "byol", 1, "loss/total", 2.0, 0.5, 2);
  options.sort_column = "method";
  options.descending = false;
  EXPECT_EQ(Render(methods, options),
            "method,epoch,loss/total.mean,loss/total.std,loss/total.n\n"
            "byol,1,2,0.5,2\n"
            "vicreg,1,1,0.5,2\n");
}

TEST(ResultsViewTest, UnknownSortColumnNamesTheValidOnes) {
  ResultsViewOptions options = Options(OutputFormat::kTable);
  options.sort_column = "accuracy";
  absl::StatusOr<ResultsView> view = BuildResultsView(ByLearningRate(kTwoMetrics), options);
  EXPECT_EQ(view.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(view.status().message(),
            "--sort 'accuracy': no such column; the columns are: optim.lr, epoch, loss/total, "
            "ncc_test_acc/fine/embedding (a value column sorts by its mean; add .std or .n to "
            "sort by those)");
}

TEST(ResultsViewTest, ParsesPivotNames) {
  EXPECT_EQ(*ParseResultsPivot(""), ResultsPivot::kNone);
  EXPECT_EQ(*ParseResultsPivot("layer"), ResultsPivot::kLayer);
  EXPECT_EQ(*ParseResultsPivot("target"), ResultsPivot::kTarget);
  EXPECT_EQ(*ParseResultsPivot("epoch"), ResultsPivot::kEpoch);
  EXPECT_EQ(ParseResultsPivot("layers").status().message(),
            "--pivot 'layers': expected layer, target or epoch");
}

}  // namespace
}  // namespace sslsweep
