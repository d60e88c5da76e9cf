// Tests of `sslsweep analyze`: RunAnalyze on .npy files written with
// WriteNpy (values on two well separated clusters, the JSON and table
// layouts, target and metric selection, one test per kind of bad input), and
// one run of the real `sslsweep analyze` forwarding to sslsweep-analyze.

#include "cli/analyze_command.h"

#include <sys/wait.h>

#include <cstdio>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "analysis/npy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/test_util.h"

namespace sslsweep {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr int64_t kTrainRows = 40;
constexpr int64_t kTestRows = 10;
constexpr int64_t kDim = 4;

// Rows alternate between class 0 near the origin and class 1 near
// (10, ..., 10), with a deterministic jitter of at most 0.1.
torch::Tensor Clusters(int64_t rows, int64_t offset) {
  torch::Tensor features = torch::empty({rows, kDim}, torch::kFloat32);
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < kDim; ++j) {
      const float jitter = 0.05f * static_cast<float>(((i + offset) * 7 + j * 3) % 5 - 2);
      features[i][j] = (i % 2 == 1 ? 10.0f : 0.0f) + jitter;
    }
  }
  return features;
}

torch::Tensor AlternatingLabels(int64_t rows) {
  return torch::arange(rows, torch::kInt64).remainder(2);
}

class AnalyzeTest : public ::testing::Test {
 protected:
  AnalyzeTest() {
    options_.features_path = Npy("train.npy", Clusters(kTrainRows, 0));
    options_.labels_path = Npy("train_labels.npy", AlternatingLabels(kTrainRows));
    options_.test_features_path = Npy("test.npy", Clusters(kTestRows, 1));
    options_.test_labels_path = Npy("test_labels.npy", AlternatingLabels(kTestRows));
  }

  std::string Npy(const std::string& name, const torch::Tensor& tensor) {
    const std::string path = dir_ + "/" + name;
    WriteNpy(path, tensor);
    return path;
  }

  int Run(const AnalyzeOptions& options) {
    std::ostringstream out;
    std::ostringstream err;
    const int code = RunAnalyze(options, out, err);
    out_ = out.str();
    err_ = err.str();
    return code;
  }

  nlohmann::json RunJson(AnalyzeOptions options) {
    options.format = "json";
    EXPECT_EQ(Run(options), kAnalyzeOk) << err_;
    return nlohmann::json::parse(out_);
  }

  // Runs `options` and expects a bad-input failure whose message holds every
  // phrase, with nothing on stdout.
  void ExpectBadInput(const AnalyzeOptions& options, const std::vector<std::string>& phrases) {
    EXPECT_EQ(Run(options), kAnalyzeBadInput) << out_;
    EXPECT_EQ(out_, "");
    EXPECT_THAT(err_, StartsWith("sslsweep analyze: "));
    for (const std::string& phrase : phrases) EXPECT_THAT(err_, HasSubstr(phrase));
  }

  const std::string dir_ = FreshTempDir("analyze");
  AnalyzeOptions options_;
  std::string out_;
  std::string err_;
};

// -- Values and layout --------------------------------------------------------

TEST_F(AnalyzeTest, JsonOfSeparatedClustersHasPerfectAccuracies) {
  const nlohmann::json json = RunJson(options_);
  EXPECT_EQ(json["layer"], "features");
  EXPECT_EQ(json["train_rows"], kTrainRows);
  EXPECT_EQ(json["test_rows"], kTestRows);
  EXPECT_EQ(json["dim"], kDim);
  EXPECT_TRUE(json["seconds"].is_number());
  EXPECT_GE(json["seconds"].get<double>(), 0.0);
  const nlohmann::json& metrics = json["metrics"];
  for (const char* name : {"ncc_train_acc", "ncc_test_acc", "knn_test_acc", "linear_train_acc",
                           "linear_test_acc"}) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(metrics.contains(std::string(name) + "/fine/features"));
    EXPECT_DOUBLE_EQ(metrics[std::string(name) + "/fine/features"].get<double>(), 1.0);
    EXPECT_TRUE(metrics.contains(std::string(name) + "/random/features"));
  }
  // Tight, far apart clusters: tiny CDNV and NC1; a random partition mixes
  // the clusters and scores far worse.
  EXPECT_LT(metrics["cdnv/fine/features"].get<double>(), 1e-3);
  EXPECT_LT(metrics["nc1/fine/features"].get<double>(), 1e-3);
  EXPECT_GT(metrics["cdnv/random/features"].get<double>(), 1.0);
}

