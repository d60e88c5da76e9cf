// Tests of analysis/class_separation: hand-computed CDNV and NC1, NC1's C x C
// Gram-matrix form against the D x D definition, the invariances, chunking,
// undefined cases and the precondition checks.

#include "analysis/class_separation.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace sslsweep {
namespace {

torch::Tensor Column(const std::vector<double>& values) {
  return torch::tensor(values, torch::kFloat64).unsqueeze(1);
}

torch::Tensor Labels(const std::vector<int64_t>& labels) {
  return torch::tensor(labels, torch::kInt64);
}

// Tr(Sigma_W Sigma_B^+) / C straight from the definition, with D x D matrices.
double DirectNc1(const torch::Tensor& features, const torch::Tensor& labels,
                 int64_t num_classes) {
  const torch::Tensor x = features.to(torch::kFloat64);
  const ClassCenters centers = ComputeClassCenters(x, labels, num_classes);
  const torch::Tensor present = centers.counts.gt(0).nonzero().squeeze(1);
  const torch::Tensor residuals = x - centers.means.index_select(0, labels);
  const torch::Tensor sigma_w = residuals.t().mm(residuals) / x.size(0);
  const torch::Tensor between =
      centers.means.index_select(0, present) - x.mean(0);
  const torch::Tensor sigma_b = between.t().mm(between) / present.size(0);
  const torch::Tensor pinv =
      torch::linalg_pinv(sigma_b, kNc1RelativeTolerance, /*hermitian=*/true);
  return sigma_w.mm(pinv).trace().item<double>() / present.size(0);
}

struct Dataset {
  torch::Tensor features;
  torch::Tensor labels;
  int64_t num_classes;
};

// Gaussian clusters of unequal sizes around random means.
Dataset RandomClusters(int64_t rows, int64_t dims, int64_t num_classes,
                       uint64_t seed) {
  torch::manual_seed(seed);
  const torch::Tensor means = 3 * torch::randn({num_classes, dims});
  // Squaring skews the class sizes.
  const torch::Tensor labels =
      (torch::rand({rows}).pow(2) * num_classes).to(torch::kInt64);
  const torch::Tensor features =
      means.index_select(0, labels) + torch::randn({rows, dims});
  return {features, labels, num_classes};
}

// Classes {0, 2} and {10, 12}: means 1 and 11, Var = 1 each, distance 10, so
// CDNV = (1 + 1) / (2 * 100) = 0.01. Sigma_W = 1, the global mean is 6,
// Sigma_B = (25 + 25) / 2 = 25, so NC1 = (1 / 25) / 2 = 0.02.
TEST(ClassSeparationTest, TwoClassesInOneDimension) {
  const torch::Tensor features = Column({0, 2, 10, 12});
  const torch::Tensor labels = Labels({0, 0, 1, 1});
  const ClassCenters centers = ComputeClassCenters(features, labels, 2);
  const torch::Tensor variances =
      WithinClassVariances(centers, features, labels);
  EXPECT_DOUBLE_EQ(variances[0].item<double>(), 1.0);
  EXPECT_DOUBLE_EQ(variances[1].item<double>(), 1.0);
  EXPECT_NEAR(ClassDistanceNormalizedVariance(centers, features, labels), 0.01,
              1e-15);
  EXPECT_NEAR(WithinClassVariabilityCollapse(centers, features, labels), 0.02,
              1e-15);
}

// Three 2-D classes: {(0,0),(2,0)} mean (1,0) Var 1; {(0,4),(0,8)} mean
// (0,6) Var 4; {(10,0)} mean (10,0) Var 0. Squared distances: 01: 37,
// 02: 81, 12: 136. CDNV = mean(5/74, 1/162, 4/272). Class 3 is absent.
TEST(ClassSeparationTest, ThreeClassesWithAnAbsentOne) {
  const torch::Tensor features =
      torch::tensor({0., 0., 2., 0., 0., 4., 0., 8., 10., 0.}, torch::kFloat64)
          .view({5, 2});
  const torch::Tensor labels = Labels({0, 0, 1, 1, 2});
  const ClassCenters centers = ComputeClassCenters(features, labels, 4);
  const torch::Tensor variances =
      WithinClassVariances(centers, features, labels);
  EXPECT_TRUE(torch::equal(
      variances, torch::tensor({1.0, 4.0, 0.0, 0.0}, torch::kFloat64)))
      << variances;
  const double expected = (5.0 / 74 + 1.0 / 162 + 4.0 / 272) / 3;
  EXPECT_NEAR(ClassDistanceNormalizedVariance(centers, features, labels),
              expected, 1e-15);
  EXPECT_NEAR(WithinClassVariabilityCollapse(centers, features, labels),
              DirectNc1(features, labels, 4), 1e-12);
}

TEST(ClassSeparationTest, VarianceKeepsItsDigitsFarFromTheOrigin) {
  // E||f||^2 - ||mu||^2 would lose every digit of the variance here.
  const torch::Tensor features = Column({1e9, 1e9 + 2});
  const torch::Tensor labels = Labels({0, 0});
  const ClassCenters centers = ComputeClassCenters(features, labels, 1);
  EXPECT_DOUBLE_EQ(
      WithinClassVariances(centers, features, labels)[0].item<double>(), 1.0);
}

TEST(ClassSeparationTest, Nc1GramFormMatchesTheDefinition) {
  // More dimensions than classes, fewer dimensions than classes (Sigma_B is
  // then rank-deficient in the class space), and one class of one sample.
  for (const auto& [dims, classes] :
       std::vector<std::pair<int64_t, int64_t>>{{12, 4}, {3, 7}, {5, 5}}) {
    SCOPED_TRACE(testing::Message()
                 << dims << " dims, " << classes << " classes");
    const Dataset data = RandomClusters(300, dims, classes, 11 + dims);
    const ClassCenters centers =
        ComputeClassCenters(data.features, data.labels, classes);
    const double gram_form =
        WithinClassVariabilityCollapse(centers, data.features, data.labels);
    const double direct = DirectNc1(data.features, data.labels, classes);
    EXPECT_NEAR(gram_form, direct, 1e-10 * std::abs(direct));
  }
}

TEST(ClassSeparationTest, InvariantToScalingAndPermutation) {
  const Dataset data = RandomClusters(400, 16, 6, 5);
  const ClassCenters centers =
      ComputeClassCenters(data.features, data.labels, 6);
  const double cdnv =
      ClassDistanceNormalizedVariance(centers, data.features, data.labels);
  const double nc1 =
      WithinClassVariabilityCollapse(centers, data.features, data.labels);

  // In float64, so that the scaled features carry no rounding of their own.
  const torch::Tensor scaled = data.features.to(torch::kFloat64) * 37.5;
  const ClassCenters scaled_centers =
      ComputeClassCenters(scaled, data.labels, 6);
  EXPECT_NEAR(
      ClassDistanceNormalizedVariance(scaled_centers, scaled, data.labels),
      cdnv, 1e-9 * cdnv);
  EXPECT_NEAR(
      WithinClassVariabilityCollapse(scaled_centers, scaled, data.labels), nc1,
      1e-9 * nc1);

  const torch::Tensor order = torch::randperm(400, torch::kInt64);
  const torch::Tensor shuffled = data.features.index_select(0, order);
  const torch::Tensor shuffled_labels = data.labels.index_select(0, order);
  const ClassCenters shuffled_centers =
      ComputeClassCenters(shuffled, shuffled_labels, 6);
  EXPECT_NEAR(ClassDistanceNormalizedVariance(shuffled_centers, shuffled,
                                              shuffled_labels),
              cdnv, 1e-9 * cdnv);
  EXPECT_NEAR(WithinClassVariabilityCollapse(shuffled_centers, shuffled,
                                             shuffled_labels),
              nc1, 1e-9 * nc1);
}

TEST(ClassSeparationTest, SeparatedClustersGiveSmallValues) {
  torch::manual_seed(2);
  // Unit-variance clusters whose means are 1000 apart.
  const torch::Tensor labels = torch::arange(300, torch::kInt64) % 3;
  const torch::Tensor features =
      torch::eye(3).index_select(0, labels) * 1000 + torch::randn({300, 3});
  const ClassCenters centers = ComputeClassCenters(features, labels, 3);
  EXPECT_LT(ClassDistanceNormalizedVariance(centers, features, labels), 1e-5);
  EXPECT_LT(WithinClassVariabilityCollapse(centers, features, labels), 1e-5);
  // Loose clusters around the same means score far higher.
  const torch::Tensor loose = features + 300 * torch::randn({300, 3});
  const ClassCenters loose_centers = ComputeClassCenters(loose, labels, 3);
  EXPECT_GT(ClassDistanceNormalizedVariance(loose_centers, loose, labels),
            0.01);
}

TEST(ClassSeparationTest, ChunkingDoesNotChangeTheAnswer) {
  const Dataset data = RandomClusters(500, 8, 5, 9);
  const ClassCenters centers =
      ComputeClassCenters(data.features, data.labels, 5);
  const double cdnv =
      ClassDistanceNormalizedVariance(centers, data.features, data.labels);
  const double nc1 =
      WithinClassVariabilityCollapse(centers, data.features, data.labels);
  for (int64_t chunk_rows : {1, 7, 499, 10000}) {
    SCOPED_TRACE(chunk_rows);
    const NccOptions options{chunk_rows};
    EXPECT_NEAR(ClassDistanceNormalizedVariance(centers, data.features,
                                                data.labels, options),
                cdnv, 1e-12 * cdnv);
    EXPECT_NEAR(WithinClassVariabilityCollapse(centers, data.features,
                                               data.labels, options),
                nc1, 1e-12 * nc1);
  }
}

TEST(ClassSeparationTest, UndefinedCasesAreNaN) {
  // One present class.
  const torch::Tensor features = Column({0, 1, 2});
  const torch::Tensor one_class = Labels({1, 1, 1});
  const ClassCenters single = ComputeClassCenters(features, one_class, 3);
  EXPECT_TRUE(
      std::isnan(ClassDistanceNormalizedVariance(single, features, one_class)));
  EXPECT_TRUE(
      std::isnan(WithinClassVariabilityCollapse(single, features, one_class)));
  // Two classes with the same mean.
  const torch::Tensor same_mean = Column({0, 2, 1, 1});
  const torch::Tensor labels = Labels({0, 0, 1, 1});
  const ClassCenters coincide = ComputeClassCenters(same_mean, labels, 2);
  EXPECT_TRUE(
      std::isnan(ClassDistanceNormalizedVariance(coincide, same_mean, labels)));
  EXPECT_TRUE(
      std::isnan(WithinClassVariabilityCollapse(coincide, same_mean, labels)));
}

TEST(ClassSeparationTest, RejectsBadInput) {
  const torch::Tensor features = torch::zeros({3, 2});
  const torch::Tensor labels = Labels({0, 1, 1});
  const ClassCenters centers = ComputeClassCenters(features, labels, 2);
  EXPECT_THROW(WithinClassVariances(centers, torch::zeros({3, 4}), labels),
               c10::Error);  // dimension mismatch
  EXPECT_THROW(
      ClassDistanceNormalizedVariance(centers, features, Labels({0, 1})),
      c10::Error);  // length mismatch
  EXPECT_THROW(
      WithinClassVariabilityCollapse(centers, features, labels, NccOptions{0}),
      c10::Error);
  EXPECT_THROW(WithinClassVariances(ClassCenters{}, features, labels),
               c10::Error);
}

}  // namespace
}  // namespace sslsweep
