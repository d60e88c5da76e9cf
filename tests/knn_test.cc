// Tests of analysis/knn: a hand-computed weighted vote (where the weights
// overturn the plain majority), ties, the search against brute force, the
// invariances, chunking and the precondition checks.

#include "analysis/knn.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "tests/tensor_test_util.h"

namespace sslsweep {
namespace {


KnnOptions WithK(int64_t k, double temperature = 0.07) {
  KnnOptions options;
  options.k = k;
  options.temperature = temperature;
  return options;
}

// The query (1, 0), label 0, and its neighbours by cosine similarity:
//   (2, 0) label 0, sim 1; (0.8, 0.6) and (4, -3) label 1, sim 0.8 each;
//   (-1, 0) label 0, sim -1 (left out with k = 3).
// Plain majority of the 3 nearest says 1. Weighted with T = 0.07:
//   class 0: e^(1/0.07) = e^14.29, class 1: 2 e^(0.8/0.07) = 2 e^11.43,
// a ratio of e^2.857 / 2 = 8.7: class 0 wins. With T = 1: e^1 = 2.72
// against 2 e^0.8 = 4.45: class 1 wins.
class HandComputedTest : public ::testing::Test {
 protected:
  const torch::Tensor train_ = Points({{-1, 0}, {0.8f, 0.6f}, {2, 0}, {4, -3}});
  const torch::Tensor train_labels_ = Labels({0, 1, 0, 1});
  const torch::Tensor query_ = Points({{1, 0}});
};

TEST_F(HandComputedTest, FindsTheMostSimilarRowsFirst) {
  const NeighborTable table = FindNearestNeighbors(train_, query_, WithK(3));
  ASSERT_EQ(table.indices.sizes(), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(table.indices[0][0].item<int64_t>(), 2);
  // Rows 1 and 3 tie at 0.8; either order is right.
  EXPECT_EQ(
      table.indices[0][1].item<int64_t>() + table.indices[0][2].item<int64_t>(),
      4);
  EXPECT_NEAR(table.similarities[0][0].item<float>(), 1.0, 1e-6);
  EXPECT_NEAR(table.similarities[0][1].item<float>(), 0.8, 1e-6);
  EXPECT_NEAR(table.similarities[0][2].item<float>(), 0.8, 1e-6);
}

TEST_F(HandComputedTest, WeightsOverturnTheMajority) {
  const NeighborTable table = FindNearestNeighbors(train_, query_, WithK(3));
  EXPECT_DOUBLE_EQ(
      KnnAccuracy(table, train_labels_, Labels({0}), 2, WithK(3, 0.07)), 1.0);
  EXPECT_DOUBLE_EQ(
      KnnAccuracy(table, train_labels_, Labels({0}), 2, WithK(3, 1.0)), 0.0);
  EXPECT_DOUBLE_EQ(
      KnnAccuracy(table, train_labels_, Labels({1}), 2, WithK(3, 1.0)), 1.0);
}

TEST_F(HandComputedTest, TinyTemperatureDoesNotOverflow) {
  // e^(1/1e-4) overflows a double; the vote must still be the nearest row's.
  const NeighborTable table = FindNearestNeighbors(train_, query_, WithK(4));
  EXPECT_DOUBLE_EQ(
      KnnAccuracy(table, train_labels_, Labels({0}), 2, WithK(4, 1e-4)), 1.0);
}

TEST_F(HandComputedTest, KIsCappedAtTheTrainingRows) {
  const NeighborTable table = FindNearestNeighbors(train_, query_, WithK(20));
  EXPECT_EQ(table.indices.sizes(), (std::vector<int64_t>{1, 4}));
  // All four vote: class 0 gets e^14.29 + e^-14.29, class 1 2 e^11.43.
  EXPECT_DOUBLE_EQ(KnnAccuracy(table, train_labels_, Labels({0}), 2, WithK(20)),
                   1.0);
}

TEST(KnnTest, TwoQueriesHalfRight) {
  // Query (0, 1): neighbours (0, 3) label 2 (sim 1), (0.6, 0.8) label 1 (sim
  // 0.8); with k = 2 the first wins. Query (1, 0): (0.6, 0.8) label 1 (sim
  // 0.6) outweighs (0, 3) label 2 (sim 0): the vote is 1, the label 0.
  const torch::Tensor train = Points({{0, 3}, {0.6f, 0.8f}, {-1, 0}});
  const torch::Tensor queries = Points({{0, 1}, {1, 0}});
  const NeighborTable table = FindNearestNeighbors(train, queries, WithK(2));
  EXPECT_DOUBLE_EQ(
      KnnAccuracy(table, Labels({2, 1, 0}), Labels({2, 0}), 3, WithK(2)), 0.5);
}

TEST(KnnTest, ExactTieGoesToTheLowestClass) {
  const torch::Tensor train = Points({{0.8f, 0.6f}, {0.8f, -0.6f}});
  const NeighborTable table =
      FindNearestNeighbors(train, Points({{1, 0}}), WithK(2));
  EXPECT_DOUBLE_EQ(KnnAccuracy(table, Labels({3, 1}), Labels({1}), 4), 1.0);
  EXPECT_DOUBLE_EQ(KnnAccuracy(table, Labels({3, 1}), Labels({3}), 4), 0.0);
}

TEST(KnnTest, ZeroRowsHaveSimilarityZero) {
  const torch::Tensor train = Points({{0, 0}, {-1, 0}});
  const NeighborTable table =
      FindNearestNeighbors(train, Points({{1, 0}, {0, 0}}), WithK(2));
  EXPECT_EQ(table.indices[0][0].item<int64_t>(), 0);
  EXPECT_EQ(table.similarities[0][0].item<float>(), 0.0f);
  EXPECT_EQ(table.similarities[0][1].item<float>(), -1.0f);
  EXPECT_FALSE(torch::isnan(table.similarities).any().item<bool>());
}

TEST(KnnTest, MatchesBruteForceSearch) {
  torch::manual_seed(4);
  const torch::Tensor train = torch::randn({300, 12});
  const torch::Tensor queries = torch::randn({50, 12});
  const NeighborTable table = FindNearestNeighbors(train, queries, WithK(5));
  const torch::Tensor train_unit = train / train.norm(2, 1, true);
  const torch::Tensor query_unit = queries / queries.norm(2, 1, true);
  const torch::Tensor brute = std::get<1>(
      query_unit.mm(train_unit.t()).sort(/*dim=*/1, /*descending=*/true));
  EXPECT_TRUE(torch::equal(table.indices, brute.slice(1, 0, 5)));
}

// Enough training rows for the bfloat16 candidate search where the CPU has
// it (fast_products.h); wherever it runs, the neighbours and their
// similarities must be those of a float32 search.
TEST(KnnTest, LargeSearchMatchesFloat32BruteForce) {
  torch::manual_seed(5);
  const torch::Tensor train = torch::randn({4000, 64});
  const torch::Tensor queries = torch::randn({300, 64});
  KnnOptions options = WithK(20);
  options.chunk_rows = 128;
  const NeighborTable table = FindNearestNeighbors(train, queries, options);
  const torch::Tensor train_unit = train / train.norm(2, 1, true);
  const torch::Tensor query_unit = queries / queries.norm(2, 1, true);
  auto [similarities, indices] =
      query_unit.to(torch::kFloat64).mm(train_unit.to(torch::kFloat64).t()).topk(20, 1);
  EXPECT_TRUE(torch::equal(table.indices, indices));
  EXPECT_LT((table.similarities.to(torch::kFloat64) - similarities).abs().max().item<double>(),
            1e-5);
}

TEST(KnnTest, Float64InputIsSearchedInFloat64) {
  torch::manual_seed(8);
  const torch::Tensor train = torch::randn({40, 4}, torch::kFloat64);
  const NeighborTable table =
      FindNearestNeighbors(train, train.slice(0, 0, 5), WithK(3));
  EXPECT_EQ(table.similarities.scalar_type(), torch::kFloat64);
  // Each row is its own nearest neighbour, at similarity 1.
  EXPECT_TRUE(torch::equal(table.indices.select(1, 0),
                           torch::arange(5, torch::kInt64)));
  EXPECT_NEAR(table.similarities.select(1, 0).min().item<double>(), 1.0, 1e-15);
}

class RandomDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::manual_seed(6);
    const torch::Tensor means = torch::randn({5, 16});
    train_labels_ = torch::randint(5, {500}, torch::kInt64);
    test_labels_ = torch::randint(5, {200}, torch::kInt64);
    train_ = means.index_select(0, train_labels_) + torch::randn({500, 16});
    test_ = means.index_select(0, test_labels_) + torch::randn({200, 16});
    accuracy_ = KnnAccuracy(FindNearestNeighbors(train_, test_), train_labels_,
                            test_labels_, 5);
  }

