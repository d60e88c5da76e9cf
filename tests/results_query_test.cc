// Store::QueryResults: aggregation in SQL over a hand-built sweep (2 learning
// rates x 3 seeds, 3 epochs, 4 metrics) against means and standard
// deviations computed here from the listed values; epoch selectors, where
// filters, globs, every error, and injection attempts in every string
// field, which must stay data.

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "coordinator/results_query.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/store_test_util.h"

namespace sslsweep {
namespace {

using ::testing::HasSubstr;

constexpr char kFineEmbedding[] = "ncc_test_acc/fine/embedding";
constexpr char kRandomEmbedding[] = "ncc_test_acc/random/embedding";
constexpr char kFineStage2[] = "ncc_test_acc/fine/stage2";
constexpr char kLoss[] = "loss/total";

// The stored value of each metric, for learning rate index a (0: 1e-2,
// 1: 1e-3), seed s and epoch e. Trial (a=0, s=0) drops at epoch 2, so its
// best epoch (1) is not its final one.
double FineEmbedding(int a, int s, int e) {
  if (a == 0 && s == 0 && e == 2) return 0.55;
  return 0.5 + 0.1 * a + 0.1 * e + 0.01 * s;
}
double RandomEmbedding(int a, int s, int e) { return 0.1 + 0.001 * e + 0.02 * s + 0 * a; }
double FineStage2(int a, int s, int e) { return 0.3 + 0.1 * e + 0.03 * s + 0.05 * a; }
double Loss(int a, int s, int e) { return 10.0 - e - a + s; }

struct Expected {
  double mean;
  double std;  // sample
};
// The reference: two-pass mean and sample standard deviation.
Expected MeanStd(const std::vector<double>& values) {
  double sum = 0;
  for (double v : values) sum += v;
  const double mean = sum / values.size();
  double squares = 0;
  for (double v : values) squares += (v - mean) * (v - mean);
  return {mean, values.size() > 1 ? std::sqrt(squares / (values.size() - 1)) : NAN};
}

constexpr double kTolerance = 1e-12;

class ResultsQueryTest : public StoreTest {
 protected:
  // Trials by index: lr 1e-2 seeds 0..2, then lr 1e-3 seeds 0..2. All run
  // epochs 0..2 and succeed, except the last, still running after epoch 1.
  void SetUp() override {
    StoreTest::SetUp();
    std::vector<NewTrial> trials;
    const char* lrs[] = {"1e-2", "1e-3"};
    for (int a = 0; a < 2; ++a) {
      for (int s = 0; s < 3; ++s) {
        NewTrial trial;
        trial.index = a * 3 + s;
        trial.params = {{"optim.lr", lrs[a]}, {"seed", std::to_string(s)}};
        trial.config_yaml = "{}";
        trial.epochs = 3;
        trials.push_back(trial);
      }
    }
    sweep_id_ = CreateSweep("grid", trials);
    const std::string worker = Register();
    for (int a = 0; a < 2; ++a) {
      for (int s = 0; s < 3; ++s) {
        const TrialRecord trial = Lease(worker);
        trial_ids_.push_back(trial.id);
        const bool last = a == 1 && s == 2;
        for (int e = 0; e < (last ? 2 : 3); ++e) {
          ASSERT_THAT(Report(trial, e,
                             {{kFineEmbedding, FineEmbedding(a, s, e)},
                              {kRandomEmbedding, RandomEmbedding(a, s, e)},
                              {kFineStage2, FineStage2(a, s, e)},
                              {kLoss, Loss(a, s, e)}}),
                      IsOk());
        }
        if (!last) {
          ASSERT_THAT(Finish(trial), IsOk());
        }
      }
    }
    metric_rows_ = Count("metrics");
    ASSERT_EQ(metric_rows_, (5 * 3 + 2) * 4);
  }

  ResultsQuery Query() const {
    ResultsQuery query;
    query.sweep_id = sweep_id_;
    return query;
  }

  AggregatedResults Run(const ResultsQuery& query) {
    absl::StatusOr<AggregatedResults> table = store_->QueryResults(query);
    EXPECT_THAT(table, IsOk());
    return table.value_or(AggregatedResults());
  }

  // The tables are whole and hold what SetUp wrote.
  void ExpectIntact() {
    EXPECT_EQ(Count("metrics"), metric_rows_);
    EXPECT_EQ(Count("trials"), 6);
    EXPECT_EQ(Count("trial_params"), 12);
    EXPECT_EQ(Count("sweeps"), 1);
  }

