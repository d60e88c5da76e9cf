#include "worker/trainer/trainer.h"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analysis/nearest_class_center.h"
#include "nlohmann/json.hpp"
#include "worker/trainer/augment.h"
#include "worker/trainer/backbone.h"
#include "worker/trainer/checkpoint.h"
#include "worker/trainer/dataset.h"
#include "worker/trainer/device.h"
#include "worker/trainer/metrics_writer.h"
#include "worker/trainer/optimizer.h"
#include "worker/trainer/ssl_method.h"

namespace sslsweep {
namespace {

constexpr int64_t kEmbedBatch = 256;  // rows per no-grad forward in Measure
constexpr char kCheckpointFile[] = "checkpoint.pt";
constexpr char kMetricsFile[] = "metrics.jsonl";
constexpr char kConfigFile[] = "config.yaml";

// The trained network: the backbone whose taps are measured, and the SSL
// method with its heads (projector; BYOL's predictor and target network).
// Everything the checkpoint must carry is a registered submodule of it.
class SslNetworkImpl : public torch::nn::Module {
 public:
  SslNetworkImpl(std::shared_ptr<Backbone> backbone_module,
                 std::shared_ptr<SslMethod> method_module)
      : backbone(register_module("backbone", std::move(backbone_module))),
        method(register_module("method", std::move(method_module))) {}

  // What the optimiser trains: never BYOL's target network.
  std::vector<torch::Tensor> TrainableParameters() {
    std::vector<torch::Tensor> parameters = backbone->parameters();
    for (const torch::Tensor& p : method->TrainableParameters()) parameters.push_back(p);
    return parameters;
  }