  torch::Tensor train_, train_labels_, test_, test_labels_;
  double accuracy_ = 0;
};

TEST_F(RandomDataTest, AccuracyIsBetweenChanceAndPerfect) {
  EXPECT_GT(accuracy_, 0.4);
  EXPECT_LT(accuracy_, 1.0);
}

TEST_F(RandomDataTest, InvariantToPermutingSamples) {
  const torch::Tensor train_order = torch::randperm(500, torch::kInt64);
  const torch::Tensor test_order = torch::randperm(200, torch::kInt64);
  const NeighborTable table = FindNearestNeighbors(
      train_.index_select(0, train_order), test_.index_select(0, test_order));
  EXPECT_DOUBLE_EQ(
      KnnAccuracy(table, train_labels_.index_select(0, train_order),
                  test_labels_.index_select(0, test_order), 5),
      accuracy_);
}

TEST_F(RandomDataTest, InvariantToScalingRows) {
  // Cosine similarity ignores each row's length.
  const torch::Tensor train_scales = torch::rand({500, 1}) * 10 + 0.1;
  const torch::Tensor test_scales = torch::rand({200, 1}) * 10 + 0.1;
  const NeighborTable table =
      FindNearestNeighbors(train_ * train_scales, test_ * test_scales);
  EXPECT_DOUBLE_EQ(KnnAccuracy(table, train_labels_, test_labels_, 5),
                   accuracy_);
}

TEST_F(RandomDataTest, ChunkingDoesNotChangeTheAnswer) {
  const NeighborTable whole = FindNearestNeighbors(train_, test_);
  for (int64_t chunk_rows : {1, 7, 199, 4096}) {
    SCOPED_TRACE(chunk_rows);
    KnnOptions options;
    options.chunk_rows = chunk_rows;
    const NeighborTable chunked = FindNearestNeighbors(train_, test_, options);
    EXPECT_TRUE(torch::equal(chunked.indices, whole.indices));
    EXPECT_TRUE(torch::allclose(chunked.similarities, whole.similarities));
  }
}

TEST(KnnTest, RejectsBadInput) {
  const torch::Tensor train = torch::randn({4, 3});
  EXPECT_THROW(FindNearestNeighbors(train, torch::randn({2, 5})), c10::Error);
  EXPECT_THROW(FindNearestNeighbors(torch::randn({0, 3}), train), c10::Error);
  EXPECT_THROW(FindNearestNeighbors(train, train, WithK(0)), c10::Error);
  const NeighborTable table = FindNearestNeighbors(train, train, WithK(2));
  const torch::Tensor labels = Labels({0, 1, 0, 1});
  EXPECT_THROW(KnnAccuracy(table, labels, labels, 2, WithK(2, 0.0)),
               c10::Error);  // temperature
  EXPECT_THROW(KnnAccuracy(table, Labels({0, 1, 0, 2}), labels, 2),
               c10::Error);  // label out of range
  EXPECT_THROW(KnnAccuracy(table, labels, Labels({0, 1}), 2),
               c10::Error);  // one label per query
}

}  // namespace
}  // namespace sslsweep
