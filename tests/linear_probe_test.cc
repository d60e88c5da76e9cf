// Tests of analysis/linear_probe: separable data, agreement with the ridge
// classifier written out directly, the choice of strength, constant
// features, more dimensions than rows, chunking, and the precondition checks.

#include "analysis/linear_probe.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace sslsweep {
namespace {

struct Split {
  torch::Tensor train, train_labels, test, test_labels;
};

// Gaussian clusters around random means; `spread` sets how much they overlap.
Split Clusters(int64_t train_rows, int64_t test_rows, int64_t dims,
               int64_t num_classes, double spread, uint64_t seed) {
  torch::manual_seed(seed);
  const torch::Tensor means = torch::randn({num_classes, dims});
  Split split;
  split.train_labels = torch::randint(num_classes, {train_rows}, torch::kInt64);
  split.test_labels = torch::randint(num_classes, {test_rows}, torch::kInt64);
  split.train = means.index_select(0, split.train_labels) +
                spread * torch::randn({train_rows, dims});
  split.test = means.index_select(0, split.test_labels) +
               spread * torch::randn({test_rows, dims});
  return split;
}

// The classifier the probe should fit, written the obvious way: standardise
// with the training rows' statistics, centre, solve the ridge system
// (Xc^T Xc + ridge N I) W = Xc^T Yc, add the intercept, predict the argmax.
double ReferenceAccuracy(const torch::Tensor& train,
                         const torch::Tensor& labels,
                         const torch::Tensor& queries,
                         const torch::Tensor& query_labels, int64_t num_classes,
                         double ridge) {
  const torch::Tensor x = train.to(torch::kFloat64);
  const torch::Tensor mean = x.mean(0);
  const torch::Tensor std = x.std(0, /*unbiased=*/false);
  const torch::Tensor standardised = (x - mean) / std;
  const torch::Tensor one_hot =
      torch::one_hot(labels, num_classes).to(torch::kFloat64);
  const torch::Tensor xc = standardised - standardised.mean(0);
  const torch::Tensor yc = one_hot - one_hot.mean(0);
  const int64_t dims = x.size(1);
  const torch::Tensor weights = torch::linalg_solve(
      xc.t().mm(xc) + ridge * x.size(0) * torch::eye(dims, torch::kFloat64),
      xc.t().mm(yc));
  const torch::Tensor bias =
      one_hot.mean(0) - standardised.mean(0).matmul(weights);
  const torch::Tensor scores =
      ((queries.to(torch::kFloat64) - mean) / std).mm(weights) + bias;
  return scores.argmax(1)
      .eq(query_labels)
      .to(torch::kFloat64)
      .mean()
      .item<double>();
}

LinearProbeOptions OneStrength(double ridge) {
  LinearProbeOptions options;
  options.ridge_grid = {ridge};
  return options;
}

TEST(LinearProbeTest, SeparableClustersAreClassifiedPerfectly) {
  const Split split = Clusters(300, 100, 8, 3, 0.05, 1);
  const LinearProbe probe(split.train, split.test);
  const LinearProbe::Result result =
      probe.Fit(split.train_labels, split.test_labels, 3);
  EXPECT_DOUBLE_EQ(result.train_accuracy, 1.0);
  EXPECT_DOUBLE_EQ(result.test_accuracy, 1.0);
  // Every strength gets the held-out rows right; ties go to the strongest.
  EXPECT_DOUBLE_EQ(result.ridge, 10.0);
}

TEST(LinearProbeTest, MatchesTheRidgeClassifierWrittenOut) {
  const Split split = Clusters(400, 200, 10, 4, 1.2, 2);
  for (double ridge : {1e-4, 0.1, 3.0}) {
    SCOPED_TRACE(ridge);
    const LinearProbe probe(split.train, split.test, OneStrength(ridge));
    const LinearProbe::Result result =
        probe.Fit(split.train_labels, split.test_labels, 4);
    EXPECT_DOUBLE_EQ(result.ridge, ridge);
    const double train_accuracy =
        ReferenceAccuracy(split.train, split.train_labels, split.train,
                          split.train_labels, 4, ridge);
    EXPECT_DOUBLE_EQ(result.train_accuracy, train_accuracy);
    EXPECT_DOUBLE_EQ(
        result.test_accuracy,
        ReferenceAccuracy(split.train, split.train_labels, split.test,
                          split.test_labels, 4, ridge));
    // Overlapping clusters: neither chance nor perfect.
    EXPECT_GT(train_accuracy, 0.5);
    EXPECT_LT(train_accuracy, 1.0);
  }
}

TEST(LinearProbeTest, ChoosesAStrengthFromTheGridAndRefits) {
  const Split split = Clusters(400, 200, 10, 4, 1.2, 3);
  const LinearProbe probe(split.train, split.test);
  const LinearProbe::Result result =
      probe.Fit(split.train_labels, split.test_labels, 4);
  const std::vector<double> grid = LinearProbeOptions{}.ridge_grid;
  EXPECT_NE(std::find(grid.begin(), grid.end(), result.ridge), grid.end());
  EXPECT_DOUBLE_EQ(
      result.test_accuracy,
      ReferenceAccuracy(split.train, split.train_labels, split.test,
                        split.test_labels, 4, result.ridge));
  // The same seed gives the same split, hence the same answer.
  const LinearProbe::Result again =
      LinearProbe(split.train, split.test)
          .Fit(split.train_labels, split.test_labels, 4);
  EXPECT_EQ(again.ridge, result.ridge);
  EXPECT_EQ(again.test_accuracy, result.test_accuracy);
}

TEST(LinearProbeTest, OneProbeServesSeveralLabelSets) {
  const Split split = Clusters(300, 100, 6, 4, 1.0, 4);
  const LinearProbe probe(split.train, split.test, OneStrength(0.01));
  const torch::Tensor coarse_train = split.train_labels.remainder(2);
  const torch::Tensor coarse_test = split.test_labels.remainder(2);
  EXPECT_DOUBLE_EQ(probe.Fit(coarse_train, coarse_test, 2).test_accuracy,
                   ReferenceAccuracy(split.train, coarse_train, split.test,
                                     coarse_test, 2, 0.01));
  EXPECT_DOUBLE_EQ(
      probe.Fit(split.train_labels, split.test_labels, 4).test_accuracy,
      ReferenceAccuracy(split.train, split.train_labels, split.test,
                        split.test_labels, 4, 0.01));
}

TEST(LinearProbeTest, ConstantFeaturesAreHarmless) {
  const Split split = Clusters(300, 100, 6, 3, 1.0, 5);
  const double accuracy = LinearProbe(split.train, split.test)
                              .Fit(split.train_labels, split.test_labels, 3)
                              .test_accuracy;
  // A constant column and an all-zero column: zero standard deviation.
  const auto padded = [](const torch::Tensor& x) {
    return torch::cat(
        {x, torch::full({x.size(0), 1}, 0.1f), torch::zeros({x.size(0), 1})},
        1);
  };
  const LinearProbe::Result result =
      LinearProbe(padded(split.train), padded(split.test))
          .Fit(split.train_labels, split.test_labels, 3);
  EXPECT_FALSE(std::isnan(result.train_accuracy));
  EXPECT_DOUBLE_EQ(result.test_accuracy, accuracy);
}

TEST(LinearProbeTest, MoreDimensionsThanRows) {
  const Split split = Clusters(30, 20, 60, 2, 0.5, 6);
  const LinearProbe probe(split.train, split.test, OneStrength(1e-3));
  const LinearProbe::Result result =
      probe.Fit(split.train_labels, split.test_labels, 2);
  EXPECT_DOUBLE_EQ(result.train_accuracy, 1.0);
  EXPECT_DOUBLE_EQ(result.test_accuracy,
                   ReferenceAccuracy(split.train, split.train_labels,
                                     split.test, split.test_labels, 2, 1e-3));
}

TEST(LinearProbeTest, ChunkingDoesNotChangeTheAnswer) {
  const Split split = Clusters(200, 50, 5, 3, 1.0, 7);
  const LinearProbe::Result whole =
      LinearProbe(split.train, split.test)
          .Fit(split.train_labels, split.test_labels, 3);
  for (int64_t chunk_rows : {1, 7, 199}) {
    SCOPED_TRACE(chunk_rows);
    LinearProbeOptions options;
    options.chunk_rows = chunk_rows;
    const LinearProbe::Result chunked =
        LinearProbe(split.train, split.test, options)
            .Fit(split.train_labels, split.test_labels, 3);
    EXPECT_EQ(chunked.ridge, whole.ridge);
    EXPECT_EQ(chunked.train_accuracy, whole.train_accuracy);
    EXPECT_EQ(chunked.test_accuracy, whole.test_accuracy);
  }
}

TEST(LinearProbeTest, NoTestRowsOrLabelsGiveNaN) {
  const Split split = Clusters(100, 10, 4, 2, 1.0, 8);
  const LinearProbe::Result no_rows =
      LinearProbe(split.train, torch::Tensor())
          .Fit(split.train_labels, split.test_labels, 2);
  EXPECT_TRUE(std::isnan(no_rows.test_accuracy));
  EXPECT_FALSE(std::isnan(no_rows.train_accuracy));
  const LinearProbe::Result no_labels =
      LinearProbe(split.train, split.test)
          .Fit(split.train_labels, torch::Tensor(), 2);
  EXPECT_TRUE(std::isnan(no_labels.test_accuracy));
}

TEST(LinearProbeTest, RejectsBadInput) {
  const torch::Tensor train = torch::randn({10, 3});
  EXPECT_THROW(LinearProbe(torch::randn({1, 3}), torch::Tensor()), c10::Error);
  EXPECT_THROW(LinearProbe(train, torch::randn({4, 2})), c10::Error);
  LinearProbeOptions options;
  options.ridge_grid = {};
  EXPECT_THROW(LinearProbe(train, torch::Tensor(), options), c10::Error);
  options.ridge_grid = {1.0, -1.0};
  EXPECT_THROW(LinearProbe(train, torch::Tensor(), options), c10::Error);
  options = LinearProbeOptions{};
  options.holdout_fraction = 1.0;
  EXPECT_THROW(LinearProbe(train, torch::Tensor(), options), c10::Error);
  const LinearProbe probe(train, torch::Tensor());
  EXPECT_THROW(probe.Fit(torch::full({10}, 2, torch::kInt64), {}, 2),
               c10::Error);  // label out of range
  EXPECT_THROW(probe.Fit(torch::zeros({9}, torch::kInt64), {}, 2),
               c10::Error);  // one label per row
}

}  // namespace
}  // namespace sslsweep