  std::shared_ptr<Backbone> backbone;
  std::shared_ptr<SslMethod> method;
};
TORCH_MODULE(SslNetwork);

// Builds the trial's backbone and method for images of the data's shape.
absl::StatusOr<SslNetwork> MakeNetwork(const TrialConfig& config, const TrialData& data) {
  const ImageShape shape{data.channels, data.height, data.width};
  std::shared_ptr<Backbone> backbone = MakeBackbone(config.backbone, shape);
  auto method = MakeSslMethod(config.method, config.projector, *backbone,
                              [&] { return MakeBackbone(config.backbone, shape); });
  if (!method.ok()) return method.status();
  return SslNetwork(std::move(backbone), *std::move(method));
}

std::string Describe(double value) {
  if (std::isnan(value)) return "nan";
  return value > 0 ? "inf" : "-inf";
}

// An epoch's mean losses: the total, then each term in the method's order.
struct EpochLosses {
  double total = 0;
  std::vector<std::pair<std::string, double>> terms;
};

absl::Status WriteTextFile(const std::filesystem::path& path,
                           const std::string& text) {
  std::ofstream file(path, std::ios::trunc);
  file << text;
  file.flush();
  if (!file) {
    return absl::UnavailableError(
        absl::StrCat(path.string(), ": cannot write: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// Writes into `metrics` the lines of `text` (an earlier run's metrics.jsonl)
// for epochs <= last_epoch, in their order. Lines that do not parse (a line
// cut short by a kill) and lines of later epochs are dropped.
absl::Status ReplayMetrics(const std::string& text, int64_t last_epoch,
                           MetricsWriter& metrics) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const auto json = nlohmann::json::parse(line, nullptr, false);
    if (json.is_discarded() || !json.is_object() || !json.contains("epoch") ||
        !json["epoch"].is_number_integer()) {
      continue;
    }
    const int64_t epoch = json["epoch"].get<int64_t>();
    if (epoch > last_epoch) continue;
    absl::Status status;
    if (json.contains("event")) {
      status = metrics.EndEpoch(epoch);
    } else if (json.contains("name") && json["name"].is_string() &&
               json.contains("value") && json["value"].is_number()) {
      status = metrics.Write(epoch, json["name"].get<std::string>(),
                             json["value"].get<double>());
    }
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

// One trial's state; confined to the calling thread.
class TrialRunner {
 public:
  TrialRunner(const TrialConfig& config, const TrainerOptions& options,
              const DeviceSettings& device, TrialData data, SslNetwork network)
      : config_(config),
        options_(options),
        device_(device),
        out_dir_(options.out_dir),
        data_(OnDevice(std::move(data), device)),
        steps_per_epoch_(data_.train_images.size(0) / config.optim.batch_size),
        total_steps_(config.epochs * steps_per_epoch_),
        warmup_steps_(config.optim.warmup_epochs * steps_per_epoch_),
        network_(std::move(network)) {}

  absl::Status Run() {
    PlaceModel(*network_, device_);
    auto optimizer = MakeOptimizer(config_.optim, network_->TrainableParameters());
    if (!optimizer.ok()) return optimizer.status();
    optimizer_ = *std::move(optimizer);
    Checkpointer checkpointer((out_dir_ / kCheckpointFile).string(), config_,
                              *network_, *optimizer_, device_.device);

    // Restore before writing anything, so that a refused checkpoint leaves
    // out_dir as it was.
    int64_t done = 0;
    if (checkpointer.Exists()) {
      auto progress = checkpointer.Restore();
      if (!progress.ok()) return progress.status();
      if (progress->epoch < 1 || progress->epoch > config_.epochs ||
          progress->step != progress->epoch * steps_per_epoch_) {
        return absl::FailedPreconditionError(absl::StrCat(
            checkpointer.path(), ": the checkpoint records ", progress->step,
            " steps after ", progress->epoch, " epochs, but this trial has ",
            config_.epochs, " epochs of ", steps_per_epoch_,
            " steps (did the dataset change?)"));
      }
      done = progress->epoch;
      step_ = progress->step;
      PlaceModel(*network_, device_);  // the loaded tensors' layout
      Log(absl::StrCat("resuming from epoch ", done,
                       done == config_.epochs ? ": every epoch is done" : ""));
    }
    if (auto s =
            WriteTextFile(out_dir_ / kConfigFile, TrialConfigToYaml(config_));
        !s.ok()) {
      return s;
    }
    if (auto s = OpenMetrics(done); !s.ok()) return s;

    Log(absl::StrFormat(
        "%d train / %d test samples, %d classes; %d steps of %d per epoch; "
        "threads: %d; device: %s%s",
        data_.train_images.size(0), data_.test_images.size(0),
        data_.num_classes, steps_per_epoch_, config_.optim.batch_size,
        torch::get_num_threads(), device_.device.str(),
        device_.bf16_autocast ? " (bf16 autocast)" : ""));
    if (done == 0) {
      if (auto s = Measure(0); !s.ok()) return s;
    }
    for (int64_t epoch = done + 1; epoch <= config_.epochs; ++epoch) {
      if (auto s = RunEpoch(epoch); !s.ok()) return s;
      if (auto s = checkpointer.Save(TrainingProgress{epoch, step_}); !s.ok()) {
        return s;
      }
      if (epoch == options_.stop_after_epoch) break;
    }
    return absl::OkStatus();
  }

 private:
  static TrialData OnDevice(TrialData data, const DeviceSettings& device) {
    data.train_images = PlaceTensor(data.train_images, device);
    data.test_images = PlaceTensor(data.test_images, device);
    return data;
  }

  double Now() const {
    if (options_.now_seconds) return options_.now_seconds();
    return std::chrono::duration<double>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  void Log(const std::string& line) const {
    if (options_.log != nullptr) {
      *options_.log << "sslsweep-train: " << line << std::endl;
    }
  }

  // Opens metrics.jsonl afresh, keeping the lines of epochs <= `done` from
  // the run that wrote the checkpoint (MetricsWriter only truncates, so they
  // are written again). Those are not echoed: the echo gate has no buffer,
  // and drops what is written to it, until the replay is over.
  absl::Status OpenMetrics(int64_t done) {
    const std::filesystem::path path = out_dir_ / kMetricsFile;
    std::ostringstream previous;
    if (done > 0) previous << std::ifstream(path).rdbuf();
    auto metrics = MetricsWriter::Open(
        path.string(),
        options_.metrics_echo != nullptr ? &echo_gate_ : nullptr);
    if (!metrics.ok()) return metrics.status();
    metrics_ = *std::move(metrics);
    if (auto s = ReplayMetrics(previous.str(), done, *metrics_); !s.ok()) {
      return s;
    }
    if (options_.metrics_echo != nullptr) {
      echo_gate_.rdbuf(options_.metrics_echo->rdbuf());
    }
    return absl::OkStatus();
  }

  // Trains epoch `epoch` and writes its metrics lines, measured or not.
  absl::Status RunEpoch(int64_t epoch) {
    const double start = Now();
    auto losses = TrainEpoch(epoch);
    if (!losses.ok()) return losses.status();
    const double seconds = Now() - start;
    std::vector<std::pair<std::string, double>> values = {{kLossTotalMetric, losses->total}};
    std::string terms_text;
    for (const auto& [term, value] : losses->terms) {
      values.emplace_back(absl::StrCat("loss/", term), value);
      absl::StrAppendFormat(&terms_text, "%s%s %.4f", terms_text.empty() ? "" : " ", term,
                            value);
    }
    values.emplace_back(kEpochSecondsMetric, seconds);
    for (const auto& [name, value] : values) {
      if (auto s = metrics_->Write(epoch, name, value); !s.ok()) return s;
    }
    Log(absl::StrFormat("epoch %d/%d: loss %.4f (%s), %.1f s", epoch, config_.epochs,
                        losses->total, terms_text, seconds));
    const bool measured =
        epoch % config_.analysis.every == 0 || epoch == config_.epochs;
    return measured ? Measure(epoch) : metrics_->EndEpoch(epoch);
  }

  absl::StatusOr<EpochLosses> TrainEpoch(int64_t epoch) {
    network_->train();
    const int64_t batch = config_.optim.batch_size;
    // From the global CPU generator, whose state the checkpoint carries.
    const torch::Tensor order =
        torch::randperm(data_.train_images.size(0), torch::kInt64);
    EpochLosses sums;
    for (const std::string& term : network_->method->term_names()) sums.terms.emplace_back(term, 0.0);
    for (int64_t step = 0; step < steps_per_epoch_; ++step) {
      SetLearningRate(
          *optimizer_,
          LearningRateAt(step_, total_steps_, warmup_steps_, config_.optim.lr));
      const torch::Tensor images = data_.train_images.index_select(
          0,
          order.slice(0, step * batch, (step + 1) * batch).to(device_.device));
      // Both views come from the images' device; the augmentation draws
      // from its generator, whose state the checkpoint carries.
      const torch::Tensor view1 = PlaceTensor(AugmentView(images, config_.augment, 1), device_);
      const torch::Tensor view2 = PlaceTensor(AugmentView(images, config_.augment, 2), device_);
      LossTerms loss;
      {
        AutocastScope autocast(device_);
        loss = network_->method->Loss(*network_->backbone, view1, view2);
      }
      const double total = loss.total.item<double>();
      if (!std::isfinite(total)) {
        return absl::AbortedError(absl::StrCat("diverged: loss is ",
                                               Describe(total), " at epoch ",
                                               epoch, " step ", step + 1));
      }
      optimizer_->zero_grad();
      loss.total.backward();
      optimizer_->step();
      network_->method->AfterStep(*network_->backbone, step_, total_steps_);
      ++step_;
      sums.total += total;
      for (size_t i = 0; i < loss.terms.size() && i < sums.terms.size(); ++i) {
        sums.terms[i].second += loss.terms[i].second.item<double>();
      }
    }
    const double steps = static_cast<double>(steps_per_epoch_);
    sums.total /= steps;
    for (auto& term : sums.terms) term.second /= steps;
    return sums;
  }

  // The embedding of `images` as float on the CPU, where the analysis runs.
  torch::Tensor Embed(const torch::Tensor& images) {
    AutocastScope autocast(device_);
    std::vector<torch::Tensor> parts;
    for (int64_t begin = 0; begin < images.size(0); begin += kEmbedBatch) {
      const torch::Tensor rows =
          images.slice(0, begin, std::min(images.size(0), begin + kEmbedBatch));
      parts.push_back(network_->backbone->forward(PlaceTensor(rows, device_))
                          .to(torch::kCPU, torch::kFloat));
    }
    return torch::cat(parts);
  }

  absl::Status Measure(int64_t epoch) {
    const double start = Now();
    network_->eval();
    torch::NoGradGuard no_grad;
    const torch::Tensor train = Embed(data_.train_images);
    const torch::Tensor test = Embed(data_.test_images);
    const ClassCenters centers =
        ComputeClassCenters(train, data_.train_labels, data_.num_classes);
    const double train_acc =
        NearestClassCenterAccuracy(centers, train, data_.train_labels);
    const double test_acc =
        NearestClassCenterAccuracy(centers, test, data_.test_labels);
    if (auto s = metrics_->Write(epoch, kNccTrainAccMetric, train_acc);
        !s.ok()) {
      return s;
    }
    if (auto s = metrics_->Write(epoch, kNccTestAccMetric, test_acc); !s.ok()) {
      return s;
    }
    Log(absl::StrFormat("epoch %d: ncc accuracy train %.4f test %.4f (%.1f s)",
                        epoch, train_acc, test_acc, Now() - start));
    return metrics_->EndEpoch(epoch);
  }

  // Constant after construction.
  const TrialConfig config_;
  const TrainerOptions options_;
  const DeviceSettings device_;
  const std::filesystem::path out_dir_;
  const TrialData data_;  // images on the device, labels on the CPU
  const int64_t steps_per_epoch_;
  const int64_t total_steps_;
  const int64_t warmup_steps_;

  // Training state; the checkpoint carries all of it.
  SslNetwork network_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  int64_t step_ = 0;  // optimiser steps taken over the whole run

  // Declared before metrics_, which writes to it until it is destroyed.
  std::ostream echo_gate_{nullptr};
  std::unique_ptr<MetricsWriter> metrics_;
};

// The schema (trial_config.cc) already enforces these for parsed files; an
// in-process caller may hand over any struct.
absl::Status CheckRunnable(const TrialConfig& config) {
  if (auto s = CheckOptimizerName(config.optim); !s.ok()) return s;
  if (config.epochs < 1 || config.analysis.every < 1 ||
      config.optim.batch_size < 2) {
    return absl::InvalidArgumentError(
        "epochs and analysis.every must be >= 1, optim.batch_size >= 2");
  }
  if (config.optim.warmup_epochs < 0 ||
      (config.optim.warmup_epochs > 0 &&
       config.optim.warmup_epochs >= config.epochs)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "optim.warmup_epochs (", config.optim.warmup_epochs,
        ") must be >= 0 and smaller than epochs (", config.epochs, ")"));
  }
  return absl::OkStatus();
}

absl::Status RunTrialOrThrow(const TrialConfig& config,
                             const TrainerOptions& options) {
  if (auto s = CheckRunnable(config); !s.ok()) return s;
  KeepLargeAllocationsInHeap();
  SetComputeThreads(static_cast<int>(
      config.threads > 0
          ? config.threads
          : std::max<unsigned>(1, std::thread::hardware_concurrency())));
  auto device = ConfigureDevice(config);
  if (!device.ok()) return device.status();
  torch::manual_seed(config.seed);

  std::error_code error;
  std::filesystem::create_directories(options.out_dir, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat(options.out_dir,
                     ": cannot create output directory: ", error.message()));
  }
  auto data = LoadTrialData(config.data);
  if (!data.ok()) return data.status();
  const int64_t train_samples = data->train_images.size(0);
  if (train_samples < config.optim.batch_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "optim.batch_size (", config.optim.batch_size, ") is larger than the ",
        train_samples, " training samples"));
  }
  auto network = MakeNetwork(config, *data);
  if (!network.ok()) return network.status();
  TrialRunner runner(config, options, *device, *std::move(data), *std::move(network));
  return runner.Run();
}

}  // namespace

absl::Status RunTrial(const TrialConfig& config,
                      const TrainerOptions& options) {
  // The one place where LibTorch's exceptions become a Status.
  try {
    return RunTrialOrThrow(config, options);
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("LibTorch error: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(e.what());
  }
}

}  // namespace sslsweep
