// Tests of analysis/linear_probe: a hand-computed symmetric case, separable
// data, agreement with logistic regression written the obvious way (plain
// L-BFGS on standardised features, run to convergence), several label sets
// on one probe, invariance to feature scale, constant features, more
// dimensions than rows, chunking, determinism and the precondition checks.

#include "analysis/linear_probe.h"

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
               int64_t num_classes, double spread, uint64_t seed,
               torch::ScalarType type = torch::kFloat32) {
  torch::manual_seed(seed);
  const torch::Tensor means = torch::randn({num_classes, dims});
  Split split;
  split.train_labels = torch::randint(num_classes, {train_rows}, torch::kInt64);
  split.test_labels = torch::randint(num_classes, {test_rows}, torch::kInt64);
  split.train = (means.index_select(0, split.train_labels) +
                 spread * torch::randn({train_rows, dims})).to(type);
  split.test = (means.index_select(0, split.test_labels) +
                spread * torch::randn({test_rows, dims})).to(type);
  return split;
}

// The classifier the probe should fit, written the obvious way:
// standardise with the training rows' statistics, minimise the mean
// cross-entropy + ||W||^2 / (2 N) with autograd and L-BFGS until it stops
// improving, predict the argmax. Returns the test accuracy.
double ReferenceAccuracy(const Split& split, int64_t num_classes) {
  const torch::Tensor x = split.train.to(torch::kFloat64);
  const torch::Tensor mean = x.mean(0);
  const torch::Tensor std = x.std(0, /*unbiased=*/false);
  const torch::Tensor standardised = (x - mean) / std;
  torch::Tensor weights =
      torch::zeros({x.size(1), num_classes}, torch::kFloat64).requires_grad_();
  torch::Tensor bias = torch::zeros({num_classes}, torch::kFloat64).requires_grad_();
  torch::optim::LBFGS solver({weights, bias}, torch::optim::LBFGSOptions(1.0)
                                                  .max_iter(2000)
                                                  .tolerance_grad(1e-10)
                                                  .tolerance_change(1e-14)
                                                  .line_search_fn("strong_wolfe"));
  solver.step([&] {
    solver.zero_grad();
    const torch::Tensor loss =
        torch::nn::functional::cross_entropy(standardised.mm(weights) + bias,
                                             split.train_labels) +
        weights.square().sum() / (2.0 * x.size(0));
    loss.backward();
    return loss;
  });
  torch::NoGradGuard no_grad;
  const torch::Tensor scores =
      ((split.test.to(torch::kFloat64) - mean) / std).mm(weights) + bias;
  return scores.argmax(1).eq(split.test_labels).to(torch::kFloat64).mean().item<double>();
}

LinearProbeOptions Converged() {
  LinearProbeOptions options;
  options.max_iterations = 500;
  return options;
}

// Two mirror-image classes on a line: by symmetry the boundary is at 0, so
// the test points' predictions are known without solving anything.
TEST(LinearProbeTest, SymmetricClassesSplitAtZero) {
  const torch::Tensor train = torch::tensor({-2.0, -1.0, 1.0, 2.0}).unsqueeze(1);
  const torch::Tensor labels = torch::tensor({0, 0, 1, 1}, torch::kInt64);
  const torch::Tensor test = torch::tensor({-0.5, 0.5, 3.0, -0.1}).unsqueeze(1);
  const torch::Tensor test_labels = torch::tensor({0, 1, 1, 1}, torch::kInt64);
  const LinearProbe::Result result =
      LinearProbe(train, test, Converged()).Fit(labels, test_labels, 2);
  EXPECT_DOUBLE_EQ(result.train_accuracy, 1.0);
  EXPECT_DOUBLE_EQ(result.test_accuracy, 0.75);  // -0.1 lies on class 0's side
}

