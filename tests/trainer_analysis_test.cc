// Tests of the trainer's measurement: every tap, target and metric in the
// metrics lines, the selection keys, that measuring leaves the training
// alone, bad layer names and label files, and the feature export.

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "analysis/nearest_class_center.h"
#include "analysis/npy.h"
#include "tests/test_util.h"
#include "tests/trainer_test_util.h"
#include "worker/trainer/trainer.h"
#include "worker/trial_config.h"

namespace sslsweep {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// The taps of TinySyntheticConfig's network.
const std::vector<std::string> kTinyTaps = {"stage1",     "stage2",     "embedding",
                                            "projector1", "projector2", "projector3"};
// The suite's metrics of a target with test labels, and of one without.
const std::vector<std::string> kTrainTestMetrics = {
    "ncc_train_acc", "ncc_test_acc", "cdnv", "nc1", "knn_test_acc", "linear_train_acc",
    "linear_test_acc"};
const std::vector<std::string> kTrainOnlyMetrics = {"ncc_train_acc", "cdnv", "nc1",
                                                    "linear_train_acc"};

TEST(RunTrialTest, TinySyntheticTrialWritesTheMetricsContract) {
  const auto dir = TempDir("tiny");
  const auto out = dir / "trial";  // created by RunTrial
  TrialConfig config = TinySyntheticConfig();
  // 256 train and 64 test samples: a label set on both splits, and one on
  // the training split alone, which gets the train metrics only.
  config.analysis.label_files =
      "thirds=" + WriteLabels(dir / "thirds.npy", 256, 3) + ":" +
      WriteLabels(dir / "thirds_test.npy", 64, 3) + ",halves=" +
      WriteLabels(dir / "halves.npy", 300, 2);
  const TrialRun run = RunInProcess(config, out);
  ASSERT_TRUE(run.status.ok()) << run.status;
  EXPECT_EQ(run.echoed, run.metrics);
  EXPECT_TRUE(std::filesystem::exists(out / "checkpoint.pt"));
  EXPECT_FALSE(std::filesystem::exists(out / "checkpoint.pt.tmp"));
  torch::serialize::InputArchive checkpoint;
  checkpoint.load_from((out / "checkpoint.pt").string());
  torch::Tensor checkpoint_epoch;
  checkpoint.read("epoch", checkpoint_epoch);
  EXPECT_EQ(checkpoint_epoch.item<int64_t>(), 2);
  // Module::save nests one archive per submodule.
  torch::serialize::InputArchive model, backbone, stage1, conv;
  ASSERT_TRUE(checkpoint.try_read("model", model));
  ASSERT_TRUE(model.try_read("backbone", backbone));
  ASSERT_TRUE(backbone.try_read("stage1", stage1));
  ASSERT_TRUE(stage1.try_read("0", conv));
  torch::Tensor conv_weight;
  ASSERT_TRUE(conv.try_read("weight", conv_weight));
  EXPECT_EQ(conv_weight.sizes(), (std::vector<int64_t>{8, 1, 3, 3}));
  torch::serialize::InputArchive optimizer;
  EXPECT_TRUE(checkpoint.try_read("optimizer", optimizer));
  auto written = LoadTrialConfigFile((out / "config.yaml").string());
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(TrialConfigToYaml(*written), TrialConfigToYaml(config));

  // Parse the lines into epoch -> {name -> value}, checking the order.
  std::map<int64_t, std::map<std::string, double>> epochs;
  std::vector<int64_t> ended;
  std::istringstream lines(run.metrics);
  std::string line;
  int64_t open_epoch = 0;
  while (std::getline(lines, line)) {
    const auto json = nlohmann::json::parse(line);
    const int64_t epoch = json.at("epoch").get<int64_t>();
    EXPECT_EQ(epoch, open_epoch) << line;
    if (json.contains("event")) {
      EXPECT_EQ(json.at("event"), "epoch_end");
      EXPECT_EQ(json.size(), 2u) << line;
      ended.push_back(epoch);
      ++open_epoch;
      continue;
    }
    EXPECT_EQ(json.size(), 3u) << line;
    const double value = json.at("value").get<double>();
    EXPECT_TRUE(std::isfinite(value)) << line;
    EXPECT_TRUE(epochs[epoch].emplace(json.at("name"), value).second)
        << "duplicate " << line;
  }
  EXPECT_EQ(ended, (std::vector<int64_t>{0, 1, 2}));
  ASSERT_EQ(epochs.size(), 3u);

  // Every metric of every tap and target, in range.
  std::set<std::string> expected;
  for (const std::string& tap : kTinyTaps) {
    for (const char* target : {"sample", "fine", "coarse", "random", "thirds"}) {
      for (const std::string& metric : kTrainTestMetrics) {
        expected.insert(metric + "/" + target + "/" + tap);
      }
    }
    for (const std::string& metric : kTrainOnlyMetrics) {
      expected.insert(metric + "/halves/" + tap);
    }
  }
  for (int64_t epoch = 0; epoch <= 2; ++epoch) {
    std::set<std::string> measured;
    for (const auto& [name, value] : epochs[epoch]) {
      if (name.rfind("loss/", 0) == 0 || name.rfind("time/", 0) == 0) continue;
      measured.insert(name);
      if (name.find("_acc/") != std::string::npos) {
        EXPECT_GE(value, 0.0) << epoch << " " << name;
        EXPECT_LE(value, 1.0) << epoch << " " << name;
      } else {
        EXPECT_GE(value, 0.0) << epoch << " " << name;  // cdnv, nc1
      }
    }
    EXPECT_EQ(measured, expected) << "epoch " << epoch;
  }
  // kNCCTrainAccMetric and kNccTestAccMetric name two of them.
  EXPECT_EQ(expected.count(kNccTrainAccMetric), 1u);
  EXPECT_EQ(expected.count(kNccTestAccMetric), 1u);
  EXPECT_EQ(epochs[0].size(), expected.size());
  for (int64_t epoch = 1; epoch <= 2; ++epoch) {
    auto& m = epochs[epoch];
    EXPECT_EQ(m.size(), expected.size() + 5);
    EXPECT_NEAR(m[kLossTotalMetric],
                25 * m[kLossInvarianceMetric] + 25 * m[kLossVarianceMetric] +
                    m[kLossCovarianceMetric],
                1e-4 * m[kLossTotalMetric]);
    EXPECT_GT(m[kLossInvarianceMetric], 0.0);
    EXPECT_GT(m[kLossVarianceMetric], 0.0);
    EXPECT_LT(m[kLossVarianceMetric], 1.0);  // the hinge is at most 1
    EXPECT_GT(m[kLossCovarianceMetric], 0.0);
    EXPECT_EQ(m[kEpochSecondsMetric], 1.0);  // one tick of the fake clock
  }
  // The synthetic classes are learnable: well above the 10% of chance, and
  // above a random partition of the same rows into as many classes.
  EXPECT_GT(epochs[2][kNccTestAccMetric], 0.4);
  EXPECT_GT(epochs[2][kNccTrainAccMetric], 0.4);
  EXPECT_GT(epochs[2][kNccTestAccMetric], epochs[2]["ncc_test_acc/random/embedding"]);
  EXPECT_LT(epochs[2][kLossTotalMetric], epochs[1][kLossTotalMetric]);
}

TEST(RunTrialTest, SelectionKeysRestrictTheMeasurement) {
  TrialConfig config = TinySyntheticConfig();
  config.epochs = 1;
  config.data.train_samples = 128;
  config.analysis.layers = "projector1, stage2";
  config.analysis.targets = "random,fine";
  config.analysis.metrics = "cdnv,ncc";
  const TrialRun run = RunInProcess(config, TempDir("selection"));
  ASSERT_TRUE(run.status.ok()) << run.status;
  std::set<std::string> expected;
  for (const char* tap : {"stage2", "projector1"}) {
    for (const char* target : {"fine", "random"}) {
      for (const char* metric : {"ncc_train_acc", "ncc_test_acc", "cdnv"}) {
        expected.insert(std::string(metric) + "/" + target + "/" + tap);
      }
    }
  }
  auto epochs = MetricsByEpoch(run.metrics);
  for (int64_t epoch = 0; epoch <= 1; ++epoch) {
    std::set<std::string> measured;
    for (const auto& [name, value] : epochs[epoch]) {
      if (name.rfind("loss/", 0) != 0 && name.rfind("time/", 0) != 0) measured.insert(name);
    }
    EXPECT_EQ(measured, expected) << "epoch " << epoch;
  }
}

// The lines of `text` that are not measurements: the losses and times.
std::string TrainingLines(const std::string& text) {
  std::istringstream lines(text);
  std::string kept;
  for (std::string line; std::getline(lines, line);) {
    if (line.find("\"loss/") != std::string::npos || line.find("\"time/") != std::string::npos) {
      kept += line + "\n";
    }
  }
  return kept;
}

TEST(RunTrialTest, MeasuringDoesNotChangeTheTraining) {
  const auto root = TempDir("unchanged");
  TrialConfig config = TinySyntheticConfig();
  config.data.train_samples = 128;
  config.analysis.metrics = "ncc";
  config.analysis.targets = "fine";
  config.analysis.layers = "embedding";
  const TrialRun few = RunInProcess(config, root / "few");
  config.analysis = TinySyntheticConfig().analysis;  // everything
  const TrialRun all = RunInProcess(config, root / "all");
  ASSERT_TRUE(few.status.ok()) << few.status;
  ASSERT_TRUE(all.status.ok()) << all.status;
  EXPECT_FALSE(TrainingLines(few.metrics).empty());
  EXPECT_EQ(TrainingLines(few.metrics), TrainingLines(all.metrics));  // bitwise
  auto few_epochs = MetricsByEpoch(few.metrics);
  auto all_epochs = MetricsByEpoch(all.metrics);
  for (int64_t epoch = 0; epoch <= 2; ++epoch) {
    EXPECT_EQ(few_epochs[epoch][kNccTestAccMetric], all_epochs[epoch][kNccTestAccMetric]);
  }
}

TEST(RunTrialTest, UnknownLayerIsNamedWithTheValidTaps) {
  TrialConfig config = TinySyntheticConfig();
  config.analysis.layers = "embedding,stage9";
  const TrialRun run = RunInProcess(config, TempDir("layer"));
  EXPECT_EQ(run.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(run.status.message(),
            "analysis.layers: the network has no tap 'stage9'; its taps: stage1, stage2, "
            "embedding, projector1, projector2, projector3, or all");
  EXPECT_EQ(run.metrics, "");
}

TEST(RunTrialTest, BadLabelFilesAreNamed) {
  const auto dir = TempDir("labels");
  TrialConfig config = TinySyntheticConfig();
  auto run_with = [&](const std::string& label_files) {
    config.analysis.label_files = label_files;
    return RunInProcess(config, dir / "out").status;
  };
  const std::string missing = (dir / "missing.npy").string();
  absl::Status status = run_with("mine=" + missing);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(), missing + ": No such file or directory");

  const std::string train = WriteLabels(dir / "train.npy", 256, 4);
  status = run_with("mine=" + train + ":" + missing);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(), missing + ": No such file or directory");