TEST_F(AnalyzeTest, JsonMetricsFollowTargetOrder) {
  const nlohmann::ordered_json json = [&] {
    AnalyzeOptions options = options_;
    options.format = "json";
    EXPECT_EQ(Run(options), kAnalyzeOk) << err_;
    return nlohmann::ordered_json::parse(out_);
  }();
  std::vector<std::string> targets;
  for (const auto& item : json["metrics"].items()) {
    const std::string name = item.key();
    const std::string target = name.substr(name.find('/') + 1,
                                           name.rfind('/') - name.find('/') - 1);
    if (targets.empty() || targets.back() != target) targets.push_back(target);
  }
  EXPECT_EQ(targets, (std::vector<std::string>{"fine", "random"}));
}

TEST_F(AnalyzeTest, TableHasOneRowPerTargetAndOneColumnPerMetric) {
  ASSERT_EQ(Run(options_), kAnalyzeOk) << err_;
  EXPECT_EQ(err_, "");
  std::istringstream lines(out_);
  std::string summary, header, fine, random, extra;
  std::getline(lines, summary);
  std::getline(lines, header);
  std::getline(lines, fine);
  std::getline(lines, random);
  EXPECT_FALSE(std::getline(lines, extra));
  EXPECT_THAT(summary, AllOf(HasSubstr("layer features"), HasSubstr("N=40"),
                             HasSubstr("10 test rows"), HasSubstr("D=4"), HasSubstr(" s")));
  EXPECT_THAT(header, AllOf(StartsWith("target"), HasSubstr("ncc_train_acc"),
                            HasSubstr("ncc_test_acc"), HasSubstr("cdnv"), HasSubstr("nc1"),
                            HasSubstr("knn_test_acc"), HasSubstr("linear_test_acc")));
  EXPECT_THAT(fine, StartsWith("fine "));
  EXPECT_THAT(random, StartsWith("random "));
  // The first two columns are the NCC accuracies.
  std::istringstream cells(fine);
  std::string name, ncc_train, ncc_test;
  cells >> name >> ncc_train >> ncc_test;
  EXPECT_EQ(ncc_train, "1.0000");
  EXPECT_EQ(ncc_test, "1.0000");
  EXPECT_EQ(header.find("ncc_train_acc"), fine.find(ncc_train));
}