  int64_t sweep_id_ = 0;
  std::vector<int64_t> trial_ids_;  // by index
  int64_t metric_rows_ = 0;
};

void ExpectRow(const ResultsRow& row, const std::vector<std::string>& group, int32_t epoch,
               const std::string& metric, const std::vector<double>& values) {
  SCOPED_TRACE(metric);
  EXPECT_EQ(row.group, group);
  EXPECT_EQ(row.epoch, epoch);
  EXPECT_EQ(row.metric, metric);
  const Expected expected = MeanStd(values);
  EXPECT_NEAR(row.mean, expected.mean, kTolerance);
  if (std::isnan(expected.std)) {
    EXPECT_TRUE(std::isnan(row.std)) << row.std;
  } else {
    EXPECT_NEAR(row.std, expected.std, kTolerance);
  }
  EXPECT_EQ(row.n, static_cast<int32_t>(values.size()));
  EXPECT_DOUBLE_EQ(row.min, *std::min_element(values.begin(), values.end()));
  EXPECT_DOUBLE_EQ(row.max, *std::max_element(values.begin(), values.end()));
}

TEST_F(ResultsQueryTest, FinalEpochGroupedByLearningRateOverSeeds) {
  ResultsQuery query = Query();
  query.group_by = {"optim.lr"};
  const AggregatedResults table = Run(query);
  EXPECT_EQ(table.group_columns, std::vector<std::string>{"optim.lr"});
  ASSERT_EQ(table.rows.size(), 8u);
  // 1e-3 sorts before 1e-2: every value is a number. Its final epochs
  // differ (2, 2, 1), so its epoch is -1.
  ExpectRow(table.rows[0], {"1e-3"}, -1, kLoss, {Loss(1, 0, 2), Loss(1, 1, 2), Loss(1, 2, 1)});
  ExpectRow(table.rows[1], {"1e-3"}, -1, kFineEmbedding, {0.80, 0.81, 0.72});
  ExpectRow(table.rows[2], {"1e-3"}, -1, kFineStage2,
            {FineStage2(1, 0, 2), FineStage2(1, 1, 2), FineStage2(1, 2, 1)});
  ExpectRow(table.rows[3], {"1e-3"}, -1, kRandomEmbedding,
            {RandomEmbedding(1, 0, 2), RandomEmbedding(1, 1, 2), RandomEmbedding(1, 2, 1)});
  ExpectRow(table.rows[4], {"1e-2"}, 2, kLoss, {8, 9, 10});
  ExpectRow(table.rows[5], {"1e-2"}, 2, kFineEmbedding, {0.55, 0.71, 0.72});
  ExpectRow(table.rows[6], {"1e-2"}, 2, kFineStage2, {0.5, 0.53, 0.56});
  ExpectRow(table.rows[7], {"1e-2"}, 2, kRandomEmbedding, {0.102, 0.122, 0.142});
  // Hand-computed: mean 0.66, deviations -0.11, 0.05, 0.06.
  EXPECT_NEAR(table.rows[5].mean, 0.66, kTolerance);
  EXPECT_NEAR(table.rows[5].std, std::sqrt((0.0121 + 0.0025 + 0.0036) / 2), kTolerance);
  EXPECT_NEAR(table.rows[4].std, 1.0, kTolerance);
}

TEST_F(ResultsQueryTest, NoGroupByGivesOneRowPerTrialKeyedByItsId) {
  ResultsQuery query = Query();
  query.metric_globs = {kFineEmbedding};
  const AggregatedResults table = Run(query);
  EXPECT_EQ(table.group_columns, std::vector<std::string>{"trial_id"});
  ASSERT_EQ(table.rows.size(), 6u);
  const double finals[] = {0.55, 0.71, 0.72, 0.80, 0.81, 0.72};
  for (int i = 0; i < 6; ++i) {
    ExpectRow(table.rows[i], {std::to_string(trial_ids_[i])}, i == 5 ? 1 : 2, kFineEmbedding,
              {finals[i]});
  }
}

TEST_F(ResultsQueryTest, OneGroupAggregatesEveryTrial) {
  ResultsQuery query = Query();
  query.one_group = true;
  query.metric_globs = {kFineEmbedding};
  const AggregatedResults table = Run(query);
  ASSERT_EQ(table.group_columns, std::vector<std::string>{"trials"});
  ASSERT_EQ(table.rows.size(), 1u);
  const ResultsRow& row = table.rows[0];
  EXPECT_EQ(row.group, std::vector<std::string>{"all"});
  EXPECT_EQ(row.epoch, -1);  // the running trial's final epoch is 1, the others' 2
  EXPECT_EQ(row.n, 6);
  const Expected expected = MeanStd({FineEmbedding(0, 0, 2), FineEmbedding(0, 1, 2),
                                     FineEmbedding(0, 2, 2), FineEmbedding(1, 0, 2),
                                     FineEmbedding(1, 1, 2), FineEmbedding(1, 2, 1)});
  EXPECT_NEAR(row.mean, expected.mean, kTolerance);
  EXPECT_NEAR(row.std, expected.std, kTolerance);
  EXPECT_DOUBLE_EQ(row.min, 0.55);
  EXPECT_DOUBLE_EQ(row.max, FineEmbedding(1, 1, 2));
}

TEST_F(ResultsQueryTest, BestEpochIsWhereTheSweepMetricIsBest) {
  ResultsQuery query = Query();
  query.group_by = {"optim.lr"};
  query.epoch = EpochSelection::kBest;
  query.metric_globs = {kFineEmbedding, kLoss};
  const AggregatedResults table = Run(query);
  ASSERT_EQ(table.rows.size(), 4u);
  // lr 1e-3: best epochs 2, 2, 1 (each trial's last); lr 1e-2: 1, 2, 2.
  ExpectRow(table.rows[0], {"1e-3"}, -1, kLoss, {Loss(1, 0, 2), Loss(1, 1, 2), Loss(1, 2, 1)});
  ExpectRow(table.rows[1], {"1e-3"}, -1, kFineEmbedding, {0.80, 0.81, 0.72});
  ExpectRow(table.rows[2], {"1e-2"}, -1, kLoss, {Loss(0, 0, 1), Loss(0, 1, 2), Loss(0, 2, 2)});
  ExpectRow(table.rows[3], {"1e-2"}, -1, kFineEmbedding, {0.60, 0.71, 0.72});
}

TEST_F(ResultsQueryTest, EpochNumberAndAllGiveOneRowPerEpoch) {
  ResultsQuery query = Query();
  query.group_by = {"optim.lr"};
  query.metric_globs = {kFineEmbedding};
  query.epoch = EpochSelection::kNumber;
  query.epoch_number = 0;
  AggregatedResults table = Run(query);
  ASSERT_EQ(table.rows.size(), 2u);
  ExpectRow(table.rows[0], {"1e-3"}, 0, kFineEmbedding, {0.60, 0.61, 0.62});
  ExpectRow(table.rows[1], {"1e-2"}, 0, kFineEmbedding, {0.50, 0.51, 0.52});
  EXPECT_NEAR(table.rows[0].std, 0.01, kTolerance);

  query.epoch_number = 7;  // no trial got there
  EXPECT_TRUE(Run(query).rows.empty());

  query.epoch = EpochSelection::kAll;
  table = Run(query);
  ASSERT_EQ(table.rows.size(), 6u);
  ExpectRow(table.rows[0], {"1e-3"}, 0, kFineEmbedding, {0.60, 0.61, 0.62});
  ExpectRow(table.rows[1], {"1e-3"}, 1, kFineEmbedding, {0.70, 0.71, 0.72});
  ExpectRow(table.rows[2], {"1e-3"}, 2, kFineEmbedding, {0.80, 0.81});  // the last runs
  ExpectRow(table.rows[3], {"1e-2"}, 0, kFineEmbedding, {0.50, 0.51, 0.52});
  ExpectRow(table.rows[4], {"1e-2"}, 1, kFineEmbedding, {0.60, 0.61, 0.62});
  ExpectRow(table.rows[5], {"1e-2"}, 2, kFineEmbedding, {0.55, 0.71, 0.72});
}

TEST_F(ResultsQueryTest, GroupByTwoParametersAndWhereFilters) {
  ResultsQuery query = Query();
  query.group_by = {"seed", "optim.lr"};
  query.metric_globs = {kLoss};
  query.where = {{"optim.lr", "0.01"}};  // the number of the stored "1e-2"
  AggregatedResults table = Run(query);
  ASSERT_EQ(table.rows.size(), 3u);
  for (int s = 0; s < 3; ++s) {
    ExpectRow(table.rows[s], {std::to_string(s), "1e-2"}, 2, kLoss, {Loss(0, s, 2)});
  }

  query.group_by = {"optim.lr"};
  query.where = {{"seed", "1"}, {"optim.lr", "1e-3"}};
  table = Run(query);
  ASSERT_EQ(table.rows.size(), 1u);
  ExpectRow(table.rows[0], {"1e-3"}, 2, kLoss, {Loss(1, 1, 2)});
}

TEST_F(ResultsQueryTest, StatesFilterLeavesTheRunningTrialOut) {
  ResultsQuery query = Query();
  query.group_by = {"optim.lr"};
  query.metric_globs = {kFineEmbedding};
  query.states = {TrialState::kSucceeded};
  const AggregatedResults table = Run(query);
  ASSERT_EQ(table.rows.size(), 2u);
  ExpectRow(table.rows[0], {"1e-3"}, 2, kFineEmbedding, {0.80, 0.81});
  ExpectRow(table.rows[1], {"1e-2"}, 2, kFineEmbedding, {0.55, 0.71, 0.72});

  query.states = {TrialState::kRunning, TrialState::kFailed};
  const AggregatedResults running = Run(query);
  ASSERT_EQ(running.rows.size(), 1u);
  ExpectRow(running.rows[0], {"1e-3"}, 1, kFineEmbedding, {0.72});
}

TEST_F(ResultsQueryTest, GlobsSelectMetricsByTargetAndLayer) {
  ResultsQuery query = Query();
  query.group_by = {"optim.lr"};
  query.where = {{"optim.lr", "1e-2"}};
  auto names = [&](std::vector<std::string> globs) {
    query.metric_globs = std::move(globs);
    std::vector<std::string> out;
    for (const ResultsRow& row : Run(query).rows) out.push_back(row.metric);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(names({"ncc_test_acc/*/embedding"}), (V{kFineEmbedding, kRandomEmbedding}));
  EXPECT_EQ(names({"*/stage2"}), (V{kFineStage2}));
  EXPECT_EQ(names({"loss/*", "*/random/*"}), (V{kLoss, kRandomEmbedding}));
  EXPECT_EQ(names({"ncc_test_acc/[f]ine/*"}), (V{kFineEmbedding, kFineStage2}));
  EXPECT_EQ(names({}), (V{kLoss, kFineEmbedding, kFineStage2, kRandomEmbedding}));
}

TEST_F(ResultsQueryTest, NonNumericGroupsSortByFirstAppearance) {
  std::vector<NewTrial> trials;
  const char* methods[] = {"vicreg", "simclr", "byol"};
  for (int i = 0; i < 3; ++i) {
    NewTrial trial;
    trial.index = i;
    trial.params = {{"method", methods[i]}};
    trial.config_yaml = "{}";
    trials.push_back(trial);
  }
  const int64_t sweep = CreateSweep("methods", trials);
  const std::string worker = Register();
  for (int i = 0; i < 3; ++i) {
    const TrialRecord trial = Lease(worker);
    ASSERT_THAT(Report(trial, 0, {{kLoss, 1.0 + i}}), IsOk());
    ASSERT_THAT(Finish(trial), IsOk());
  }
  ResultsQuery query;
  query.sweep_id = sweep;
  query.group_by = {"method"};
  const AggregatedResults table = Run(query);
  ASSERT_EQ(table.rows.size(), 3u);
  for (int i = 0; i < 3; ++i) ExpectRow(table.rows[i], {methods[i]}, 0, kLoss, {1.0 + i});
}

TEST_F(ResultsQueryTest, UnknownNamesAreErrorsNamingWhatIsValid) {
  ResultsQuery query = Query();
  query.group_by = {"optim.lrr"};
  EXPECT_THAT(store_->QueryResults(query),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "unknown parameter 'optim.lrr'; the sweep's swept parameters are: "
                       "optim.lr, seed"));
  query.group_by = {"seed", "seed"};
  EXPECT_THAT(store_->QueryResults(query),
              StatusIs(absl::StatusCode::kInvalidArgument, "'seed' is given twice"));

  query = Query();
  query.metric_globs = {"ncc_test_acc/*/*", "ncc_tst_acc/*"};
  EXPECT_THAT(store_->QueryResults(query),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "'ncc_tst_acc/*' matches no metric of sweep"));
  EXPECT_THAT(store_->QueryResults(query),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "metrics: ncc_test_acc; targets: fine, random; layers: embedding, "
                       "stage2; others: loss/total)"));
  EXPECT_THAT(store_->QueryResults(query),
              StatusIs(absl::StatusCode::kInvalidArgument, "loss/total, ncc_test_acc/fine/"));

