// Tests of the trainer library (worker/trainer): the projector, whole tiny
// trials through RunTrial (the metrics contract, the layer-wise measurement
// and its selection keys, label files, feature export), and sslsweep-train's
// exit codes and resume. The
// losses are tested in ssl_method_test.cc, the data sets in data_test.cc,
// the augmentations in augment_test.cc, the optimisers in optimizer_test.cc,
// exact resume in resume_test.cc.

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"
#include "analysis/nearest_class_center.h"
#include "analysis/npy.h"
#include "nlohmann/json.hpp"
#include "worker/trainer/dataset.h"
#include "worker/trainer/projector.h"
#include "worker/trainer/trainer.h"
#include "worker/trial_config.h"

namespace sslsweep {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// ---- Projector -------------------------------------------------------------

TEST(ProjectorTest, MapsEmbeddingToOutputWidth) {
  Projector projector(ProjectorOptions{16, 32, 8});
  EXPECT_EQ(projector->forward(torch::rand({5, 16})).sizes(),
            (std::vector<int64_t>{5, 8}));
  // Linear-BN-ReLU twice, then a bias-free Linear: 3 weights, 2 biases and
  // 2 x (BN weight, BN bias).
  EXPECT_EQ(projector->parameters().size(), 9u);
}

// ---- Whole trials ----------------------------------------------------------

TrialConfig TinySyntheticConfig() {
  TrialConfig config;
  config.seed = 5;
  config.epochs = 2;
  config.threads = 1;
  config.data.dataset = "synthetic";
  config.data.train_samples = 256;
  config.backbone.depth = 2;
  config.backbone.width = 8;
  config.projector.hidden = 32;
  config.projector.out = 32;
  config.optim.batch_size = 64;
  config.analysis.sample_images = 16;
  config.analysis.sample_views = 4;
  return config;
}

// The taps of TinySyntheticConfig's network.
const std::vector<std::string> kTinyTaps = {"stage1",     "stage2",     "embedding",
                                            "projector1", "projector2", "projector3"};
// The suite's metrics of a target with test labels, and of one without.
const std::vector<std::string> kTrainTestMetrics = {
    "ncc_train_acc", "ncc_test_acc", "cdnv", "nc1", "knn_test_acc", "linear_train_acc",
    "linear_test_acc"};
const std::vector<std::string> kTrainOnlyMetrics = {"ncc_train_acc", "cdnv", "nc1",
                                                    "linear_train_acc"};

// A clock that advances one second per reading, so that the epoch times
// (and hence whole metrics files) are reproducible.
std::function<double()> FakeClock() {
  auto now = std::make_shared<double>(0.0);
  return [now] { return *now += 1.0; };
}

struct TrialRun {
  absl::Status status;
  std::string metrics;  // metrics.jsonl
  std::string echoed;   // what went to metrics_echo
};

TrialRun RunInProcess(const TrialConfig& config,
                      const std::filesystem::path& out) {
  std::ostringstream echo;
  TrainerOptions options;
  options.out_dir = out.string();
  options.metrics_echo = &echo;
  options.now_seconds = FakeClock();
  TrialRun run;
  run.status = RunTrial(config, options);
  run.metrics = ReadFile(out / "metrics.jsonl");
  run.echoed = echo.str();
  return run;
}

// epoch -> {name -> value} of a metrics.jsonl text.
std::map<int64_t, std::map<std::string, double>> MetricsByEpoch(const std::string& text) {
  std::map<int64_t, std::map<std::string, double>> epochs;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const auto json = nlohmann::json::parse(line);
    if (json.contains("name")) {
      epochs[json.at("epoch").get<int64_t>()][json.at("name")] = json.at("value").get<double>();
    }
  }
  return epochs;
}

// Writes int64 labels i % classes for `rows` samples as a .npy file.
std::string WriteLabels(const std::filesystem::path& path, int64_t rows, int64_t classes) {
  WriteNpy(path.string(), torch::arange(rows, torch::kInt64).remainder(classes));
  return path.string();
}

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

TEST(RunTrialTest, SameSeedSameNumbersOtherSeedOthers) {
  const auto root = TempDir("seeds");
  TrialConfig config = TinySyntheticConfig();
  config.epochs = 1;
  const TrialRun a = RunInProcess(config, root / "a");
  const TrialRun b = RunInProcess(config, root / "b");
  config.seed = 6;
  const TrialRun c = RunInProcess(config, root / "c");
  ASSERT_TRUE(a.status.ok() && b.status.ok() && c.status.ok());
  EXPECT_EQ(a.metrics, b.metrics);
  EXPECT_NE(a.metrics, c.metrics);
}

