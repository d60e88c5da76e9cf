// Tests of analysis/nearest_class_center: hand-computed 2-D cases, absent
// classes, chunking, and the precondition checks.

#include "analysis/nearest_class_center.h"

#include <vector>

#include "gtest/gtest.h"
#include "tests/tensor_test_util.h"

namespace sslsweep {
namespace {


std::vector<int64_t> ToVector(const torch::Tensor& t) {
  return std::vector<int64_t>(t.data_ptr<int64_t>(),
                              t.data_ptr<int64_t>() + t.numel());
}

// Class 0: (0,0), (2,0) -> center (1,0); class 1: (0,4), (0,6) -> (0,5);
// class 2: (10,10) -> (10,10).
class HandComputedTest : public ::testing::Test {
 protected:
  const torch::Tensor train_ =
      Points({{0, 0}, {2, 0}, {0, 4}, {0, 6}, {10, 10}});
  const torch::Tensor train_labels_ = Labels({0, 0, 1, 1, 2});
};

TEST_F(HandComputedTest, CentersAreClassMeans) {
  const ClassCenters centers = ComputeClassCenters(train_, train_labels_, 3);
  const torch::Tensor expected =
      torch::tensor({1.0, 0.0, 0.0, 5.0, 10.0, 10.0}, torch::kFloat64)
          .view({3, 2});
  EXPECT_TRUE(torch::equal(centers.means, expected)) << centers.means;
  EXPECT_EQ(ToVector(centers.counts), (std::vector<int64_t>{2, 2, 1}));
}

TEST_F(HandComputedTest, PredictsNearestCenter) {
  const ClassCenters centers = ComputeClassCenters(train_, train_labels_, 3);
  // Distances to (1,0), (0,5), (10,10):
  //   (1,1):   1,    4.12, 12.7  -> 0
  //   (0,3.5): 3.64, 1.5,  11.9  -> 1
  //   (6,6):   7.81, 6.08, 5.66  -> 2
  //   (4,4):   5,    4.12, 8.49  -> 1 (labelled 0: the one miss)
  const torch::Tensor test = Points({{1, 1}, {0, 3.5}, {6, 6}, {4, 4}});
  EXPECT_EQ(ToVector(PredictNearestClassCenter(centers, test)),
            (std::vector<int64_t>{0, 1, 2, 1}));
  EXPECT_DOUBLE_EQ(
      NearestClassCenterAccuracy(centers, test, Labels({0, 1, 2, 0})), 0.75);
  // Every training point is nearest to its own class's center.
  EXPECT_DOUBLE_EQ(NearestClassCenterAccuracy(centers, train_, train_labels_),
                   1.0);
}

TEST_F(HandComputedTest, ExactTieGoesToLowestClass) {
  const ClassCenters centers = ComputeClassCenters(train_, train_labels_, 3);
  // (3,3) is sqrt(13) from both (1,0) and (0,5).
  EXPECT_EQ(ToVector(PredictNearestClassCenter(centers, Points({{3, 3}}))),
            (std::vector<int64_t>{0}));
}

TEST_F(HandComputedTest, AbsentClassIsNeverPredicted) {
  // Class 3 has no training sample; its zero mean row sits exactly on the
  // test point (0,0) and must still lose to class 0's center at distance 1.
  const ClassCenters centers = ComputeClassCenters(train_, train_labels_, 4);
  EXPECT_EQ(ToVector(centers.counts), (std::vector<int64_t>{2, 2, 1, 0}));
  const torch::Tensor test = Points({{0, 0}, {0, 0.1f}});
  EXPECT_EQ(ToVector(PredictNearestClassCenter(centers, test)),
            (std::vector<int64_t>{0, 0}));
  EXPECT_DOUBLE_EQ(NearestClassCenterAccuracy(centers, test, Labels({3, 0})),
                   0.5);
}

TEST(NearestClassCenterTest, ChunkingDoesNotChangeTheAnswer) {
  torch::manual_seed(7);
  const torch::Tensor train = torch::randn({600, 16});
  const torch::Tensor labels = torch::randint(5, {600}, torch::kInt64);
  const torch::Tensor test = torch::randn({1000, 16});
  const torch::Tensor test_labels = torch::randint(5, {1000}, torch::kInt64);
  const ClassCenters centers = ComputeClassCenters(train, labels, 5);
  const torch::Tensor one_chunk =
      PredictNearestClassCenter(centers, test, NccOptions{1000});
  const double accuracy =
      NearestClassCenterAccuracy(centers, test, test_labels, NccOptions{1000});
  for (int64_t chunk_rows : {1, 7, 999, 4096}) {
    SCOPED_TRACE(chunk_rows);
    const ClassCenters chunked =
        ComputeClassCenters(train, labels, 5, NccOptions{chunk_rows});
    EXPECT_TRUE(torch::allclose(chunked.means, centers.means, 0, 1e-12));
    EXPECT_TRUE(torch::equal(chunked.counts, centers.counts));
    EXPECT_TRUE(torch::equal(
        PredictNearestClassCenter(centers, test, NccOptions{chunk_rows}),
        one_chunk));
    EXPECT_EQ(NearestClassCenterAccuracy(centers, test, test_labels,
                                         NccOptions{chunk_rows}),
              accuracy);
  }
}

TEST(NearestClassCenterTest, MatchesBruteForceDistances) {
  torch::manual_seed(3);
  const torch::Tensor train = torch::randn({200, 8});
  const torch::Tensor labels = torch::randint(4, {200}, torch::kInt64);
  const torch::Tensor test = torch::randn({300, 8});
  const ClassCenters centers = ComputeClassCenters(train, labels, 4);
  const torch::Tensor brute =
      torch::cdist(test.to(torch::kFloat64), centers.means).argmin(1);
  EXPECT_TRUE(torch::equal(PredictNearestClassCenter(centers, test), brute));
}

TEST(NearestClassCenterTest, RejectsBadInput) {
  const torch::Tensor features = torch::zeros({3, 2});
  EXPECT_THROW(ComputeClassCenters(features, Labels({0, 1, 5}), 3),
               c10::Error);  // label out of range
  EXPECT_THROW(ComputeClassCenters(features, Labels({0, 1}), 3),
               c10::Error);  // length mismatch
  EXPECT_THROW(ComputeClassCenters(torch::zeros({3}), Labels({0, 1, 2}), 3),
               c10::Error);  // not [N, D]
  const ClassCenters centers =
      ComputeClassCenters(features, Labels({0, 1, 2}), 3);
  EXPECT_THROW(PredictNearestClassCenter(centers, torch::zeros({3, 5})),
               c10::Error);  // dimension mismatch
  EXPECT_THROW(PredictNearestClassCenter(centers, features, NccOptions{0}),
               c10::Error);
}

}  // namespace
}  // namespace sslsweep