  query = Query();
  query.where = {{"optim.lrr", "1e-2"}};
  EXPECT_THAT(store_->QueryResults(query),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "where 'optim.lrr=1e-2': unknown parameter 'optim.lrr'; the sweep's "
                       "swept parameters are: optim.lr, seed"));
  query.where = {{"optim.lr", "0.5"}};
  EXPECT_THAT(store_->QueryResults(query),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "has optim.lr=0.5; its values are: 1e-2, 1e-3"));

  query = Query();
  query.sweep_id = sweep_id_ + 1;
  EXPECT_THAT(store_->QueryResults(query), StatusIs(absl::StatusCode::kNotFound, "no sweep"));
}

TEST_F(ResultsQueryTest, BestNeedsTheSweepsMetric) {
  NewSweep sweep = MakeSweep("no metric");
  sweep.metric_name = "";
  sweep.metric_goal = "";
  absl::StatusOr<int64_t> id = store_->CreateSweep(sweep, MakeTrials(1), 1000);
  ASSERT_THAT(id, IsOk());
  ResultsQuery query;
  query.sweep_id = *id;
  query.epoch = EpochSelection::kBest;
  EXPECT_THAT(store_->QueryResults(query),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "epoch 'best' needs the sweep's metric"));
  // A sweep without metrics yet has no rows, and no glob can match.
  query.epoch = EpochSelection::kFinal;
  EXPECT_TRUE(Run(query).rows.empty());
  query.metric_globs = {"*"};
  EXPECT_THAT(store_->QueryResults(query),
              StatusIs(absl::StatusCode::kInvalidArgument, "has no metrics yet"));
}

