// Tests of analysis/metric_suite: the metric names and their order, the
// selection, targets without test labels, agreement with the component
// functions, random labels against structured ones, invariance to sample
// order, RandomPartitionLabels, and CUDA features with CPU labels.

#include "analysis/metric_suite.h"

#include <map>
#include <string>
#include <vector>

#include "analysis/class_separation.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sslsweep {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Names(const std::vector<MetricValue>& values) {
  std::vector<std::string> names;
  for (const MetricValue& value : values) names.push_back(value.name);
  return names;
}

std::map<std::string, double> ByName(const std::vector<MetricValue>& values) {
  std::map<std::string, double> by_name;
  for (const MetricValue& value : values) by_name[value.name] = value.value;
  return by_name;
}

// Ten tight, well separated clusters (fine), grouped in pairs (coarse).
class StructuredLayerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::manual_seed(12);
    const torch::Tensor means = 4 * torch::randn({10, 16});
    fine_train_ = torch::arange(600, torch::kInt64).remainder(10);
    fine_test_ = torch::arange(200, torch::kInt64).remainder(10);
    train_ = means.index_select(0, fine_train_) + 0.3 * torch::randn({600, 16});
    test_ = means.index_select(0, fine_test_) + 0.3 * torch::randn({200, 16});
  }

  Target Fine() const { return {"fine", fine_train_, fine_test_, 10}; }
  Target Coarse() const {
    return {"coarse", fine_train_.div(2, "floor"), fine_test_.div(2, "floor"),
            5};
  }
  Target Random() const {
    return {"random", RandomPartitionLabels(600, 10, 1),
            RandomPartitionLabels(200, 10, 2), 10};
  }

  torch::Tensor train_, test_, fine_train_, fine_test_;
};

TEST_F(StructuredLayerTest, NamesEveryMetricInOrder) {
  Target train_only = Coarse();
  train_only.name = "sample";
  train_only.test_labels = torch::Tensor();
  const std::vector<MetricValue> values =
      MeasureLayer("embedding", train_, test_, {Fine(), train_only});
  EXPECT_THAT(
      Names(values),
      ElementsAre("ncc_train_acc/fine/embedding", "ncc_test_acc/fine/embedding",
                  "cdnv/fine/embedding", "nc1/fine/embedding",
                  "knn_test_acc/fine/embedding",
                  "linear_train_acc/fine/embedding",
                  "linear_test_acc/fine/embedding",
                  "ncc_train_acc/sample/embedding", "cdnv/sample/embedding",
                  "nc1/sample/embedding", "linear_train_acc/sample/embedding"));
}

TEST_F(StructuredLayerTest, WithoutTestFeaturesOnlyTrainMetrics) {
  Target fine = Fine();
  fine.test_labels = torch::Tensor();
  EXPECT_THAT(Names(MeasureLayer("layer1", train_, torch::Tensor(), {fine})),
              ElementsAre("ncc_train_acc/fine/layer1", "cdnv/fine/layer1",
                          "nc1/fine/layer1", "linear_train_acc/fine/layer1"));
}

TEST_F(StructuredLayerTest, RespectsTheSelection) {
  SuiteOptions options;
  std::string error;
  ASSERT_TRUE(ParseMetricSelection("knn,nc1", &options.metrics, &error));
  EXPECT_THAT(
      Names(MeasureLayer("e", train_, test_, {Fine(), Coarse()}, options)),
      ElementsAre("nc1/fine/e", "knn_test_acc/fine/e", "nc1/coarse/e",
                  "knn_test_acc/coarse/e"));
}

