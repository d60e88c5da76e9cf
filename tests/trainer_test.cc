// Tests of the trainer library (worker/trainer): the VICReg loss against
// plain loops, the ConvNet taps, the augmentations, the Fashion-MNIST reader's
// errors, whole tiny trials through RunTrial, and sslsweep-train's exit codes.

#include <sys/wait.h>

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
#include "nlohmann/json.hpp"
#include "worker/trainer/augment.h"
#include "worker/trainer/convnet.h"
#include "worker/trainer/dataset.h"
#include "worker/trainer/fashion_mnist.h"
#include "worker/trainer/projector.h"
#include "worker/trainer/trainer.h"
#include "worker/trainer/vicreg_loss.h"
#include "worker/trial_config.h"

namespace sslsweep {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using Matrix = std::vector<std::vector<double>>;

std::filesystem::path TempDir(const std::string& name) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) /
      ("trainer_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// ---- VICReg loss against loops over plain numbers --------------------------

torch::Tensor ToTensor(const Matrix& m) {
  torch::Tensor t = torch::empty(
      {static_cast<int64_t>(m.size()), static_cast<int64_t>(m[0].size())},
      torch::kFloat64);
  for (size_t i = 0; i < m.size(); ++i) {
    for (size_t j = 0; j < m[i].size(); ++j) t[i][j] = m[i][j];
  }
  return t;
}

Matrix Centred(const Matrix& m) {
  Matrix c = m;
  for (size_t j = 0; j < m[0].size(); ++j) {
    double mean = 0;
    for (const auto& row : m) mean += row[j];
    mean /= m.size();
    for (auto& row : c) row[j] -= mean;
  }
  return c;
}

double HingeOnStdByLoops(const Matrix& m) {
  const Matrix c = Centred(m);
  const size_t n = m.size(), d = m[0].size();
  double sum = 0;
  for (size_t j = 0; j < d; ++j) {
    double var = 0;
    for (size_t i = 0; i < n; ++i) var += c[i][j] * c[i][j];
    var /= (n - 1);
    sum += std::max(0.0, 1.0 - std::sqrt(var + 1e-4));
  }
  return sum / d;
}

double OffDiagonalByLoops(const Matrix& m) {
  const Matrix c = Centred(m);
  const size_t n = m.size(), d = m[0].size();
  double sum = 0;
  for (size_t j = 0; j < d; ++j) {
    for (size_t k = 0; k < d; ++k) {
      if (j == k) continue;
      double cov = 0;
      for (size_t i = 0; i < n; ++i) cov += c[i][j] * c[i][k];
      cov /= (n - 1);
      sum += cov * cov;
    }
  }
  return sum / d;
}

TEST(VicregLossTest, MatchesLoopsTermByTerm) {
  // Column 0 varies little (std < 1, the hinge is active), column 1 a lot
  // (std > 1, the hinge is zero).
  const Matrix x = {
      {0.1, 2.0, -1.0}, {0.3, -1.5, 0.5}, {-0.2, 0.7, 1.5}, {0.4, -0.9, -0.3}};
  const Matrix y = {
      {0.0, 1.0, 0.2}, {0.5, -2.5, 0.1}, {-0.1, 1.7, 0.9}, {0.2, 0.3, -0.6}};
  double mse = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    for (size_t j = 0; j < x[0].size(); ++j) {
      mse += (x[i][j] - y[i][j]) * (x[i][j] - y[i][j]);
    }
  }
  mse /= x.size() * x[0].size();
  const double variance = HingeOnStdByLoops(x) / 2 + HingeOnStdByLoops(y) / 2;
  const double covariance = OffDiagonalByLoops(x) + OffDiagonalByLoops(y);
  ASSERT_GT(variance, 0.1);  // the case exercises the hinge
  ASSERT_GT(covariance, 0.1);

  const VicregLossOptions options{2.0, 3.0, 5.0};
  const VicregLossTerms terms = VicregLoss(ToTensor(x), ToTensor(y), options);
  EXPECT_NEAR(terms.invariance.item<double>(), mse, 1e-12);
  EXPECT_NEAR(terms.variance.item<double>(), variance, 1e-12);
  EXPECT_NEAR(terms.covariance.item<double>(), covariance, 1e-12);
  EXPECT_NEAR(terms.total.item<double>(),
              2.0 * mse + 3.0 * variance + 5.0 * covariance, 1e-11);
}