TEST_F(AnalyzeTest, LabelSetsTargetsAndLayerName) {
  AnalyzeOptions options = options_;
  options.label_sets = {"coarse=" + Npy("coarse.npy", AlternatingLabels(kTrainRows) * 2) + ":" +
                            Npy("coarse_test.npy", AlternatingLabels(kTestRows) * 2),
                        "train_only=" + Npy("train_only.npy", AlternatingLabels(kTrainRows))};
  options.targets = "coarse,train_only,fine";
  options.layer = "embedding";
  const nlohmann::json metrics = RunJson(options)["metrics"];
  EXPECT_DOUBLE_EQ(metrics["ncc_test_acc/coarse/embedding"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(metrics["ncc_train_acc/train_only/embedding"].get<double>(), 1.0);
  EXPECT_FALSE(metrics.contains("ncc_test_acc/train_only/embedding"));
  EXPECT_TRUE(metrics.contains("ncc_test_acc/fine/embedding"));
  for (const auto& item : metrics.items()) EXPECT_THAT(item.key(), Not(HasSubstr("/random/")));
}

TEST_F(AnalyzeTest, AllTargetsIncludeEveryLabelSet) {
  AnalyzeOptions options = options_;
  options.label_sets = {"coarse=" + Npy("coarse.npy", AlternatingLabels(kTrainRows))};
  const nlohmann::json metrics = RunJson(options)["metrics"];
  EXPECT_TRUE(metrics.contains("ncc_train_acc/fine/features"));
  EXPECT_TRUE(metrics.contains("ncc_train_acc/random/features"));
  EXPECT_TRUE(metrics.contains("ncc_train_acc/coarse/features"));
}

TEST_F(AnalyzeTest, MetricSelection) {
  AnalyzeOptions options = options_;
  options.metrics = "ncc";
  const nlohmann::json metrics = RunJson(options)["metrics"];
  EXPECT_EQ(metrics.size(), 4u);  // train and test accuracy, fine and random
  for (const auto& item : metrics.items()) EXPECT_THAT(item.key(), StartsWith("ncc_"));
}

TEST_F(AnalyzeTest, WithoutTestSetOnlyTrainMetrics) {
  AnalyzeOptions options = options_;
  options.test_features_path.clear();
  options.test_labels_path.clear();
  const nlohmann::json json = RunJson(options);
  EXPECT_EQ(json["test_rows"], 0);
  EXPECT_DOUBLE_EQ(json["metrics"]["ncc_train_acc/fine/features"].get<double>(), 1.0);
  for (const auto& item : json["metrics"].items()) {
    EXPECT_THAT(item.key(), Not(HasSubstr("_test_")));
  }
}

TEST_F(AnalyzeTest, AcceptsFloat64FeaturesAndNarrowIntegerLabels) {
  AnalyzeOptions options = options_;
  options.features_path = Npy("train64.npy", Clusters(kTrainRows, 0).to(torch::kFloat64));
  options.labels_path = Npy("labels_u8.npy", AlternatingLabels(kTrainRows).to(torch::kUInt8));
  options.test_labels_path = Npy("labels_i4.npy", AlternatingLabels(kTestRows).to(torch::kInt32));
  EXPECT_DOUBLE_EQ(RunJson(options)["metrics"]["ncc_test_acc/fine/features"].get<double>(), 1.0);
}

TEST_F(AnalyzeTest, SameSeedSameRandomTarget) {
  AnalyzeOptions options = options_;
  options.metrics = "cdnv";
  const nlohmann::json first = RunJson(options)["metrics"];
  EXPECT_EQ(RunJson(options)["metrics"], first);
  options.seed = 5;
  EXPECT_NE(RunJson(options)["metrics"]["cdnv/random/features"], first["cdnv/random/features"]);
}

// -- Bad input: exit 2, a message naming the file and the problem -------------

TEST_F(AnalyzeTest, MalformedNpy) {
  AnalyzeOptions options = options_;
  options.features_path = WriteFile(dir_ + "/bad.npy", "not numpy at all");
  ExpectBadInput(options, {dir_ + "/bad.npy: ", "not a .npy file"});
}

TEST_F(AnalyzeTest, MissingFile) {
  AnalyzeOptions options = options_;
  options.test_labels_path = dir_ + "/absent.npy";
  ExpectBadInput(options, {dir_ + "/absent.npy: cannot open"});
}

TEST_F(AnalyzeTest, FeaturesNotTwoDimensional) {
  AnalyzeOptions options = options_;
  options.features_path = Npy("flat.npy", torch::zeros({kTrainRows}));
  ExpectBadInput(options, {options.features_path, "2-D"});
}

TEST_F(AnalyzeTest, FeaturesNotFloating) {
  AnalyzeOptions options = options_;
  options.features_path = Npy("int.npy", torch::zeros({kTrainRows, kDim}, torch::kInt32));
  ExpectBadInput(options, {options.features_path, "float32 or float64, got int32"});
}

TEST_F(AnalyzeTest, LabelsNotOneDimensional) {
  AnalyzeOptions options = options_;
  options.labels_path = Npy("l2.npy", AlternatingLabels(kTrainRows).reshape({kTrainRows, 1}));
  ExpectBadInput(options, {options.labels_path, "1-D"});
}

TEST_F(AnalyzeTest, LabelsFloating) {
  AnalyzeOptions options = options_;
  options.labels_path = Npy("lf.npy", AlternatingLabels(kTrainRows).to(torch::kFloat32));
  ExpectBadInput(options, {options.labels_path, "must be integers (class indices), got float32"});
}

TEST_F(AnalyzeTest, LabelsBool) {
  AnalyzeOptions options = options_;
  options.labels_path = Npy("lb.npy", AlternatingLabels(kTrainRows).to(torch::kBool));
  ExpectBadInput(options, {options.labels_path, "must be integers (class indices), got bool"});
}

TEST_F(AnalyzeTest, TrainLengthMismatchNamesBothFilesAndCounts) {
  AnalyzeOptions options = options_;
  options.labels_path = Npy("short.npy", AlternatingLabels(kTrainRows - 1));
  ExpectBadInput(options, {options.labels_path + " has 39 labels but " + options.features_path +
                           " has 40 rows"});
}

TEST_F(AnalyzeTest, TestLengthMismatchNamesBothFilesAndCounts) {
  AnalyzeOptions options = options_;
  options.test_labels_path = Npy("long.npy", AlternatingLabels(kTestRows + 1));
  ExpectBadInput(options, {options.test_labels_path + " has 11 labels but " +
                           options.test_features_path + " has 10 rows"});
}

TEST_F(AnalyzeTest, TestFeaturesOfAnotherDimension) {
  AnalyzeOptions options = options_;
  options.test_features_path = Npy("narrow.npy", torch::zeros({kTestRows, kDim - 1}));
  ExpectBadInput(options, {options.test_features_path + " has dim 3 but " +
                           options.features_path + " has dim 4"});
}

TEST_F(AnalyzeTest, TestFeaturesWithoutTestLabels) {
  AnalyzeOptions options = options_;
  options.test_labels_path.clear();
  ExpectBadInput(options, {"--test-features needs --test-labels"});
}

TEST_F(AnalyzeTest, TestLabelsWithoutTestFeatures) {
  AnalyzeOptions options = options_;
  options.test_features_path.clear();
  ExpectBadInput(options, {"--test-labels needs --test-features"});
}

TEST_F(AnalyzeTest, SingleClass) {
  AnalyzeOptions options = options_;
  options.labels_path = Npy("one.npy", torch::full({kTrainRows}, 3, torch::kInt64));
  ExpectBadInput(options, {options.labels_path, "every label is 3", "at least two classes"});
}

TEST_F(AnalyzeTest, SingleClassInLabelSet) {
  AnalyzeOptions options = options_;
  const std::string path = Npy("one.npy", torch::zeros({kTrainRows}, torch::kInt64));
  options.label_sets = {"coarse=" + path};
  ExpectBadInput(options, {path, "at least two classes"});
}

TEST_F(AnalyzeTest, NegativeLabel) {
  AnalyzeOptions options = options_;
  torch::Tensor labels = AlternatingLabels(kTestRows);
  labels[3] = -1;
  options.test_labels_path = Npy("negative.npy", labels);
  ExpectBadInput(options, {options.test_labels_path, "label -1 at row 3 is negative"});
}

TEST_F(AnalyzeTest, HugeLabel) {
  AnalyzeOptions options = options_;
  torch::Tensor labels = AlternatingLabels(kTrainRows);
  labels[5] = int64_t{1} << 40;
  options.labels_path = Npy("huge.npy", labels);
  ExpectBadInput(options, {options.labels_path, "at row 5 is too large"});
}

TEST_F(AnalyzeTest, NanFeature) {
  AnalyzeOptions options = options_;
  torch::Tensor features = Clusters(kTrainRows, 0);
  features[7][2] = std::numeric_limits<float>::quiet_NaN();
  features[9][0] = std::numeric_limits<float>::quiet_NaN();
  options.features_path = Npy("nan.npy", features);
  ExpectBadInput(options, {options.features_path, "row 7 has a non-finite value (nan in column 2)"});
}

TEST_F(AnalyzeTest, InfiniteTestFeature) {
  AnalyzeOptions options = options_;
  torch::Tensor features = Clusters(kTestRows, 1).to(torch::kFloat64);
  features[4][1] = -std::numeric_limits<double>::infinity();
  options.test_features_path = Npy("inf.npy", features);
  ExpectBadInput(options, {options.test_features_path, "row 4 has a non-finite value (-inf"});
}

TEST_F(AnalyzeTest, UnknownTarget) {
  AnalyzeOptions options = options_;
  options.targets = "fine,coarse";
  ExpectBadInput(options, {"--targets: unknown target 'coarse'", "fine, random"});
}

TEST_F(AnalyzeTest, UnknownMetric) {
  AnalyzeOptions options = options_;
  options.metrics = "ncc,accuracy";
  ExpectBadInput(options, {"--metrics", "accuracy"});
}

TEST_F(AnalyzeTest, LabelSetNamedLikeBuiltin) {
  for (const char* name : {"fine", "random", "all"}) {
    AnalyzeOptions options = options_;
    options.label_sets = {std::string(name) + "=" + options_.labels_path};
    ExpectBadInput(options, {std::string("NAME '") + name + "' is reserved"});
  }
}

TEST_F(AnalyzeTest, MalformedLabelSets) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"coarse", "has no '='"},
      {"=x.npy", "empty NAME"},
      {"coarse=", "empty TRAIN.npy"},
      {"coarse=" + options_.labels_path + ":", "empty TEST.npy"},
      {"co/arse=" + options_.labels_path, "may hold only letters"},
  };
  for (const auto& [spec, phrase] : cases) {
    SCOPED_TRACE(spec);
    AnalyzeOptions options = options_;
    options.label_sets = {spec};
    ExpectBadInput(options, {"--label-set '" + spec + "'", phrase});
  }
}

