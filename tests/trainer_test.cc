// Tests of the trainer library (worker/trainer): the projector, whole tiny
// trials through RunTrial (seeds, cadence, refusals, divergence, devices),
// and sslsweep-train's exit codes and resume. The layer-wise measurement is
// tested in trainer_analysis_test.cc; the
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
#include "tests/trainer_test_util.h"
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

// The lines of `text`, each parsed.
std::vector<nlohmann::json> JsonLines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

// `text` without its checkpoint event lines.
std::string WithoutCheckpointEvents(const std::string& text) {
  std::istringstream in(text);
  std::string kept;
  for (std::string line; std::getline(in, line);) {
    if (nlohmann::json::parse(line).value("event", "") != "checkpoint") kept += line + "\n";
  }
  return kept;
}

TEST(RunTrialTest, CheckpointLinksAreSnapshotsAnnouncedAfterTheEpoch) {
  const auto out = TempDir("links");
  TrainerOptions options;
  std::ostringstream echo;
  options.out_dir = out.string();
  options.metrics_echo = &echo;
  options.now_seconds = FakeClock();
  options.checkpoint_links = true;
  const TrialConfig config = TinySyntheticConfig();  // 2 epochs
  ASSERT_TRUE(RunTrial(config, options).ok());

  // Each event follows its epoch's epoch_end line at once, and names the link.
  const std::vector<nlohmann::json> lines = JsonLines(echo.str());
  std::vector<int64_t> events;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].value("event", "") != "checkpoint") continue;
    const int64_t epoch = lines[i].at("epoch");
    events.push_back(epoch);
    EXPECT_EQ(lines[i].dump(), "{\"epoch\":" + std::to_string(epoch) +
                                   ",\"event\":\"checkpoint\",\"path\":\"checkpoint-" +
                                   std::to_string(epoch) + ".pt\"}");
    ASSERT_GT(i, 0u);
    EXPECT_EQ(lines[i - 1].value("event", ""), "epoch_end");
    EXPECT_EQ(lines[i - 1].at("epoch"), epoch);
  }
  EXPECT_EQ(events, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(lines.back().value("event", ""), "checkpoint");

  // The last link is the final checkpoint.pt itself; the first a snapshot of
  // epoch 1 that the rename of epoch 2's save left alone.
  EXPECT_EQ(std::filesystem::hard_link_count(out / "checkpoint.pt"), 2u);
  EXPECT_TRUE(std::filesystem::equivalent(out / "checkpoint.pt", out / "checkpoint-2.pt"));
  EXPECT_EQ(std::filesystem::hard_link_count(out / "checkpoint-1.pt"), 1u);
  EXPECT_NE(ReadFile(out / "checkpoint-1.pt"), ReadFile(out / "checkpoint.pt"));
  EXPECT_FALSE(ReadFile(out / "checkpoint-1.pt").empty());

  // metrics.jsonl holds everything but the events.
  EXPECT_EQ(ReadFile(out / "metrics.jsonl"), WithoutCheckpointEvents(echo.str()));
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

// How a worker resumes an attempt from the coordinator's copy of a
// checkpoint: a fresh directory holding nothing but checkpoint.pt.
TEST(TrainMainTest, ResumesFromADirectoryHoldingOnlyACheckpoint) {
  if (!std::filesystem::exists(std::string(SSLSWEEP_BIN_DIR) +
                               "/sslsweep-train")) {
    GTEST_SKIP() << "sslsweep-train is not built";
  }
  const auto root = TempDir("downloaded");
  const std::string tiny =
      "seed: 4\nepochs: 2\nthreads: 1\n"
      "data: {dataset: synthetic, train_samples: 128}\n"
      "backbone: {depth: 1, width: 4}\nprojector: {hidden: 16, out: 16}\n"
      "optim: {batch_size: 64}\n"
      "analysis: {sample_images: 8, sample_views: 2}\n";
  std::filesystem::create_directories(root / "first");
  const ProcessResult first = RunTrainer(root / "first", tiny, "--checkpoint-links");
  ASSERT_EQ(first.exit_code, 0) << first.stderr_text;
  const std::string first_stdout = ReadFile(root / "first" / "stdout");
  EXPECT_EQ(ReadFile(root / "first" / "out" / "metrics.jsonl"),
            WithoutCheckpointEvents(first_stdout));

  std::filesystem::create_directories(root / "second" / "out");
  std::filesystem::copy_file(root / "first" / "out" / "checkpoint-1.pt",
                             root / "second" / "out" / "checkpoint.pt");
  const ProcessResult second = RunTrainer(root / "second", tiny, "--checkpoint-links");
  ASSERT_EQ(second.exit_code, 0) << second.stderr_text;
  EXPECT_THAT(second.stderr_text, HasSubstr("sslsweep-train: resuming from epoch 1"));

  // Epoch 2 only, the same values as the run that never stopped (but for
  // the wall-clock time), then its checkpoint event.
  const auto epoch2_without_time = [](const std::string& text) {
    std::string kept;
    for (const nlohmann::json& line : JsonLines(text)) {
      if (line.value("name", "") == kEpochSecondsMetric) continue;
      if (line.at("epoch") == 2) kept += line.dump() + "\n";
    }
    return kept;
  };
  const std::string second_stdout = ReadFile(root / "second" / "stdout");
  for (const nlohmann::json& line : JsonLines(second_stdout)) EXPECT_EQ(line.at("epoch"), 2);
  EXPECT_EQ(epoch2_without_time(second_stdout), epoch2_without_time(first_stdout));
  EXPECT_EQ(JsonLines(second_stdout).back().value("event", ""), "checkpoint");
  EXPECT_EQ(ReadFile(root / "second" / "out" / "metrics.jsonl"),
            WithoutCheckpointEvents(second_stdout));
  EXPECT_TRUE(std::filesystem::exists(root / "second" / "out" / "checkpoint-2.pt"));
}

}  // namespace
}  // namespace sslsweep
