// sslsweep-bench-train: training throughput of the trainer's step, in images
// per second, for issue 3's side-by-side comparison with plain PyTorch eager
// (bench/train_throughput_torch.py; bench/train_throughput.sh runs both).
//
//   sslsweep-bench-train [--threads T] [--batch 256] [--warmup-steps 1]
//       [--steps 3] [--width-multiplier 1.0] [--projector 512]
//       [--optimizer lars]
//
// It builds the trainer's own pieces from a default TrialConfig (VICReg's
// augmentation recipe): MakeBackbone (resnet18 for 3x32x32 images),
// MakeSslMethod (vicreg, projector hidden = out = --projector), MakeOptimizer,
// AugmentView; and runs, on one fixed synthetic batch of 8-bit-like pixels in
// [0, 1] (no dataset files), the step TrialRunner::TrainEpoch runs: set the
// learning rate, two AugmentView calls, Loss, reading the loss terms back,
// zero_grad, backward, step, AfterStep. Threads are set as the trainer sets
// them: torch::set_num_threads and OpenBLAS's own pool.
//
// Prints one JSON line to stdout:
//   {"impl":"sslsweep","threads":T,"batch":B,"steps":S,"seconds":..,
//    "images_per_second":..,"parts":{"augment":..,"forward":..,
//    "backward":..,"optimizer":..}}
// where seconds covers the S timed steps, images_per_second = S * B / seconds
// and parts splits seconds (wall time; CPU work is synchronous, so each part
// ends when its ops have). Exit code 1 on a setup error, 2 on bad flags.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "worker/trainer/augment.h"
#include "worker/trainer/backbone.h"
#include "worker/trainer/device.h"
#include "worker/trainer/optimizer.h"
#include "worker/trainer/ssl_method.h"
#include "worker/trial_config.h"

namespace sslsweep {
namespace {

constexpr int64_t kImageSide = 32;
constexpr int64_t kChannels = 3;

struct BenchOptions {
  int threads = 1;
  int64_t batch = 256;
  int64_t warmup_steps = 1;
  int64_t steps = 3;
  double width_multiplier = 1.0;
  int64_t projector = 512;
  std::string optimizer = "lars";
  int64_t seed = 0;
};

// Wall-clock seconds of each part of the timed steps.
struct StepParts {
  double augment = 0;
  double forward = 0;  // Loss, and reading its terms back
  double backward = 0;  // zero_grad and backward
  double optimizer = 0;  // step and AfterStep
};

struct BenchResult {
  double seconds = 0;
  StepParts parts;
};

double Now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

TrialConfig BenchTrialConfig(const BenchOptions& options) {
  TrialConfig config;  // the defaults: VICReg and its augmentation recipe
  config.threads = options.threads;
  config.backbone.name = "resnet18";
  config.backbone.width_multiplier = options.width_multiplier;
  config.projector.hidden = options.projector;
  config.projector.out = options.projector;
  config.method.name = "vicreg";
  config.optim.name = options.optimizer;
  config.optim.batch_size = options.batch;
  return config;
}

// The trained network and its optimiser, as the trainer builds them.
class BenchNetwork {
 public:
  static absl::StatusOr<std::unique_ptr<BenchNetwork>> Make(
      const TrialConfig& config) {
    const ImageShape shape{kChannels, kImageSide, kImageSide};
    std::shared_ptr<Backbone> backbone = MakeBackbone(config.backbone, shape);
    auto method = MakeSslMethod(config.method, config.projector, *backbone,
                                [&] { return MakeBackbone(config.backbone, shape); });
    if (!method.ok()) return method.status();
    std::vector<torch::Tensor> parameters = backbone->parameters();
    for (const torch::Tensor& p : (*method)->TrainableParameters()) {
      parameters.push_back(p);
    }
    auto optimizer = MakeOptimizer(config.optim, std::move(parameters));
    if (!optimizer.ok()) return optimizer.status();
    return std::unique_ptr<BenchNetwork>(new BenchNetwork(
        std::move(backbone), *std::move(method), *std::move(optimizer)));
  }

  // One training step on `images`, as TrialRunner::TrainEpoch's; adds its
  // parts' wall time to `parts`.
  void Step(const torch::Tensor& images, const TrialConfig& config,
            int64_t step, int64_t total_steps, StepParts& parts) {
    double start = Now();
    SetLearningRate(*optimizer_,
                    LearningRateAt(step, total_steps, 0, config.optim.lr));
    const torch::Tensor view1 = AugmentView(images, config.augment, 1);
    const torch::Tensor view2 = AugmentView(images, config.augment, 2);
    double end = Now();
    parts.augment += end - start;

    start = end;
    LossTerms loss = method_->Loss(*backbone_, view1, view2);
    // Read back as the trainer does: the total to check, the terms to sum.
    const double total = loss.total.item<double>();
    TORCH_CHECK(std::isfinite(total), "the loss is not finite at step ", step);
    for (const auto& term : loss.terms) term_sum_ += term.second.item<double>();
    end = Now();
    parts.forward += end - start;

    start = end;
    optimizer_->zero_grad();
    loss.total.backward();
    end = Now();
    parts.backward += end - start;

    start = end;
    optimizer_->step();
    method_->AfterStep(*backbone_, step, total_steps);
    end = Now();
    parts.optimizer += end - start;
  }

