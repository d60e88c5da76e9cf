// Data-parallel training is exact: sslsweep-train as two Gloo ranks (two
// processes on loopback) and as one process with the same global batch end
// with the same parameters and report the same metrics. A rank whose peer
// dies exits with code 5.

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/cleanup/cleanup.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/test_util.h"
#include "worker/agent/subprocess.h"

namespace sslsweep {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

const std::string kTrain = std::string(SSLSWEEP_BIN_DIR) + "/sslsweep-train";

// Two epochs of 4 steps of a global batch of 64, every BatchNorm in the
// network (ConvNet stages, projector) synchronised across the ranks. The
// ranks sum in another order than one process, so the runs agree to
// rounding, and the setting keeps rounding from being amplified: SGD,
// because the projector's Linear biases feed BatchNorm, which cancels them,
// so their gradients are zero up to rounding, which an adaptive optimiser
// (AdamW, LARS's trust ratio) scales up to full steps; a small learning
// rate, because VICReg's variance hinge is not smooth and at lr 0.01 a
// dimension's std crossing 1 one way or the other on a rounding difference
// already moves the epoch-2 loss by 2e-4 (the same would split two
// single-process runs that sum in different orders).
constexpr char kTrial[] = R"(epochs: 2
threads: 1
seed: 3
data: {dataset: synthetic, train_samples: 256, test_samples: 128, synthetic_classes: 4,
       synthetic_superclasses: 2}
backbone: {depth: 2, width: 8}
projector: {hidden: 32, out: 32}
optim: {name: sgd, batch_size: 64, lr: 0.002}
analysis: {layers: embedding, targets: 'fine,random', metrics: 'ncc,cdnv,knn'}
)";

std::unique_ptr<Subprocess> Start(const std::vector<std::string>& argv,
                                  const std::string& err_file) {
  SubprocessOptions spawn;
  spawn.argv = argv;
  spawn.capture_stdout = true;
  spawn.stderr_file = err_file;
  auto child = Subprocess::Spawn(spawn);
  EXPECT_TRUE(child.ok()) << child.status();
  return child.ok() ? std::move(*child) : nullptr;
}

// Every (name, epoch) value of a metrics.jsonl.
std::map<std::string, double> Metrics(const std::filesystem::path& file) {
  std::map<std::string, double> values;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    const auto json = nlohmann::json::parse(line);
    if (json.contains("name") && json["name"] != "time/epoch_seconds") {
      values[json["name"].get<std::string>() + "@" + std::to_string(json["epoch"].get<int>())] =
          json["value"].get<double>();
    }
  }
  return values;
}

// Every tensor of a checkpoint's model, by dotted path.
void ReadTensors(torch::serialize::InputArchive& archive, const std::string& prefix,
                 std::map<std::string, torch::Tensor>* out) {
  for (const std::string& key : archive.keys()) {
    torch::Tensor tensor;
    if (archive.try_read(key, tensor) || archive.try_read(key, tensor, /*is_buffer=*/true)) {
      (*out)[prefix + key] = tensor;
      continue;
    }
    torch::serialize::InputArchive nested;
    if (archive.try_read(key, nested)) ReadTensors(nested, prefix + key + ".", out);
  }
}

std::map<std::string, torch::Tensor> ModelTensors(const std::filesystem::path& checkpoint) {
  torch::serialize::InputArchive archive;
  archive.load_from(checkpoint.string());
  torch::serialize::InputArchive model;
  EXPECT_TRUE(archive.try_read("model", model));
  std::map<std::string, torch::Tensor> tensors;
  ReadTensors(model, "", &tensors);
  return tensors;
}