TEST(VicregLossTest, DefaultsAreTheOfficialCoefficients) {
  const VicregLossOptions options;
  EXPECT_EQ(options.sim_coeff, 25.0);
  EXPECT_EQ(options.std_coeff, 25.0);
  EXPECT_EQ(options.cov_coeff, 1.0);
  EXPECT_EQ(options.std_epsilon, 1e-4);
}

TEST(VicregLossTest, RejectsMismatchedShapes) {
  EXPECT_THROW(VicregLoss(torch::zeros({4, 3}), torch::zeros({4, 2})),
               c10::Error);
  EXPECT_THROW(VicregLoss(torch::zeros({1, 3}), torch::zeros({1, 3})),
               c10::Error);
}

// ---- ConvNet and projector -------------------------------------------------

TEST(ConvNetTest, TapShapesForEachDepth) {
  const torch::Tensor images = torch::rand({2, 1, 28, 28});
  const std::vector<int64_t> sides = {14, 7, 4, 2, 1};
  for (int64_t depth = 1; depth <= 5; ++depth) {
    SCOPED_TRACE(depth);
    ConvNet net(ConvNetOptions{1, depth, 4});
    const auto taps = net->ForwardTaps(images);
    ASSERT_EQ(taps.size(), static_cast<size_t>(depth + 1));
    for (int64_t i = 0; i < depth; ++i) {
      EXPECT_EQ(taps[i].key(), "stage" + std::to_string(i + 1));
      EXPECT_EQ(taps[i].value().sizes(),
                (std::vector<int64_t>{2, 4 << i, sides[i], sides[i]}));
    }
    EXPECT_EQ(taps[depth].key(), "embedding");
    EXPECT_EQ(taps[depth].value().sizes(),
              (std::vector<int64_t>{2, 4 << (depth - 1)}));
    EXPECT_EQ(net->embedding_dim(), 4 << (depth - 1));
    EXPECT_TRUE(torch::equal(net->forward(images), taps[depth].value()));
  }
}

TEST(ProjectorTest, MapsEmbeddingToOutputWidth) {
  Projector projector(ProjectorOptions{16, 32, 8});
  EXPECT_EQ(projector->forward(torch::rand({5, 16})).sizes(),
            (std::vector<int64_t>{5, 8}));
  // Linear-BN-ReLU twice, then a bias-free Linear: 3 weights, 2 biases and
  // 2 x (BN weight, BN bias).
  EXPECT_EQ(projector->parameters().size(), 9u);
}

// ---- Augmentations ---------------------------------------------------------

TEST(AugmentTest, KeepsShapeAndRangeAndFollowsTheSeed) {
  torch::manual_seed(11);
  const torch::Tensor images = torch::rand({16, 1, 28, 28});
  torch::manual_seed(1);
  const torch::Tensor a = Augment(images);
  torch::manual_seed(1);
  const torch::Tensor b = Augment(images);
  torch::manual_seed(2);
  const torch::Tensor c = Augment(images);

  EXPECT_EQ(a.sizes(), images.sizes());
  EXPECT_GE(a.min().item<float>(), 0.0f);
  EXPECT_LE(a.max().item<float>(), 1.0f);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
  EXPECT_FALSE(torch::allclose(a, images));
  // Per-sample randomness: two copies of one image get different views.
  const torch::Tensor twins = images[0].unsqueeze(0).expand({2, 1, 28, 28});
  const torch::Tensor views = Augment(twins.contiguous());
  EXPECT_FALSE(torch::allclose(views[0], views[1]));
}

TEST(AugmentTest, IdentityWhenEveryRandomChoiceIsOff) {
  AugmentOptions off;
  off.min_scale = off.max_scale = 1.0;
  off.min_ratio = off.max_ratio = 1.0;
  off.flip_prob = 0.0;
  off.jitter_prob = 0.0;
  const torch::Tensor images = torch::rand({4, 1, 28, 28});
  EXPECT_TRUE(torch::allclose(Augment(images, off), images, 0, 1e-5));
}

// ---- Data ------------------------------------------------------------------

