// Tests of checkpoints and exact resume (worker/trainer/checkpoint.h and
// RunTrial's resume): a tiny synthetic trial stopped after epoch 2 and
// resumed ends with the parameters and metrics of one that never stopped, for
// each optimiser; a checkpoint of another configuration, of an older trainer
// or a corrupt one is refused; a finished trial resumes to nothing.

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"
#include "tests/trainer_test_util.h"
#include "nlohmann/json.hpp"
#include "worker/trainer/checkpoint.h"
#include "worker/trainer/trainer.h"
#include "worker/trial_config.h"

namespace sslsweep {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TrialConfig TinyConfig(const std::string& optimizer) {
  TrialConfig config;
  config.seed = 3;
  config.epochs = 4;
  config.threads = 1;
  config.data.dataset = "synthetic";
  config.data.train_samples = 128;
  config.backbone.depth = 2;
  config.backbone.width = 4;
  config.projector.hidden = 16;
  config.projector.out = 16;
  config.optim.name = optimizer;
  config.optim.batch_size = 32;
  if (optimizer == "lars") {
    config.optim.lr = 0.2;
    config.optim.warmup_epochs = 1;
  } else if (optimizer == "sgd") {
    config.optim.lr = 0.02;
  }
  return config;
}

int64_t CheckpointEpoch(const std::filesystem::path& path) {
  torch::serialize::InputArchive archive;
  archive.load_from(path.string());
  torch::Tensor epoch;
  archive.read("epoch", epoch);
  return epoch.item<int64_t>();
}

// The metrics lines of `text` whose epoch lies in [first, last].
std::string LinesOfEpochs(const std::string& text, int64_t first,
                          int64_t last) {
  std::istringstream lines(text);
  std::string kept;
  for (std::string line; std::getline(lines, line);) {
    const int64_t epoch = nlohmann::json::parse(line).at("epoch");
    if (epoch >= first && epoch <= last) kept += line + "\n";
  }
  return kept;
}

// The largest absolute difference between two checkpoints' model tensors;
// fails the test if their names or shapes differ.
double MaxAbsDifference(const std::filesystem::path& a,
                        const std::filesystem::path& b) {
  auto left = ReadCheckpointModel(a.string());
  auto right = ReadCheckpointModel(b.string());
  EXPECT_TRUE(left.ok()) << left.status();
  EXPECT_TRUE(right.ok()) << right.status();
  if (!left.ok() || !right.ok()) return INFINITY;
  EXPECT_GT(left->size(), 4u);
  double max = 0;
  for (const auto& [name, tensor] : *left) {
    const auto other = right->find(name);
    EXPECT_NE(other, right->end()) << name;
    if (other == right->end()) return INFINITY;
    EXPECT_EQ(tensor.sizes(), other->second.sizes()) << name;
    max = std::max(
        max, (tensor.to(torch::kFloat64) - other->second.to(torch::kFloat64))
                 .abs()
                 .max()
                 .item<double>());
  }
  EXPECT_EQ(left->size(), right->size());
  return max;
}

class ExactResumeTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ExactResumeTest, StoppedAndResumedEqualsUninterrupted) {
  const TrialConfig config = TinyConfig(GetParam());
  const auto root = TempDir("exact_" + GetParam());

  const TrialRun whole = RunInProcess(config, root / "whole");
  ASSERT_TRUE(whole.status.ok()) << whole.status;

  const TrialRun first =
      RunInProcess(config, root / "resumed", /*stop_after_epoch=*/2);
  ASSERT_TRUE(first.status.ok()) << first.status;
  EXPECT_EQ(CheckpointEpoch(root / "resumed" / "checkpoint.pt"), 2);
  EXPECT_EQ(first.echoed, LinesOfEpochs(whole.echoed, 0, 2));
  // A kill during epoch 3 would leave some of its lines, the last one cut.
  std::ofstream(root / "resumed" / "metrics.jsonl", std::ios::app)
      << "{\"epoch\":3,\"name\":\"loss/total\",\"value\":1.5}\n{\"epoch\":3,";

  const TrialRun second = RunInProcess(config, root / "resumed");
  ASSERT_TRUE(second.status.ok()) << second.status;
  EXPECT_THAT(second.log, HasSubstr("sslsweep-train: resuming from epoch 2\n"));
  // Only epochs 3 and 4 are emitted, with the uninterrupted run's values
  // (the lines print each double in its shortest exact form).
  EXPECT_EQ(second.echoed, LinesOfEpochs(whole.echoed, 3, 4));
  EXPECT_FALSE(second.echoed.empty());
  EXPECT_EQ(ReadFile(root / "resumed" / "metrics.jsonl"),
            ReadFile(root / "whole" / "metrics.jsonl"));

  const double difference = MaxAbsDifference(
      root / "whole" / "checkpoint.pt", root / "resumed" / "checkpoint.pt");
  RecordProperty("max_abs_difference", std::to_string(difference));
  std::printf("%s: max abs parameter difference %g\n", GetParam().c_str(),
              difference);
  EXPECT_EQ(difference, 0.0);
}