TEST(LinearProbeTest, SeparableClustersAreClassifiedPerfectly) {
  const Split split = Clusters(300, 100, 8, 3, 0.05, 1);
  const LinearProbe::Result result =
      LinearProbe(split.train, split.test).Fit(split.train_labels, split.test_labels, 3);
  EXPECT_DOUBLE_EQ(result.train_accuracy, 1.0);
  EXPECT_DOUBLE_EQ(result.test_accuracy, 1.0);
}

// float64 features take the float64 path; run to convergence, the whitened
// problem has the reference's optimum, hence its predictions.
TEST(LinearProbeTest, MatchesLogisticRegressionWrittenOut) {
  for (uint64_t seed : {2, 3}) {
    SCOPED_TRACE(seed);
    const Split split = Clusters(400, 300, 6, 4, 1.2, seed, torch::kFloat64);
    const double reference = ReferenceAccuracy(split, 4);
    const LinearProbe::Result result = LinearProbe(split.train, split.test, Converged())
                                           .Fit(split.train_labels, split.test_labels, 4);
    EXPECT_NEAR(result.test_accuracy, reference, 1.0 / 300 + 1e-12);
  }
}

// The default: float32 features (bfloat16 rows where native), 30 iterations.
TEST(LinearProbeTest, DefaultIterationsComeCloseToTheOptimum) {
  const Split split = Clusters(2000, 1000, 32, 10, 2.0, 4);
  const double reference = ReferenceAccuracy(split, 10);
  const LinearProbe::Result result =
      LinearProbe(split.train, split.test).Fit(split.train_labels, split.test_labels, 10);
  EXPECT_GT(reference, 0.3);  // neither trivial nor hopeless
  EXPECT_LT(reference, 0.95);
  EXPECT_NEAR(result.test_accuracy, reference, 0.01);
}

TEST(LinearProbeTest, OneProbeServesSeveralLabelSets) {
  const Split split = Clusters(300, 100, 6, 4, 1.0, 5);
  const LinearProbe probe(split.train, split.test);
  const torch::Tensor coarse_train = split.train_labels.remainder(2);
  const torch::Tensor coarse_test = split.test_labels.remainder(2);
  const LinearProbe::Result coarse = probe.Fit(coarse_train, coarse_test, 2);
  const LinearProbe::Result fine = probe.Fit(split.train_labels, split.test_labels, 4);
  const LinearProbe::Result fresh_coarse =
      LinearProbe(split.train, split.test).Fit(coarse_train, coarse_test, 2);
  EXPECT_EQ(coarse.test_accuracy, fresh_coarse.test_accuracy);
  EXPECT_EQ(coarse.train_accuracy, fresh_coarse.train_accuracy);
  EXPECT_GT(fine.test_accuracy, 0.5);
}

TEST(LinearProbeTest, DeterministicAndScaleInvariant) {
  const Split split = Clusters(400, 200, 6, 4, 1.0, 6, torch::kFloat64);
  const LinearProbe::Result first = LinearProbe(split.train, split.test, Converged())
                                        .Fit(split.train_labels, split.test_labels, 4);
  const LinearProbe::Result again = LinearProbe(split.train, split.test, Converged())
                                        .Fit(split.train_labels, split.test_labels, 4);
  EXPECT_EQ(again.test_accuracy, first.test_accuracy);
  EXPECT_EQ(again.train_accuracy, first.train_accuracy);
  // Standardisation: a common scale and offset change nothing.
  const LinearProbe::Result scaled =
      LinearProbe(split.train * 1000.0 + 5.0, split.test * 1000.0 + 5.0, Converged())
          .Fit(split.train_labels, split.test_labels, 4);
  EXPECT_NEAR(scaled.test_accuracy, first.test_accuracy, 1.0 / 200 + 1e-12);
}