TEST(RunTrialTest, AnalysisEveryMeasuresOnlyThoseEpochsAndTheLast) {
  TrialConfig config = TinySyntheticConfig();
  config.epochs = 3;
  config.analysis.every = 2;
  config.data.train_samples = 128;
  const TrialRun run = RunInProcess(config, TempDir("every"));
  ASSERT_TRUE(run.status.ok()) << run.status;
  std::set<int64_t> measured;
  int ends = 0;
  std::istringstream lines(run.metrics);
  std::string line;
  while (std::getline(lines, line)) {
    const auto json = nlohmann::json::parse(line);
    if (json.contains("event")) ++ends;
    if (json.value("name", "") == kNccTestAccMetric) {
      measured.insert(json.at("epoch").get<int64_t>());
    }
  }
  EXPECT_EQ(measured, (std::set<int64_t>{0, 2, 3}));
  EXPECT_EQ(ends, 4);  // every epoch with metrics ends once
}

TEST(RunTrialTest, MissingDatasetFileIsNamed) {
  const auto dir = TempDir("nodata");
  TrialConfig config;
  config.data.root = (dir / "absent").string();
  const TrialRun run = RunInProcess(config, dir / "out");
  EXPECT_EQ(run.status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(run.status.message(),
            config.data.root +
                "/train-images-idx3-ubyte.gz: No such file or directory");
}

TEST(RunTrialTest, RejectsUnrunnableConfigurations) {
  TrialConfig config = TinySyntheticConfig();
  config.optim.name = "lbfgs";
  const TrialRun run = RunInProcess(config, TempDir("unrunnable"));
  EXPECT_EQ(run.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(run.status.message()), StartsWith("optim.name"));
}

TEST(RunTrialTest, DivergenceIsReported) {
  TrialConfig config = TinySyntheticConfig();
  config.seed = 1;
  config.optim.name = "sgd";
  config.optim.lr = 100;
  config.optim.momentum = 0.99;
  const TrialRun run = RunInProcess(config, TempDir("diverge"));
  EXPECT_EQ(run.status.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(run.status.message()),
              ::testing::MatchesRegex(
                  "diverged: loss is (nan|inf|-inf) at epoch 1 step [0-9]+"));
}

TEST(RunTrialTest, CudaWithoutCudaIsRefused) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "a CUDA device exists";
  TrialConfig config = TinySyntheticConfig();
  config.device = "cuda";
  const TrialRun run = RunInProcess(config, TempDir("cuda"));
  EXPECT_EQ(run.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(run.status.message(),
            "device cuda requested but no CUDA device/LibTorch build");
}

TEST(RunTrialTest, Bf16AutocastTrainsOnTheCpu) {
  TrialConfig config = TinySyntheticConfig();
  config.epochs = 1;
  config.data.train_samples = 128;
  config.precision = "bf16";
  const TrialRun bf16 = RunInProcess(config, TempDir("bf16"));
  ASSERT_TRUE(bf16.status.ok()) << bf16.status;
  config.precision = "fp32";
  const TrialRun fp32 = RunInProcess(config, TempDir("fp32"));
  ASSERT_TRUE(fp32.status.ok()) << fp32.status;
  // Same draws, other arithmetic: the numbers differ, the lines do not.
  EXPECT_NE(bf16.metrics, fp32.metrics);
  EXPECT_EQ(std::count(bf16.metrics.begin(), bf16.metrics.end(), '\n'),
            std::count(fp32.metrics.begin(), fp32.metrics.end(), '\n'));
}

// ---- sslsweep-train's exit codes -------------------------------------------

struct ProcessResult {
  int exit_code = -1;
  std::string stderr_text;
};

ProcessResult RunTrainer(const std::filesystem::path& dir,
                         const std::string& yaml, const std::string& flags = "") {
  std::ofstream(dir / "trial.yaml") << yaml;
  const std::string command =
      std::string(SSLSWEEP_BIN_DIR) + "/sslsweep-train --config " +
      (dir / "trial.yaml").string() + " --out " + (dir / "out").string() +
      " --threads 1 " + flags + " > " + (dir / "stdout").string() + " 2> " +
      (dir / "stderr").string();
  const int status = std::system(command.c_str());
  ProcessResult result;
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  result.stderr_text = ReadFile(dir / "stderr");
  return result;
}

TEST(TrainMainTest, ExitCodes) {
  if (!std::filesystem::exists(std::string(SSLSWEEP_BIN_DIR) +
                               "/sslsweep-train")) {
    GTEST_SKIP() << "sslsweep-train is not built";
  }
  const auto root = TempDir("exit");
  const std::string tiny =
      "seed: 1\nepochs: 1\nthreads: 1\n"
      "data: {dataset: synthetic, train_samples: 128}\n"
      "backbone: {depth: 1, width: 4}\nprojector: {hidden: 16, out: 16}\n"
      "analysis: {sample_images: 8, sample_views: 2}\n";
  std::filesystem::create_directories(root / "ok");
  const ProcessResult ok =
      RunTrainer(root / "ok", tiny + "optim: {batch_size: 64}\n",
                 "--export-features " + (root / "ok" / "features").string());
  EXPECT_EQ(ok.exit_code, 0) << ok.stderr_text;
  EXPECT_EQ(ReadFile(root / "ok" / "stdout"),
            ReadFile(root / "ok" / "out" / "metrics.jsonl"));
  EXPECT_EQ(ReadNpy((root / "ok" / "features" / "embedding.train.npy").string()).sizes(),
            (std::vector<int64_t>{128, 4}));

  std::filesystem::create_directories(root / "layer");
  const ProcessResult layer = RunTrainer(
      root / "layer",
      "epochs: 1\ndata: {dataset: synthetic, train_samples: 128}\n"
      "backbone: {depth: 1, width: 4}\noptim: {batch_size: 64}\n"
      "analysis: {layers: stage2}\n");
  EXPECT_EQ(layer.exit_code, 2);
  EXPECT_THAT(layer.stderr_text,
              HasSubstr("sslsweep-train: analysis.layers: the network has no tap 'stage2'; "
                        "its taps: stage1, embedding, projector1, projector2, projector3, "
                        "or all"));

  std::filesystem::create_directories(root / "config");
  const ProcessResult config =
      RunTrainer(root / "config", tiny + "optim: {batch_size: 1}\n");
  EXPECT_EQ(config.exit_code, 2);
  EXPECT_THAT(config.stderr_text,
              HasSubstr("sslsweep-train: " + (root / "config").string() +
                        "/trial.yaml:8:"));

  std::filesystem::create_directories(root / "data");
  const ProcessResult data = RunTrainer(
      root / "data", "data: {root: " + (root / "nowhere").string() + "}\n");
  EXPECT_EQ(data.exit_code, 3);
  EXPECT_THAT(data.stderr_text,
              HasSubstr("nowhere/train-images-idx3-ubyte.gz: No such file or "
                        "directory"));

  std::filesystem::create_directories(root / "diverge");
  // The configuration of RunTrialTest.DivergenceIsReported.
  const ProcessResult diverged = RunTrainer(
      root / "diverge",
      "seed: 1\nepochs: 2\nthreads: 1\n"
      "data: {dataset: synthetic, train_samples: 256}\n"
      "backbone: {depth: 2, width: 8}\nprojector: {hidden: 32, out: 32}\n"
      "optim: {name: sgd, lr: 100, momentum: 0.99, batch_size: 64}\n");
  EXPECT_EQ(diverged.exit_code, 4) << diverged.stderr_text;
  EXPECT_THAT(diverged.stderr_text, HasSubstr("sslsweep-train: diverged: "));
}

TEST(TrainMainTest, ResumesAndRefusesWhatItCannotRun) {
  if (!std::filesystem::exists(std::string(SSLSWEEP_BIN_DIR) +
                               "/sslsweep-train")) {
    GTEST_SKIP() << "sslsweep-train is not built";
  }
  const auto root = TempDir("resume");
  const std::string tiny =
      "epochs: 2\nthreads: 1\n"
      "data: {dataset: synthetic, train_samples: 128}\n"
      "backbone: {depth: 1, width: 4}\nprojector: {hidden: 16, out: 16}\n"
      "optim: {batch_size: 64}\n";
  const ProcessResult first = RunTrainer(root, "seed: 1\n" + tiny);
  ASSERT_EQ(first.exit_code, 0) << first.stderr_text;

  // The same trial again: resumed at its end, nothing left to print.
  const ProcessResult again = RunTrainer(root, "seed: 1\n" + tiny);
  EXPECT_EQ(again.exit_code, 0) << again.stderr_text;
  EXPECT_THAT(again.stderr_text,
              HasSubstr("sslsweep-train: resuming from epoch 2"));
  EXPECT_EQ(ReadFile(root / "stdout"), "");

  const ProcessResult other = RunTrainer(root, "seed: 2\n" + tiny);
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_THAT(other.stderr_text,
              HasSubstr("checkpoint.pt: the checkpoint belongs to another "
                        "trial configuration (seed is 1 in the checkpoint, 2 "
                        "here)"));

  if (!torch::cuda::is_available()) {
    std::filesystem::create_directories(root / "cuda");
    const ProcessResult cuda =
        RunTrainer(root / "cuda", "device: cuda\n" + tiny);
    EXPECT_EQ(cuda.exit_code, 2);
    EXPECT_THAT(cuda.stderr_text,
                HasSubstr("sslsweep-train: device cuda requested but no CUDA "
                          "device/LibTorch build"));
  }
}

}  // namespace
}  // namespace sslsweep
