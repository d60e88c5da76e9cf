// Tests of the SSL losses and the projector (worker/trainer/*_loss.h,
// projector.h): each loss against its published formula worked out with
// loops over plain numbers, and the projector's layers and taps.
// ssl_method_test.cc covers the methods behind the SslMethod interface.

#include "worker/trainer/ssl_method.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/trainer/backbone.h"
#include "worker/trainer/barlow_twins_loss.h"
#include "worker/trainer/byol.h"
#include "worker/trainer/byol_loss.h"
#include "worker/trainer/projector.h"
#include "worker/trainer/simclr_loss.h"
#include "worker/trainer/vicreg_loss.h"
#include "worker/trial_config.h"

namespace sslsweep {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Matrix = std::vector<std::vector<double>>;

torch::Tensor ToTensor(const Matrix& m) {
  torch::Tensor t = torch::empty(
      {static_cast<int64_t>(m.size()), static_cast<int64_t>(m[0].size())},
      torch::kFloat64);
  for (size_t i = 0; i < m.size(); ++i) {
    for (size_t j = 0; j < m[i].size(); ++j) t[i][j] = m[i][j];
  }
  return t;
}

Matrix Centred(const Matrix& m) {
  Matrix c = m;
  for (size_t j = 0; j < m[0].size(); ++j) {
    double mean = 0;
    for (const auto& row : m) mean += row[j];
    mean /= m.size();
    for (auto& row : c) row[j] -= mean;
  }
  return c;
}

double Dot(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += a[i] * b[i];
  return sum;
}

double Cosine(const std::vector<double>& a, const std::vector<double>& b) {
  return Dot(a, b) / std::sqrt(Dot(a, a) * Dot(b, b));
}

// Two views of four samples in three dimensions, used by every loss.
const Matrix kX = {
    {0.1, 2.0, -1.0}, {0.3, -1.5, 0.5}, {-0.2, 0.7, 1.5}, {0.4, -0.9, -0.3}};
const Matrix kY = {
    {0.0, 1.0, 0.2}, {0.5, -2.5, 0.1}, {-0.1, 1.7, 0.9}, {0.2, 0.3, -0.6}};

// ---- VICReg ----------------------------------------------------------------

double HingeOnStdByLoops(const Matrix& m) {
  const Matrix c = Centred(m);
  const size_t n = m.size(), d = m[0].size();
  double sum = 0;
  for (size_t j = 0; j < d; ++j) {
    double var = 0;
    for (size_t i = 0; i < n; ++i) var += c[i][j] * c[i][j];
    var /= (n - 1);
    sum += std::max(0.0, 1.0 - std::sqrt(var + 1e-4));
  }
  return sum / d;
}

double OffDiagonalByLoops(const Matrix& m) {
  const Matrix c = Centred(m);
  const size_t n = m.size(), d = m[0].size();
  double sum = 0;
  for (size_t j = 0; j < d; ++j) {
    for (size_t k = 0; k < d; ++k) {
      if (j == k) continue;
      double cov = 0;
      for (size_t i = 0; i < n; ++i) cov += c[i][j] * c[i][k];
      cov /= (n - 1);
      sum += cov * cov;
    }
  }
  return sum / d;
}

TEST(VicregLossTest, MatchesLoopsTermByTerm) {
  // Column 0 varies little (std < 1, the hinge is active), column 1 a lot
  // (std > 1, the hinge is zero).
  const Matrix& x = kX;
  const Matrix& y = kY;
  double mse = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    for (size_t j = 0; j < x[0].size(); ++j) {
      mse += (x[i][j] - y[i][j]) * (x[i][j] - y[i][j]);
    }
  }
  mse /= x.size() * x[0].size();
  const double variance = HingeOnStdByLoops(x) / 2 + HingeOnStdByLoops(y) / 2;
  const double covariance = OffDiagonalByLoops(x) + OffDiagonalByLoops(y);
  ASSERT_GT(variance, 0.1);  // the case exercises the hinge
  ASSERT_GT(covariance, 0.1);

  const VicregLossOptions options{2.0, 3.0, 5.0};
  const VicregLossTerms terms = VicregLoss(ToTensor(x), ToTensor(y), options);
  EXPECT_NEAR(terms.invariance.item<double>(), mse, 1e-12);
  EXPECT_NEAR(terms.variance.item<double>(), variance, 1e-12);
  EXPECT_NEAR(terms.covariance.item<double>(), covariance, 1e-12);
  EXPECT_NEAR(terms.total.item<double>(),
              2.0 * mse + 3.0 * variance + 5.0 * covariance, 1e-11);
}