TEST_F(StructuredLayerTest, ValuesAreTheComponentFunctions) {
  const std::map<std::string, double> values =
      ByName(MeasureLayer("e", train_, test_, {Coarse()}));
  const torch::Tensor labels = Coarse().train_labels;
  const torch::Tensor test_labels = Coarse().test_labels;
  const ClassCenters centers = ComputeClassCenters(train_, labels, 5);
  EXPECT_EQ(values.at("ncc_test_acc/coarse/e"),
            NearestClassCenterAccuracy(centers, test_, test_labels));
  EXPECT_EQ(values.at("cdnv/coarse/e"),
            ClassDistanceNormalizedVariance(centers, train_, labels));
  EXPECT_EQ(values.at("nc1/coarse/e"),
            WithinClassVariabilityCollapse(centers, train_, labels));
  EXPECT_EQ(
      values.at("knn_test_acc/coarse/e"),
      KnnAccuracy(FindNearestNeighbors(train_, test_), labels, test_labels, 5));
  const LinearProbe::Result probe =
      LinearProbe(train_, test_).Fit(labels, test_labels, 5);
  EXPECT_EQ(values.at("linear_train_acc/coarse/e"), probe.train_accuracy);
  EXPECT_EQ(values.at("linear_test_acc/coarse/e"), probe.test_accuracy);
}

TEST_F(StructuredLayerTest, SeparatedClustersScorePerfectly) {
  const std::map<std::string, double> values =
      ByName(MeasureLayer("e", train_, test_, {Fine()}));
  EXPECT_EQ(values.at("ncc_train_acc/fine/e"), 1.0);
  EXPECT_EQ(values.at("ncc_test_acc/fine/e"), 1.0);
  EXPECT_EQ(values.at("knn_test_acc/fine/e"), 1.0);
  EXPECT_EQ(values.at("linear_test_acc/fine/e"), 1.0);
  EXPECT_LT(values.at("cdnv/fine/e"), 0.01);
}

TEST_F(StructuredLayerTest, RandomLabelsScoreNearChance) {
  const std::map<std::string, double> values =
      ByName(MeasureLayer("e", train_, test_, {Fine(), Random()}));
  EXPECT_NEAR(values.at("ncc_test_acc/random/e"), 0.1, 0.06);
  EXPECT_NEAR(values.at("knn_test_acc/random/e"), 0.1, 0.06);
  EXPECT_GT(values.at("cdnv/random/e"), 100 * values.at("cdnv/fine/e"));
}

TEST_F(StructuredLayerTest, NccAndKnnIgnoreSampleOrder) {
  SuiteOptions options;
  options.metrics = MetricSelection{true, false, false, true, false};
  // Some overlap, so that the accuracies are not all 1.
  const torch::Tensor train = train_ + 3 * torch::randn_like(train_);
  const torch::Tensor test = test_ + 3 * torch::randn_like(test_);
  const std::vector<MetricValue> values =
      MeasureLayer("e", train, test, {Fine()}, options);
  const torch::Tensor train_order = torch::randperm(600, torch::kInt64);
  const torch::Tensor test_order = torch::randperm(200, torch::kInt64);
  const Target shuffled{"fine", fine_train_.index_select(0, train_order),
                        fine_test_.index_select(0, test_order), 10};
  const std::vector<MetricValue> shuffled_values =
      MeasureLayer("e", train.index_select(0, train_order),
                   test.index_select(0, test_order), {shuffled}, options);
  ASSERT_EQ(Names(shuffled_values), Names(values));
  for (size_t i = 0; i < values.size(); ++i) {
    SCOPED_TRACE(values[i].name);
    EXPECT_LT(values[i].value, 1.0);
    EXPECT_DOUBLE_EQ(shuffled_values[i].value, values[i].value);
  }
}

TEST_F(StructuredLayerTest, UndefinedValuesAreLeftOut) {
  // One class: CDNV and NC1 are not defined.
  const Target one_class{"one", torch::zeros({600}, torch::kInt64),
                         torch::zeros({200}, torch::kInt64), 1};
  SuiteOptions options;
  options.metrics = MetricSelection{true, true, true, false, false};
  EXPECT_THAT(Names(MeasureLayer("e", train_, test_, {one_class}, options)),
              ElementsAre("ncc_train_acc/one/e", "ncc_test_acc/one/e"));
}

TEST_F(StructuredLayerTest, RejectsMismatchedLabels) {
  Target fine = Fine();
  fine.train_labels = fine.train_labels.slice(0, 0, 10);
  EXPECT_THROW(MeasureLayer("e", train_, test_, {fine}), c10::Error);
  Target no_test_rows = Fine();
  EXPECT_THROW(MeasureLayer("e", train_, torch::Tensor(), {no_test_rows}),
               c10::Error);
}