  const std::string short_file = WriteLabels(dir / "short.npy", 100, 4);
  status = run_with("mine=" + short_file);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), short_file +
                                  ": 100 labels, but the trial measures the first 256 "
                                  "samples of the split");

  const std::string floats = (dir / "floats.npy").string();
  WriteNpy(floats, torch::zeros({256}));
  status = run_with("mine=" + floats);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              StartsWith(floats + ": a label file must hold a 1-D integer array"));

  const std::string negative = (dir / "negative.npy").string();
  WriteNpy(negative, torch::arange(256, torch::kInt64) - 7);
  status = run_with("mine=" + negative);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), negative + ": label -7 at row 0; labels must be in [0, 100000)");

  const std::string corrupt = WriteFile((dir / "corrupt.npy").string(), "not numpy");
  status = run_with("mine=" + corrupt);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()), StartsWith(corrupt + ": "));
}

TEST(RunTrialTest, ExportWritesTheLastEpochsFeatures) {
  const auto dir = TempDir("export");
  TrialConfig config = TinySyntheticConfig();
  config.epochs = 1;
  config.data.train_samples = 128;  // and 32 test samples
  config.analysis.max_samples = 100;
  config.analysis.targets = "fine";
  config.analysis.metrics = "ncc";
  config.analysis.layers = "stage1,embedding,projector3";
  std::ostringstream echo;
  TrainerOptions options;
  options.out_dir = (dir / "out").string();
  options.metrics_echo = &echo;
  options.export_dir = (dir / "features").string();
  ASSERT_TRUE(RunTrial(config, options).ok());

  const std::map<std::string, int64_t> widths = {
      {"stage1", 8}, {"embedding", 16}, {"projector3", 32}};
  for (const auto& [tap, width] : widths) {
    const torch::Tensor train = ReadNpy((dir / "features" / (tap + ".train.npy")).string());
    const torch::Tensor test = ReadNpy((dir / "features" / (tap + ".test.npy")).string());
    EXPECT_EQ(train.scalar_type(), torch::kFloat32);
    EXPECT_EQ(train.sizes(), (std::vector<int64_t>{100, width})) << tap;
    EXPECT_EQ(test.sizes(), (std::vector<int64_t>{32, width})) << tap;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "features" / "stage2.train.npy"));
  for (const char* name : {"fine", "coarse"}) {
    const std::string prefix = (dir / "features" / "labels.").string() + name;
    const torch::Tensor train = ReadNpy(prefix + ".train.npy");
    EXPECT_EQ(train.scalar_type(), torch::kInt64);
    EXPECT_EQ(train.sizes(), (std::vector<int64_t>{100}));
    EXPECT_EQ(ReadNpy(prefix + ".test.npy").sizes(), (std::vector<int64_t>{32}));
  }
  // The exported embedding gives the reported accuracy.
  const auto features = dir / "features";
  const torch::Tensor train = ReadNpy((features / "embedding.train.npy").string());
  const torch::Tensor test = ReadNpy((features / "embedding.test.npy").string());
  const torch::Tensor train_labels = ReadNpy((features / "labels.fine.train.npy").string());
  const torch::Tensor test_labels = ReadNpy((features / "labels.fine.test.npy").string());
  const ClassCenters centers = ComputeClassCenters(train, train_labels, 10);
  EXPECT_EQ(NearestClassCenterAccuracy(centers, test, test_labels),
            MetricsByEpoch(echo.str())[1][kNccTestAccMetric]);

  // A trial resumed after its last epoch exports at once.
  std::filesystem::remove_all(dir / "features");
  ASSERT_TRUE(RunTrial(config, options).ok());
  EXPECT_EQ(ReadNpy((features / "embedding.test.npy").string()).sizes(),
            (std::vector<int64_t>{32, 16}));
}

}  // namespace
}  // namespace sslsweep