TEST(SyntheticDataTest, IsSeededAndShaped) {
  SyntheticDataOptions options;
  options.classes = 4;
  options.train_samples = 40;
  options.test_samples = 10;
  const TrialData a = MakeSyntheticData(options);
  const TrialData b = MakeSyntheticData(options);
  EXPECT_EQ(a.train_images.sizes(), (std::vector<int64_t>{40, 1, 28, 28}));
  EXPECT_EQ(a.test_labels.sizes(), (std::vector<int64_t>{10}));
  EXPECT_EQ(a.num_classes, 4);
  EXPECT_TRUE(torch::equal(a.train_images, b.train_images));
  EXPECT_TRUE(torch::equal(a.train_labels, b.train_labels));
  EXPECT_GE(a.train_images.min().item<float>(), 0.0f);
  EXPECT_LE(a.train_images.max().item<float>(), 1.0f);
  EXPECT_LT(a.train_labels.max().item<int64_t>(), 4);
}

// Writes an uncompressed IDX file; gzread reads plain files transparently,
// so the reader sees it as it would a .gz.
void WriteIdx(const std::filesystem::path& path, std::vector<uint32_t> header,
              size_t payload_bytes, uint8_t fill = 0) {
  std::ofstream out(path, std::ios::binary);
  for (uint32_t v : header) {
    const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                       static_cast<char>(v >> 8), static_cast<char>(v)};
    out.write(b, 4);
  }
  const std::string payload(payload_bytes, static_cast<char>(fill));
  out.write(payload.data(), payload.size());
}

TEST(FashionMnistTest, MissingFileIsNamed) {
  const auto root = TempDir("missing");
  auto data = LoadFashionMnist(root.string(), 0, 0);
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(data.status().message(),
            (root / "train-images-idx3-ubyte.gz").string() +
                ": No such file or directory");
}

TEST(FashionMnistTest, CorruptFilesAreNamed) {
  const auto root = TempDir("corrupt");
  const auto images = root / "images";
  const auto labels = root / "labels";
  WriteIdx(images, {2051, 3, 28, 28}, 3 * 28 * 28);
  WriteIdx(labels, {2049, 3}, 3, 1);
  auto ok = ReadIdxSplit(images.string(), labels.string(), 2);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->count, 2);
  EXPECT_EQ(ok->pixels.size(), 2u * 28 * 28);

  struct Case {
    std::vector<uint32_t> image_header;
    size_t image_bytes;
    std::vector<uint32_t> label_header;
    size_t label_bytes;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{2049, 3, 28, 28},
       3 * 28 * 28,
       {2049, 3},
       3,
       images.string() + ": bad magic number 2049 (expected 2051"},
      {{2051, 3, 28, 28},
       100,
       {2049, 3},
       3,
       images.string() +
           ": short read: expected 2352 bytes of pixel data, got 100"},
      {{2051, 3, 28, 28},
       3 * 28 * 28 + 1,
       {2049, 3},
       3,
       images.string() + ": size mismatch: trailing bytes"},
      {{2051, 3, 28, 28},
       3 * 28 * 28,
       {2049, 4},
       4,
       labels.string() + ": size mismatch: 4 labels but " + images.string() +
           " has 3 images"},
      {{2051, 3}, 0, {2049, 3}, 3, images.string() + ": short read"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.expected);
    WriteIdx(images, c.image_header, c.image_bytes);
    WriteIdx(labels, c.label_header, c.label_bytes, 1);
    auto result = ReadIdxSplit(images.string(), labels.string(), 0);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(result.status().message()), StartsWith(c.expected));
  }
  WriteIdx(images, {2051, 3, 28, 28}, 3 * 28 * 28);
  WriteIdx(labels, {2049, 3}, 3, 10);
  EXPECT_THAT(
      std::string(
          ReadIdxSplit(images.string(), labels.string(), 0).status().message()),
      HasSubstr("label 10 of sample 0 is outside [0, 10)"));
}

TEST(FashionMnistTest, ReadsTheInstalledDataset) {
  const std::string root = DataConfig().root;
  if (!std::filesystem::exists(root + "/t10k-labels-idx1-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  auto data = LoadFashionMnist(root, 100, 50);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->train.count, 100);
  EXPECT_EQ(data->test.count, 50);
  EXPECT_EQ(data->train.rows, 28);
  EXPECT_EQ(data->train.pixels.size(), 100u * 28 * 28);
  EXPECT_EQ(data->train.labels[0], 9);  // the first training image: a boot
  auto too_many = LoadFashionMnist(root, 0, 10001);
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_many.status().message()),
              StartsWith("data.test_samples: asked for 10001 samples"));
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

}  // namespace
}  // namespace sslsweep