INSTANTIATE_TEST_SUITE_P(Optimizers, ExactResumeTest,
                         ::testing::Values("sgd", "lars", "adamw"));

TEST(ResumeTest, AnotherConfigurationIsRefusedAndChangesNothing) {
  TrialConfig config = TinyConfig("sgd");
  config.epochs = 2;
  const auto out = TempDir("other_config");
  ASSERT_TRUE(RunInProcess(config, out, /*stop_after_epoch=*/1).status.ok());
  const std::string checkpoint = ReadFile(out / "checkpoint.pt");
  const std::string metrics = ReadFile(out / "metrics.jsonl");
  const std::string yaml = ReadFile(out / "config.yaml");

  config.optim.lr = 0.05;
  const TrialRun refused = RunInProcess(config, out);
  EXPECT_EQ(refused.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.status.message(),
            (out / "checkpoint.pt").string() +
                ": the checkpoint belongs to another trial configuration "
                "(optim.lr is 0.02 in the checkpoint, 0.05 here); delete it "
                "or give this trial another output directory");
  EXPECT_TRUE(refused.echoed.empty());
  EXPECT_EQ(ReadFile(out / "checkpoint.pt"), checkpoint);
  EXPECT_EQ(ReadFile(out / "metrics.jsonl"), metrics);
  EXPECT_EQ(ReadFile(out / "config.yaml"), yaml);

  config.optim.lr = 0.02;
  config.seed = 4;
  EXPECT_THAT(std::string(RunInProcess(config, out).status.message()),
              HasSubstr("(seed is 3 in the checkpoint, 4 here)"));
}

TEST(ResumeTest, AFinishedTrialResumesToNothingWhateverTheThreads) {
  TrialConfig config = TinyConfig("adamw");
  config.epochs = 1;
  const auto out = TempDir("finished");
  ASSERT_TRUE(RunInProcess(config, out).status.ok());
  const std::string metrics = ReadFile(out / "metrics.jsonl");

  config.threads = 2;  // the speed of a trial, not which trial it is
  const TrialRun again = RunInProcess(config, out);
  ASSERT_TRUE(again.status.ok()) << again.status;
  EXPECT_THAT(again.log, HasSubstr("resuming from epoch 1: every epoch is "
                                   "done"));
  EXPECT_TRUE(again.echoed.empty());
  EXPECT_EQ(ReadFile(out / "metrics.jsonl"), metrics);
}

TEST(ResumeTest, CheckpointWithoutConfigurationIsRefused) {
  const auto out = TempDir("old_format");
  torch::serialize::OutputArchive archive;
  archive.write("epoch", torch::tensor(int64_t{1}));
  archive.save_to((out / "checkpoint.pt").string());
  const TrialRun run = RunInProcess(TinyConfig("sgd"), out);
  EXPECT_EQ(run.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(run.status.message()),
              HasSubstr("checkpoint.pt: the checkpoint records no trial "
                        "configuration"));
}

TEST(ResumeTest, CorruptCheckpointIsDataLoss) {
  const auto out = TempDir("corrupt");
  std::ofstream(out / "checkpoint.pt") << "not a zip archive";
  const TrialRun run = RunInProcess(TinyConfig("sgd"), out);
  EXPECT_EQ(run.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(run.status.message()),
              StartsWith((out / "checkpoint.pt").string() +
                         ": cannot read checkpoint: "));
}

TEST(ResumeTest, CheckpointHoldsTheDocumentedKeys) {
  TrialConfig config = TinyConfig("lars");
  config.epochs = 2;
  const auto out = TempDir("keys");
  ASSERT_TRUE(RunInProcess(config, out, /*stop_after_epoch=*/1).status.ok());
  torch::serialize::InputArchive archive;
  archive.load_from((out / "checkpoint.pt").string());
  torch::Tensor epoch, step, rng;
  archive.read("epoch", epoch);
  archive.read("step", step);
  archive.read("rng_state", rng);
  EXPECT_EQ(epoch.item<int64_t>(), 1);
  EXPECT_EQ(step.item<int64_t>(), 4);  // 128 samples in batches of 32
  EXPECT_EQ(rng.scalar_type(), torch::kUInt8);
  c10::IValue text;
  archive.read("config", text);
  EXPECT_EQ(text.toStringRef(), CheckpointConfigText(config));
  EXPECT_THAT(text.toStringRef(), HasSubstr("threads: 0\n"));
  torch::serialize::InputArchive optimizer, state;
  ASSERT_TRUE(archive.try_read("optimizer", optimizer));
  ASSERT_TRUE(optimizer.try_read("state", state));
  EXPECT_FALSE(state.keys().empty());  // one momentum buffer per parameter
  EXPECT_FALSE(std::filesystem::exists(out / "checkpoint.pt.tmp"));
}

}  // namespace
}  // namespace sslsweep