TEST(DataParallelTrainerTest, TwoGlooRanksTrainAsOneProcessWithTheWholeBatch) {
  const std::filesystem::path dir = TempDir("dp");
  const std::string config = WriteFile((dir / "trial.yaml").string(), kTrial);

  auto alone = Start({kTrain, "--config", config, "--out", (dir / "alone").string()},
                     (dir / "alone.err").string());
  ASSERT_NE(alone, nullptr);
  std::string line;
  while (alone->ReadLine(&line)) {
  }
  ASSERT_TRUE(alone->Wait().success()) << ReadFile(dir / "alone.err");

  // Rank 0 listens on a free port and prints it; rank 1 joins there.
  auto rank0 = Start({kTrain, "--config", config, "--out", (dir / "rank0").string(),
                      "--world-size", "2", "--rank", "0", "--master", "127.0.0.1:0"},
                     (dir / "rank0.err").string());
  ASSERT_NE(rank0, nullptr);
  int port = 0;
  while (port == 0 && rank0->ReadLine(&line)) {
    const auto json = nlohmann::json::parse(line, nullptr, false);
    if (json.is_object() && json.value("event", "") == "rendezvous") port = json["port"];
  }
  ASSERT_GT(port, 0) << ReadFile(dir / "rank0.err");
  auto rank1 = Start({kTrain, "--config", config, "--out", (dir / "rank1").string(),
                      "--world-size", "2", "--rank", "1", "--master",
                      "127.0.0.1:" + std::to_string(port)},
                     (dir / "rank1.err").string());
  ASSERT_NE(rank1, nullptr);
  while (rank0->ReadLine(&line)) {
  }
  while (rank1->ReadLine(&line)) {
  }
  ASSERT_TRUE(rank0->Wait().success()) << ReadFile(dir / "rank0.err");
  ASSERT_TRUE(rank1->Wait().success()) << ReadFile(dir / "rank1.err");

  // The same parameters and BatchNorm statistics after 8 steps, on both ranks.
  const auto expected = ModelTensors(dir / "alone" / "checkpoint.pt");
  ASSERT_GT(expected.size(), 10u);
  for (const char* rank : {"rank0", "rank1"}) {
    const auto actual = ModelTensors(dir / rank / "checkpoint.pt");
    ASSERT_EQ(actual.size(), expected.size()) << rank;
    for (const auto& [name, tensor] : expected) {
      ASSERT_EQ(actual.count(name), 1u) << rank << " lacks " << name;
      EXPECT_TRUE(torch::allclose(actual.at(name).to(torch::kDouble),
                                  tensor.to(torch::kDouble), 1e-5, 1e-5))
          << rank << " " << name << ": max difference "
          << (actual.at(name).to(torch::kDouble) - tensor.to(torch::kDouble))
                 .abs()
                 .max()
                 .item<double>();
    }
  }

  // The same metrics: rank 0 measures (every analysis value and the losses),
  // rank 1 reports the losses only.
  const auto alone_metrics = Metrics(dir / "alone" / "metrics.jsonl");
  const auto rank0_metrics = Metrics(dir / "rank0" / "metrics.jsonl");
  const auto rank1_metrics = Metrics(dir / "rank1" / "metrics.jsonl");
  ASSERT_EQ(rank0_metrics.size(), alone_metrics.size());
  for (const auto& [key, value] : alone_metrics) {
    ASSERT_EQ(rank0_metrics.count(key), 1u) << key;
    EXPECT_NEAR(rank0_metrics.at(key), value, 1e-5 * std::max(1.0, std::abs(value))) << key;
    if (key.rfind("loss/", 0) == 0) {
      ASSERT_EQ(rank1_metrics.count(key), 1u) << key;
      EXPECT_NEAR(rank1_metrics.at(key), value, 1e-5 * std::max(1.0, std::abs(value))) << key;
    } else {
      EXPECT_EQ(rank1_metrics.count(key), 0u) << "rank 1 measured " << key;
    }
  }
}