TEST_F(AnalyzeTest, LabelSetGivenTwice) {
  AnalyzeOptions options = options_;
  options.label_sets = {"coarse=" + options_.labels_path, "coarse=" + options_.labels_path};
  ExpectBadInput(options, {"'coarse' is given twice"});
}

TEST_F(AnalyzeTest, LabelSetTestLabelsWithoutTestFeatures) {
  AnalyzeOptions options = options_;
  options.test_features_path.clear();
  options.test_labels_path.clear();
  options.label_sets = {"coarse=" + options_.labels_path + ":" + options_.test_labels_path};
  ExpectBadInput(options, {"has test labels but no --test-features"});
}

TEST_F(AnalyzeTest, LabelSetOfWrongLength) {
  AnalyzeOptions options = options_;
  const std::string path = Npy("coarse_test.npy", AlternatingLabels(kTestRows - 2));
  options.label_sets = {"coarse=" + options_.labels_path + ":" + path};
  ExpectBadInput(options, {path + " has 8 labels but " + options_.test_features_path});
}

TEST_F(AnalyzeTest, BadScalarOptions) {
  AnalyzeOptions options = options_;
  options.format = "xml";
  ExpectBadInput(options, {"--format"});
  options = options_;
  options.knn_k = 0;
  ExpectBadInput(options, {"--knn-k"});
  options = options_;
  options.knn_temperature = 0;
  ExpectBadInput(options, {"--knn-temperature"});
}

