#include "worker/trainer/trainer.h"

#include <dlfcn.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <system_error>
#include <thread>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analysis/nearest_class_center.h"
#include "worker/trainer/augment.h"
#include "worker/trainer/checkpoint.h"
#include "worker/trainer/convnet.h"
#include "worker/trainer/dataset.h"
#include "worker/trainer/metrics_writer.h"
#include "worker/trainer/projector.h"
#include "worker/trainer/vicreg_loss.h"

namespace sslsweep {
namespace {

constexpr int64_t kEmbedBatch = 256;  // rows per no-grad forward in Measure
constexpr double kPi = 3.14159265358979323846;

// The trained network: the backbone whose taps are measured, and the
// projector that only the loss sees.
class VicregNetworkImpl : public torch::nn::Module {
 public:
  explicit VicregNetworkImpl(const TrialConfig& config)
      : backbone(register_module(
            "backbone", ConvNet(ConvNetOptions{1, config.backbone.depth,
                                               config.backbone.width}))),
        projector(register_module(
            "projector", Projector(ProjectorOptions{backbone->embedding_dim(),
                                                    config.projector.hidden,
                                                    config.projector.out}))) {}

  ConvNet backbone;
  Projector projector;
};
TORCH_MODULE(VicregNetwork);

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(
    const OptimConfig& config, const std::vector<torch::Tensor>& parameters) {
  if (config.name == "sgd") {
    return std::make_unique<torch::optim::SGD>(
        parameters, torch::optim::SGDOptions(config.lr)
                        .momentum(config.momentum)
                        .weight_decay(config.weight_decay));
  }
  return std::make_unique<torch::optim::AdamW>(
      parameters,
      torch::optim::AdamWOptions(config.lr).weight_decay(config.weight_decay));
}

std::string Describe(double value) {
  if (std::isnan(value)) return "nan";
  return value > 0 ? "inf" : "-inf";
}

struct EpochLosses {
  double total = 0;
  double invariance = 0;
  double variance = 0;
  double covariance = 0;
};

// One trial's state; confined to the calling thread.
class TrialRunner {
 public:
  TrialRunner(const TrialConfig& config, const TrainerOptions& options,
              TrialData data, std::unique_ptr<MetricsWriter> metrics)
      : config_(config),
        options_(options),
        data_(std::move(data)),
        metrics_(std::move(metrics)),
        network_(config),
        optimizer_(MakeOptimizer(config.optim, network_->parameters())),
        steps_per_epoch_(data_.train_images.size(0) / config.optim.batch_size),
        loss_options_{config.method.sim_coeff, config.method.std_coeff,
                      config.method.cov_coeff} {}