TEST_F(ResultsQueryTest, InjectionAttemptsStayData) {
  const std::vector<std::string> attacks = {
      "'; DROP TABLE metrics; --", ") OR 1=1 --", "x' OR '1'='1", "*') OR 1=1 --",
      "\"; DELETE FROM trials; --"};
  for (const std::string& attack : attacks) {
    SCOPED_TRACE(attack);
    ResultsQuery query = Query();
    query.metric_globs = {attack};
    EXPECT_THAT(store_->QueryResults(query),
                StatusIs(absl::StatusCode::kInvalidArgument, "matches no metric"));
    query = Query();
    query.group_by = {attack};
    EXPECT_THAT(store_->QueryResults(query),
                StatusIs(absl::StatusCode::kInvalidArgument, "unknown parameter"));
    query = Query();
    query.where = {{attack, "1e-2"}};
    EXPECT_THAT(store_->QueryResults(query),
                StatusIs(absl::StatusCode::kInvalidArgument, "unknown parameter"));
    query.where = {{"optim.lr", attack}};
    EXPECT_THAT(store_->QueryResults(query),
                StatusIs(absl::StatusCode::kInvalidArgument, "its values are: 1e-2, 1e-3"));
    query.where = {{"optim.lr", "1e-2' OR 1=1 --"}};
    EXPECT_THAT(store_->QueryResults(query),
                StatusIs(absl::StatusCode::kInvalidArgument, "its values are"));
    ExpectIntact();
  }
}

TEST_F(ResultsQueryTest, StoredValuesThatLookLikeSqlAreGroupKeys) {
  const std::string hostile = "'); DROP TABLE metrics; --";
  NewTrial trial;
  trial.params = {{"tag", hostile}};
  trial.config_yaml = "{}";
  const int64_t sweep = CreateSweep("hostile", {trial});
  const TrialRecord leased = Lease(Register());
  ASSERT_THAT(Report(leased, 0, {{kLoss, 2.5}}), IsOk());
  ResultsQuery query;
  query.sweep_id = sweep;
  query.group_by = {"tag"};
  query.where = {{"tag", hostile}};
  const AggregatedResults table = Run(query);
  ASSERT_EQ(table.rows.size(), 1u);
  ExpectRow(table.rows[0], {hostile}, 0, kLoss, {2.5});
  EXPECT_EQ(Count("metrics"), metric_rows_ + 1);
}

}  // namespace
}  // namespace sslsweep