TEST(ParseMetricSelectionTest, AcceptsAllAndLists) {
  MetricSelection selection{false, false, false, false, false};
  std::string error;
  ASSERT_TRUE(ParseMetricSelection("all", &selection, &error));
  EXPECT_TRUE(selection.ncc && selection.cdnv && selection.nc1 &&
              selection.knn && selection.linear);
  ASSERT_TRUE(ParseMetricSelection("ncc,knn", &selection, &error));
  EXPECT_TRUE(selection.ncc && selection.knn);
  EXPECT_FALSE(selection.cdnv || selection.nc1 || selection.linear);
  ASSERT_TRUE(ParseMetricSelection(" linear , cdnv", &selection, &error));
  EXPECT_TRUE(selection.linear && selection.cdnv);
  EXPECT_FALSE(selection.ncc || selection.nc1 || selection.knn);
}

TEST(ParseMetricSelectionTest, RejectsUnknownNames) {
  MetricSelection selection;
  selection.ncc = false;
  std::string error;
  EXPECT_FALSE(ParseMetricSelection("ncc,foo", &selection, &error));
  EXPECT_THAT(error, HasSubstr("\"foo\""));
  EXPECT_THAT(error, HasSubstr("all, ncc, cdnv, nc1, knn, linear"));
  EXPECT_FALSE(selection.ncc);  // untouched on failure
  EXPECT_FALSE(ParseMetricSelection("", &selection, &error));
  EXPECT_THAT(error, HasSubstr("ncc, cdnv"));
}

TEST(RandomPartitionLabelsTest, BalancedDeterministicAndSeeded) {
  const torch::Tensor labels = RandomPartitionLabels(103, 10, 7);
  ASSERT_EQ(labels.sizes(), (std::vector<int64_t>{103}));
  EXPECT_EQ(labels.scalar_type(), torch::kInt64);
  const torch::Tensor counts = torch::bincount(labels);
  ASSERT_EQ(counts.size(0), 10);
  EXPECT_EQ(counts.min().item<int64_t>(), 10);
  EXPECT_EQ(counts.max().item<int64_t>(), 11);
  torch::manual_seed(99);  // the global generator plays no part
  EXPECT_TRUE(torch::equal(RandomPartitionLabels(103, 10, 7), labels));
  EXPECT_FALSE(torch::equal(RandomPartitionLabels(103, 10, 8), labels));
  // Not the unshuffled 0, 1, 2, ... pattern.
  EXPECT_FALSE(
      torch::equal(labels, torch::arange(103, torch::kInt64).remainder(10)));
  EXPECT_THROW(RandomPartitionLabels(0, 10, 1), c10::Error);
  EXPECT_THROW(RandomPartitionLabels(10, 0, 1), c10::Error);
}

TEST(MeasureLayerCudaTest, CudaFeaturesWithCpuLabelsMatchTheCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(3);
  const torch::Tensor means = torch::randn({4, 8});
  const torch::Tensor labels = torch::randint(4, {500}, torch::kInt64);
  const torch::Tensor test_labels = torch::randint(4, {100}, torch::kInt64);
  const torch::Tensor train =
      means.index_select(0, labels) + torch::randn({500, 8});
  const torch::Tensor test =
      means.index_select(0, test_labels) + torch::randn({100, 8});
  const Target target{"fine", labels, test_labels, 4};
  const std::vector<MetricValue> cpu = MeasureLayer("e", train, test, {target});
  const std::vector<MetricValue> cuda =
      MeasureLayer("e", train.cuda(), test.cuda(), {target});
  ASSERT_EQ(Names(cuda), Names(cpu));
  for (size_t i = 0; i < cpu.size(); ++i) {
    SCOPED_TRACE(cpu[i].name);
    // The float32 kNN search may order a near-tie differently on the GPU:
    // one query of the 100.
    const bool float32 = cpu[i].name.rfind("knn", 0) == 0;
    EXPECT_NEAR(cuda[i].value, cpu[i].value,
                float32 ? 0.011 : 1e-9 + 1e-9 * cpu[i].value);
  }
}

}  // namespace
}  // namespace sslsweep