  absl::Status Run() {
    Log(absl::StrFormat(
        "%d train / %d test samples, %d classes; %d steps of %d per epoch; "
        "threads: %d",
        data_.train_images.size(0), data_.test_images.size(0),
        data_.num_classes, steps_per_epoch_, config_.optim.batch_size,
        torch::get_num_threads()));
    if (auto s = Measure(0); !s.ok()) return s;
    for (int64_t epoch = 1; epoch <= config_.epochs; ++epoch) {
      const double start = Now();
      auto losses = TrainEpoch(epoch);
      if (!losses.ok()) return losses.status();
      const double seconds = Now() - start;
      for (const auto& [name, value] :
           {std::pair{kLossTotalMetric, losses->total},
            {kLossInvarianceMetric, losses->invariance},
            {kLossVarianceMetric, losses->variance},
            {kLossCovarianceMetric, losses->covariance},
            {kEpochSecondsMetric, seconds}}) {
        if (auto s = metrics_->Write(epoch, name, value); !s.ok()) return s;
      }
      Log(absl::StrFormat(
          "epoch %d/%d: loss %.4f (invariance %.4f variance %.4f covariance "
          "%.4f), %.1f s",
          epoch, config_.epochs, losses->total, losses->invariance,
          losses->variance, losses->covariance, seconds));
      if (auto s = SaveCheckpoint(
              (std::filesystem::path(options_.out_dir) / "checkpoint.pt")
                  .string(),
              epoch, *network_, *optimizer_);
          !s.ok()) {
        return s;
      }
      const bool measured =
          epoch % config_.analysis.every == 0 || epoch == config_.epochs;
      if (auto s = measured ? Measure(epoch) : metrics_->EndEpoch(epoch);
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }

 private:
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

  double LearningRate(int64_t step) const {
    const double total = static_cast<double>(config_.epochs * steps_per_epoch_);
    return config_.optim.lr * 0.5 *
           (1.0 + std::cos(kPi * static_cast<double>(step) / total));
  }

  absl::StatusOr<EpochLosses> TrainEpoch(int64_t epoch) {
    network_->train();
    const int64_t batch = config_.optim.batch_size;
    const torch::Tensor order =
        torch::randperm(data_.train_images.size(0), torch::kInt64);
    EpochLosses sums;
    for (int64_t step = 0; step < steps_per_epoch_; ++step) {
      for (auto& group : optimizer_->param_groups()) {
        group.options().set_lr(
            LearningRate((epoch - 1) * steps_per_epoch_ + step));
      }
      const torch::Tensor images = data_.train_images.index_select(
          0, order.slice(0, step * batch, (step + 1) * batch));
      const torch::Tensor x =
          network_->projector(network_->backbone(Augment(images)));
      const torch::Tensor y =
          network_->projector(network_->backbone(Augment(images)));
      const VicregLossTerms terms = VicregLoss(x, y, loss_options_);
      const double total = terms.total.item<double>();
      if (!std::isfinite(total)) {
        return absl::AbortedError(absl::StrCat("diverged: loss is ",
                                               Describe(total), " at epoch ",
                                               epoch, " step ", step + 1));
      }
      optimizer_->zero_grad();
      terms.total.backward();
      optimizer_->step();
      sums.total += total;
      sums.invariance += terms.invariance.item<double>();
      sums.variance += terms.variance.item<double>();
      sums.covariance += terms.covariance.item<double>();
    }
    const double steps = static_cast<double>(steps_per_epoch_);
    return EpochLosses{sums.total / steps, sums.invariance / steps,
                       sums.variance / steps, sums.covariance / steps};
  }

  torch::Tensor Embed(const torch::Tensor& images) {
    std::vector<torch::Tensor> parts;
    for (int64_t begin = 0; begin < images.size(0); begin += kEmbedBatch) {
      parts.push_back(network_->backbone(images.slice(
          0, begin, std::min(images.size(0), begin + kEmbedBatch))));
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

  const TrialConfig config_;
  const TrainerOptions options_;
  const TrialData data_;
  const std::unique_ptr<MetricsWriter> metrics_;
  VicregNetwork network_;
  const std::unique_ptr<torch::optim::Optimizer> optimizer_;
  const int64_t steps_per_epoch_;
  const VicregLossOptions loss_options_;
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

// Sets LibTorch's intra-op threads and OpenBLAS's own pool, which LibTorch
// does not size: left alone, OpenBLAS runs one spinning thread per core beside
// a one-thread trainer (measured: 52 CPU-seconds for 33 s of wall time).
// OpenBLAS is looked up at run time because the BLAS behind libblas.so.3 is
// whatever Debian's alternatives chose.
void SetThreadCount(int threads) {
  torch::set_num_threads(threads);
  using SetThreadsFn = void (*)(int);
  if (auto* set_blas_threads = reinterpret_cast<SetThreadsFn>(
          dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set_blas_threads(threads);
  }
}

// The schema (trial_config.cc) already enforces these for parsed files; an
// in-process caller may hand over any struct.
absl::Status CheckRunnable(const TrialConfig& config) {
  if (config.method.name != "vicreg") {
    return absl::InvalidArgumentError(absl::StrCat(
        "method.name: '", config.method.name, "' is not one of: vicreg"));
  }
  if (config.backbone.name != "convnet") {
    return absl::InvalidArgumentError(absl::StrCat(
        "backbone.name: '", config.backbone.name, "' is not one of: convnet"));
  }
  if (config.optim.name != "sgd" && config.optim.name != "adamw") {
    return absl::InvalidArgumentError(absl::StrCat(
        "optim.name: '", config.optim.name, "' is not one of: sgd, adamw"));
  }
  if (config.epochs < 1 || config.analysis.every < 1 ||
      config.optim.batch_size < 2) {
    return absl::InvalidArgumentError(
        "epochs and analysis.every must be >= 1, optim.batch_size >= 2");
  }
  return absl::OkStatus();
}

absl::Status RunTrialOrThrow(const TrialConfig& config,
                             const TrainerOptions& options) {
  if (auto s = CheckRunnable(config); !s.ok()) return s;
  SetThreadCount(static_cast<int>(
      config.threads > 0
          ? config.threads
          : std::max<unsigned>(1, std::thread::hardware_concurrency())));
  torch::manual_seed(config.seed);

  const std::filesystem::path out(options.out_dir);
  std::error_code error;
  std::filesystem::create_directories(out, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat(options.out_dir,
                     ": cannot create output directory: ", error.message()));
  }
  if (auto s = WriteTextFile(out / "config.yaml", TrialConfigToYaml(config));
      !s.ok()) {
    return s;
  }
  auto metrics = MetricsWriter::Open((out / "metrics.jsonl").string(),
                                     options.metrics_echo);
  if (!metrics.ok()) return metrics.status();

  auto data = LoadTrialData(config.data);
  if (!data.ok()) return data.status();
  const int64_t train_samples = data->train_images.size(0);
  if (train_samples < config.optim.batch_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "optim.batch_size (", config.optim.batch_size, ") is larger than the ",
        train_samples, " training samples"));
  }
  TrialRunner runner(config, options, *std::move(data), *std::move(metrics));
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