TEST(VicregLossTest, DefaultsAreTheOfficialCoefficients) {
  const VicregLossOptions options;
  EXPECT_EQ(options.sim_coeff, 25.0);
  EXPECT_EQ(options.std_coeff, 25.0);
  EXPECT_EQ(options.cov_coeff, 1.0);
  EXPECT_EQ(options.std_epsilon, 1e-4);
}

TEST(VicregLossTest, RejectsMismatchedShapes) {
  EXPECT_THROW(VicregLoss(torch::zeros({4, 3}), torch::zeros({4, 2})),
               c10::Error);
  EXPECT_THROW(VicregLoss(torch::zeros({1, 3}), torch::zeros({1, 3})),
               c10::Error);
}

// ---- SimCLR NT-Xent --------------------------------------------------------

double NtXentByLoops(const Matrix& z1, const Matrix& z2, double temperature) {
  Matrix u = z1;
  u.insert(u.end(), z2.begin(), z2.end());
  const size_t n = z1.size(), two_n = u.size();
  double sum = 0;
  for (size_t i = 0; i < two_n; ++i) {
    const size_t positive = i < n ? i + n : i - n;
    double partition = 0;
    for (size_t k = 0; k < two_n; ++k) {
      if (k != i) partition += std::exp(Cosine(u[i], u[k]) / temperature);
    }
    sum += -Cosine(u[i], u[positive]) / temperature + std::log(partition);
  }
  return sum / two_n;
}

TEST(NtXentLossTest, TwoPairsByHand) {
  // Samples a, b and their second views a' = a, b' = b, with a . b = 0. For
  // each of the four, the logits over the other three are 0, 1/T, 0 with
  // the positive at 1/T = 2: loss = -2 + log(1 + e^2 + 1).
  const Matrix z = {{1.0, 0.0}, {0.0, 1.0}};
  EXPECT_NEAR(NtXentLoss(ToTensor(z), ToTensor(z), 0.5).item<double>(),
              std::log(2.0 + std::exp(2.0)) - 2.0, 1e-12);
  EXPECT_NEAR(std::log(2.0 + std::exp(2.0)) - 2.0, 0.2395447, 1e-6);
}

TEST(NtXentLossTest, MatchesLoops) {
  for (const double temperature : {0.5, 0.1, 2.0}) {
    SCOPED_TRACE(temperature);
    EXPECT_NEAR(
        NtXentLoss(ToTensor(kX), ToTensor(kY), temperature).item<double>(),
        NtXentByLoops(kX, kY, temperature), 1e-12);
  }
}

TEST(NtXentLossTest, IgnoresTheNorm) {
  EXPECT_NEAR(NtXentLoss(ToTensor(kX) * 7.0, ToTensor(kY), 0.5).item<double>(),
              NtXentByLoops(kX, kY, 0.5), 1e-12);
}

TEST(NtXentLossTest, RejectsBadArguments) {
  EXPECT_THROW(NtXentLoss(torch::ones({4, 3}), torch::ones({4, 2}), 0.5),
               c10::Error);
  EXPECT_THROW(NtXentLoss(torch::ones({4, 3}), torch::ones({4, 3}), 0.0),
               c10::Error);
}

// ---- Barlow Twins ----------------------------------------------------------

// Standardised per column with the biased variance, as BatchNorm1d.
Matrix StandardisedByLoops(const Matrix& m) {
  Matrix s = Centred(m);
  for (size_t j = 0; j < m[0].size(); ++j) {
    double var = 0;
    for (const auto& row : s) var += row[j] * row[j];
    var /= m.size();
    for (auto& row : s) row[j] /= std::sqrt(var + 1e-5);
  }
  return s;
}

