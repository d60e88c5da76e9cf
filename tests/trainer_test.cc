// Tests of the trainer library (worker/trainer): the projector, whole tiny
// trials through RunTrial, and sslsweep-train's exit codes and resume. The
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
  return config;
}

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

TEST(RunTrialTest, TinySyntheticTrialWritesTheMetricsContract) {
  const auto out = TempDir("tiny") / "trial";  // created by RunTrial
  const TrialConfig config = TinySyntheticConfig();
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

  EXPECT_EQ(epochs[0].size(), 2u);
  for (int64_t epoch = 0; epoch <= 2; ++epoch) {
    for (const char* name : {kNccTrainAccMetric, kNccTestAccMetric}) {
      ASSERT_EQ(epochs[epoch].count(name), 1u) << epoch << " " << name;
      EXPECT_GE(epochs[epoch][name], 0.0);
      EXPECT_LE(epochs[epoch][name], 1.0);
    }
  }
  for (int64_t epoch = 1; epoch <= 2; ++epoch) {
    auto& m = epochs[epoch];
    EXPECT_EQ(m.size(), 7u);
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
  // The synthetic classes are learnable: well above the 10% of chance.
  EXPECT_GT(epochs[2][kNccTestAccMetric], 0.4);
  EXPECT_GT(epochs[2][kNccTrainAccMetric], 0.4);
  EXPECT_LT(epochs[2][kLossTotalMetric], epochs[1][kLossTotalMetric]);
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
                         const std::string& yaml) {
  std::ofstream(dir / "trial.yaml") << yaml;
  const std::string command =
      std::string(SSLSWEEP_BIN_DIR) + "/sslsweep-train --config " +
      (dir / "trial.yaml").string() + " --out " + (dir / "out").string() +
      " --threads 1 > " + (dir / "stdout").string() + " 2> " +
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
      "backbone: {depth: 1, width: 4}\nprojector: {hidden: 16, out: 16}\n";
  std::filesystem::create_directories(root / "ok");
  const ProcessResult ok =
      RunTrainer(root / "ok", tiny + "optim: {batch_size: 64}\n");
  EXPECT_EQ(ok.exit_code, 0) << ok.stderr_text;
  EXPECT_EQ(ReadFile(root / "ok" / "stdout"),
            ReadFile(root / "ok" / "out" / "metrics.jsonl"));

  std::filesystem::create_directories(root / "config");
  const ProcessResult config =
      RunTrainer(root / "config", tiny + "optim: {batch_size: 1}\n");
  EXPECT_EQ(config.exit_code, 2);
  EXPECT_THAT(config.stderr_text,
              HasSubstr("sslsweep-train: " + (root / "config").string() +
                        "/trial.yaml:7:"));

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