  void Train() {
    backbone_->train();
    method_->train();
  }

 private:
  BenchNetwork(std::shared_ptr<Backbone> backbone,
               std::shared_ptr<SslMethod> method,
               std::unique_ptr<torch::optim::Optimizer> optimizer)
      : backbone_(std::move(backbone)),
        method_(std::move(method)),
        optimizer_(std::move(optimizer)) {}

  std::shared_ptr<Backbone> backbone_;
  std::shared_ptr<SslMethod> method_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  double term_sum_ = 0;  // as the trainer's epoch sums
};

absl::StatusOr<BenchResult> RunBench(const BenchOptions& options) {
  // The process set-up sslsweep-train does (trainer.cc).
  KeepLargeAllocationsInHeap();
  SetComputeThreads(options.threads);
  torch::manual_seed(options.seed);
  const TrialConfig config = BenchTrialConfig(options);
  auto network = BenchNetwork::Make(config);
  if (!network.ok()) return network.status();
  (*network)->Train();
  // 8-bit pixels scaled to [0, 1], as the datasets load them.
  const torch::Tensor images =
      torch::randint(0, 256, {options.batch, kChannels, kImageSide, kImageSide},
                     torch::kFloat32)
          .div_(255);
  const int64_t total_steps = options.warmup_steps + options.steps;
  StepParts warmup;
  for (int64_t step = 0; step < options.warmup_steps; ++step) {
    (*network)->Step(images, config, step, total_steps, warmup);
  }
  BenchResult result;
  const double start = Now();
  for (int64_t step = options.warmup_steps; step < total_steps; ++step) {
    (*network)->Step(images, config, step, total_steps, result.parts);
  }
  result.seconds = Now() - start;
  return result;
}

std::string ResultJson(const BenchOptions& options, const BenchResult& result) {
  return absl::StrFormat(
      "{\"impl\":\"sslsweep\",\"threads\":%d,\"batch\":%d,\"steps\":%d,"
      "\"seconds\":%.4f,\"images_per_second\":%.2f,\"parts\":{\"augment\":%.4f,"
      "\"forward\":%.4f,\"backward\":%.4f,\"optimizer\":%.4f}}",
      options.threads, options.batch, options.steps, result.seconds,
      static_cast<double>(options.steps * options.batch) / result.seconds,
      result.parts.augment, result.parts.forward, result.parts.backward,
      result.parts.optimizer);
}

int Main(int argc, char** argv) {
  BenchOptions options;
  options.threads =
      static_cast<int>(std::max<unsigned>(1, std::thread::hardware_concurrency()));
  CLI::App app{"Training throughput of the sslsweep trainer's VICReg step."};
  app.add_option("--threads", options.threads,
                 "LibTorch intra-op and OpenBLAS threads (default: one per core)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--batch", options.batch, "Images per step")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20));
  app.add_option("--warmup-steps", options.warmup_steps, "Untimed steps first")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  app.add_option("--steps", options.steps, "Timed steps")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--width-multiplier", options.width_multiplier,
                 "ResNet-18 channel multiplier")
      ->check(CLI::PositiveNumber);
  app.add_option("--projector", options.projector,
                 "Projector hidden and output width")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--optimizer", options.optimizer, "lars, sgd or adamw")
      ->check(CLI::IsMember({"lars", "sgd", "adamw"}));
  app.add_option("--seed", options.seed, "LibTorch seed");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "sslsweep-bench-train: " << e.what() << std::endl;
    return 2;
  }

  absl::StatusOr<BenchResult> result;
  try {
    result = RunBench(options);
  } catch (const c10::Error& e) {
    std::cerr << "sslsweep-bench-train: LibTorch error: "
              << e.what_without_backtrace() << std::endl;
    return 1;
  }
  if (!result.ok()) {
    std::cerr << "sslsweep-bench-train: " << result.status() << std::endl;
    return 1;
  }
  std::cout << ResultJson(options, *result) << std::endl;
  return 0;
}

}  // namespace
}  // namespace sslsweep

int main(int argc, char** argv) { return sslsweep::Main(argc, argv); }