TEST(BarlowTwinsLossTest, MatchesLoops) {
  const Matrix a = StandardisedByLoops(kX);
  const Matrix b = StandardisedByLoops(kY);
  const size_t n = a.size(), d = a[0].size();
  double on_diagonal = 0, off_diagonal = 0;
  for (size_t i = 0; i < d; ++i) {
    for (size_t j = 0; j < d; ++j) {
      double c = 0;
      for (size_t k = 0; k < n; ++k) c += a[k][i] * b[k][j];
      c /= n;
      if (i == j) {
        on_diagonal += (1 - c) * (1 - c);
      } else {
        off_diagonal += c * c;
      }
    }
  }
  ASSERT_GT(on_diagonal, 0.1);
  ASSERT_GT(off_diagonal, 0.1);

  BarlowTwinsLossOptions options;
  options.lambda = 0.25;
  const BarlowTwinsLossTerms terms =
      BarlowTwinsLoss(ToTensor(kX), ToTensor(kY), options);
  EXPECT_NEAR(terms.on_diagonal.item<double>(), on_diagonal, 1e-12);
  EXPECT_NEAR(terms.off_diagonal.item<double>(), off_diagonal, 1e-12);
  EXPECT_NEAR(terms.total.item<double>(), on_diagonal + 0.25 * off_diagonal,
              1e-12);
  EXPECT_EQ(BarlowTwinsLossOptions().lambda, 5e-3);
}

TEST(BarlowTwinsLossTest, IdenticalDecorrelatedViewsCostNothing) {
  // Columns of zero mean, equal variance and zero covariance: c = I.
  const Matrix z = {{1, 1}, {1, -1}, {-1, 1}, {-1, -1}};
  const BarlowTwinsLossTerms terms = BarlowTwinsLoss(ToTensor(z), ToTensor(z));
  EXPECT_NEAR(terms.off_diagonal.item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(terms.on_diagonal.item<double>(), 0.0, 1e-9);  // eps 1e-5
}

TEST(BarlowTwinsLossTest, RejectsBadShapes) {
  EXPECT_THROW(BarlowTwinsLoss(torch::ones({4, 3}), torch::ones({3, 3})),
               c10::Error);
  EXPECT_THROW(BarlowTwinsLoss(torch::ones({1, 3}), torch::ones({1, 3})),
               c10::Error);
}

// ---- BYOL regression -------------------------------------------------------

TEST(ByolRegressionLossTest, MatchesLoops) {
  double sum = 0;
  for (size_t i = 0; i < kX.size(); ++i) sum += 2 - 2 * Cosine(kX[i], kY[i]);
  EXPECT_NEAR(ByolRegressionLoss(ToTensor(kX), ToTensor(kY)).item<double>(),
              sum / kX.size(), 1e-12);
}

TEST(ByolRegressionLossTest, IdenticalIsZeroOppositeIsFourPerDirection) {
  const torch::Tensor p = ToTensor(kX);
  EXPECT_NEAR(ByolRegressionLoss(p, 3.0 * p).item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(ByolRegressionLoss(p, -p).item<double>(), 4.0, 1e-12);
  // Symmetrised as the method does: two directions, 8 at the worst.
  EXPECT_NEAR(
      (ByolRegressionLoss(p, -p) + ByolRegressionLoss(-p, p)).item<double>(),
      8.0, 1e-12);
}

// ---- Projector -------------------------------------------------------------

TEST(ProjectorTest, LayersShapesAndTaps) {
  const torch::Tensor embedding = torch::rand({5, 16});
  // Per layer count: parameters (Linear weights and biases, BN weights and
  // biases; the last Linear has no bias).
  const std::vector<size_t> parameter_counts = {1, 5, 9};
  for (int64_t layers = 1; layers <= 3; ++layers) {
    SCOPED_TRACE(layers);
    Projector projector(ProjectorOptions{16, 32, 8, layers});
    EXPECT_EQ(projector->parameters().size(), parameter_counts[layers - 1]);
    projector->eval();
    const auto taps = projector->ForwardTaps(embedding);
    ASSERT_EQ(taps.size(), static_cast<size_t>(layers));
    std::vector<std::string> names;
    for (int64_t i = 0; i < layers; ++i) {
      names.push_back(taps[i].key());
      EXPECT_EQ(taps[i].key(), "projector" + std::to_string(i + 1));
      const int64_t width = i + 1 == layers ? 8 : 32;
      EXPECT_EQ(taps[i].value().sizes(), (std::vector<int64_t>{5, width}));
      if (i + 1 < layers) {
        EXPECT_GE(taps[i].value().min().item<float>(), 0);  // after ReLU
      }
    }
    EXPECT_EQ(names, projector->tap_names());
    EXPECT_TRUE(
        torch::equal(taps[layers - 1].value(), projector->forward(embedding)));
  }
}

TEST(ProjectorTest, RejectsZeroLayers) {
  EXPECT_THROW(Projector(ProjectorOptions{16, 32, 8, 0}), c10::Error);
}

}  // namespace
}  // namespace sslsweep