// -- The real CLI ----------------------------------------------------------------

struct ProcessResult {
  int exit_code = -1;
  std::string output;
};

// Runs a shell command and collects its stdout.
ProcessResult RunCommand(const std::string& command) {
  ProcessResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
  const int status = ::pclose(pipe);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

TEST_F(AnalyzeTest, SslsweepAnalyzeForwardsToSslsweepAnalyze) {
  const std::string cli = std::string(SSLSWEEP_BIN_DIR) + "/sslsweep";
  const ProcessResult ok = RunCommand(
      cli + " analyze --features '" + options_.features_path + "' --labels '" +
      options_.labels_path + "' --test-features '" + options_.test_features_path +
      "' --test-labels '" + options_.test_labels_path + "' --metrics ncc --format json");
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  const nlohmann::json json = nlohmann::json::parse(ok.output);
  EXPECT_EQ(json["train_rows"], kTrainRows);
  EXPECT_DOUBLE_EQ(json["metrics"]["ncc_test_acc/fine/features"].get<double>(), 1.0);

  const ProcessResult bad = RunCommand(cli + " analyze --features '" + dir_ +
                                       "/absent.npy' --labels '" + options_.labels_path +
                                       "' 2>&1");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.output, HasSubstr(dir_ + "/absent.npy: cannot open"));

  const ProcessResult help = RunCommand(cli + " analyze --help 2>&1");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.output, AllOf(HasSubstr("sslsweep analyze"), HasSubstr("--label-set")));
}

}  // namespace
}  // namespace sslsweep