TEST(DataParallelTrainerTest, ABatchTheRanksCannotShareIsAConfigurationError) {
  const std::filesystem::path dir = TempDir("dp-bad");
  std::string trial = kTrial;
  trial.replace(trial.find("batch_size: 64"), 14, "batch_size: 62");
  const std::string config = WriteFile((dir / "trial.yaml").string(), trial);
  // Refused before the rendezvous: no rank waits for the others.
  auto rank0 = Start({kTrain, "--config", config, "--out", (dir / "rank0").string(),
                      "--world-size", "3", "--rank", "0", "--master", "127.0.0.1:0"},
                     (dir / "rank0.err").string());
  ASSERT_NE(rank0, nullptr);
  std::string line, out;
  while (rank0->ReadLine(&line)) out += line;
  const ExitStatus status = rank0->Wait();
  EXPECT_EQ(status.code, 2);
  EXPECT_THAT(out, Not(HasSubstr("rendezvous")));
  EXPECT_THAT(ReadFile(dir / "rank0.err"), HasSubstr("must be divisible by it"));

  // A bad --rank or --master is refused before anything starts.
  auto bad = Start({kTrain, "--config", config, "--out", (dir / "x").string(), "--world-size",
                    "2", "--rank", "1", "--master", "127.0.0.1:0"},
                   (dir / "bad.err").string());
  while (bad->ReadLine(&line)) {
  }
  EXPECT_EQ(bad->Wait().code, 2);
  EXPECT_THAT(ReadFile(dir / "bad.err"), HasSubstr("--master"));
}

// A rank whose peer dies exits with its own code (5), the last stderr line
// naming the loss, at once rather than after the collectives' timeout.
TEST(DataParallelTrainerTest, ARankWhosePeerIsKilledExitsWithLostPeer) {
  const std::filesystem::path dir = TempDir("dp-kill");
  // Far more epochs than the test waits for: rank 0 cannot finish before
  // rank 1 is killed, since every step waits for both.
  std::string trial = kTrial;
  trial.replace(trial.find("epochs: 2"), 9, "epochs: 100");
  const std::string config = WriteFile((dir / "trial.yaml").string(), trial);
  auto rank0 = Start({kTrain, "--config", config, "--out", (dir / "rank0").string(),
                      "--world-size", "2", "--rank", "0", "--master", "127.0.0.1:0"},
                     (dir / "rank0.err").string());
  ASSERT_NE(rank0, nullptr);
  std::string line;
  int port = 0;
  while (port == 0 && rank0->ReadLine(&line)) {
    const auto json = nlohmann::json::parse(line, nullptr, false);
    if (json.is_object() && json.value("event", "") == "rendezvous") port = json["port"];
  }
  ASSERT_GT(port, 0) << ReadFile(dir / "rank0.err");
  auto rank1 = Start({kTrain, "--config", config, "--out", (dir / "rank1").string(),
                      "--world-size", "2", "--rank", "1", "--master",
                      "127.0.0.1:" + std::to_string(port)},
                     (dir / "rank1.err").string());
  ASSERT_NE(rank1, nullptr);
  // Rank 0 from here on in its own thread, which drains its stdout (a full
  // pipe would stall it) and reaps it.
  auto rank0_exit = std::async(std::launch::async, [&rank0] {
    std::string ignored;
    while (rank0->ReadLine(&ignored)) {
    }
    return rank0->Wait();
  });
  // Should an assertion below return early: the thread ends with rank 0.
  const absl::Cleanup stop_rank0 = [&rank0] { rank0->Signal(SIGKILL); };

  // Training has started once rank 1 reports epoch 1's loss.
  bool trained = false;
  while (!trained && rank1->ReadLine(&line)) {
    const auto json = nlohmann::json::parse(line, nullptr, false);
    trained = json.is_object() && json.value("name", "") == "loss/total";
  }
  ASSERT_TRUE(trained) << ReadFile(dir / "rank1.err");
  rank1->Signal(SIGKILL);
  EXPECT_FALSE(rank1->Wait().exited);

  ASSERT_EQ(rank0_exit.wait_for(std::chrono::seconds(20)), std::future_status::ready)
      << "rank 0 still ran 20 s after rank 1 was killed:\n"
      << ReadFile(dir / "rank0.err");
  const ExitStatus status = rank0_exit.get();
  const std::string err = ReadFile(dir / "rank0.err");
  EXPECT_TRUE(status.exited) << status.Describe();
  EXPECT_EQ(status.code, 5) << err;
  std::string last = err.substr(0, err.find_last_not_of('\n') + 1);
  last = last.substr(last.rfind('\n') + 1);
  EXPECT_THAT(last, StartsWith("sslsweep-train: lost a peer rank: ")) << err;
}

}  // namespace
}  // namespace sslsweep