TEST(LinearProbeTest, ConstantFeaturesAreHarmless) {
  const Split split = Clusters(300, 100, 6, 3, 1.0, 7, torch::kFloat64);
  const double accuracy = LinearProbe(split.train, split.test, Converged())
                              .Fit(split.train_labels, split.test_labels, 3)
                              .test_accuracy;
  // A constant column and an all-zero column: zero standard deviation.
  const auto padded = [](const torch::Tensor& x) {
    return torch::cat({x, torch::full({x.size(0), 1}, 0.1, torch::kFloat64),
                       torch::zeros({x.size(0), 1}, torch::kFloat64)},
                      1);
  };
  const LinearProbe::Result result =
      LinearProbe(padded(split.train), padded(split.test), Converged())
          .Fit(split.train_labels, split.test_labels, 3);
  EXPECT_FALSE(std::isnan(result.train_accuracy));
  EXPECT_NEAR(result.test_accuracy, accuracy, 1.0 / 100 + 1e-12);
}

TEST(LinearProbeTest, MoreDimensionsThanRows) {
  const Split split = Clusters(30, 20, 60, 2, 0.5, 8);
  const LinearProbe::Result result =
      LinearProbe(split.train, split.test).Fit(split.train_labels, split.test_labels, 2);
  EXPECT_DOUBLE_EQ(result.train_accuracy, 1.0);
  EXPECT_GE(result.test_accuracy, 0.9);
}

TEST(LinearProbeTest, ChunkingDoesNotChangeTheAnswer) {
  const Split split = Clusters(200, 50, 5, 3, 1.0, 9, torch::kFloat64);
  const LinearProbe::Result whole = LinearProbe(split.train, split.test, Converged())
                                        .Fit(split.train_labels, split.test_labels, 3);
  for (int64_t chunk_rows : {1, 7, 199}) {
    SCOPED_TRACE(chunk_rows);
    LinearProbeOptions options = Converged();
    options.chunk_rows = chunk_rows;
    const LinearProbe::Result chunked =
        LinearProbe(split.train, split.test, options)
            .Fit(split.train_labels, split.test_labels, 3);
    EXPECT_NEAR(chunked.train_accuracy, whole.train_accuracy, 1.0 / 200 + 1e-12);
    EXPECT_NEAR(chunked.test_accuracy, whole.test_accuracy, 1.0 / 50 + 1e-12);
  }
}

TEST(LinearProbeTest, NoTestRowsOrLabelsGiveNaN) {
  const Split split = Clusters(100, 10, 4, 2, 1.0, 10);
  const LinearProbe::Result no_rows =
      LinearProbe(split.train, torch::Tensor()).Fit(split.train_labels, split.test_labels, 2);
  EXPECT_TRUE(std::isnan(no_rows.test_accuracy));
  EXPECT_FALSE(std::isnan(no_rows.train_accuracy));
  const LinearProbe::Result no_labels =
      LinearProbe(split.train, split.test).Fit(split.train_labels, torch::Tensor(), 2);
  EXPECT_TRUE(std::isnan(no_labels.test_accuracy));
}

TEST(LinearProbeTest, RejectsBadInput) {
  const torch::Tensor train = torch::randn({10, 3});
  EXPECT_THROW(LinearProbe(torch::randn({1, 3}), torch::Tensor()), c10::Error);
  EXPECT_THROW(LinearProbe(train, torch::randn({4, 2})), c10::Error);
  LinearProbeOptions options;
  options.inverse_regularization = 0;
  EXPECT_THROW(LinearProbe(train, torch::Tensor(), options), c10::Error);
  options = LinearProbeOptions{};
  options.max_iterations = 0;
  EXPECT_THROW(LinearProbe(train, torch::Tensor(), options), c10::Error);
  const LinearProbe probe(train, torch::Tensor());
  EXPECT_THROW(probe.Fit(torch::full({10}, 2, torch::kInt64), {}, 2),
               c10::Error);  // label out of range
  EXPECT_THROW(probe.Fit(torch::zeros({9}, torch::kInt64), {}, 2),
               c10::Error);  // one label per row
}

}  // namespace
}  // namespace sslsweep
