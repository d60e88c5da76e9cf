#include "worker/trainer/trainer.h"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <system_error>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "analysis/metric_suite.h"
#include "nlohmann/json.hpp"
#include "worker/trainer/augment.h"
#include "worker/trainer/backbone.h"
#include "worker/trainer/checkpoint.h"
#include "worker/trainer/data_parallel_group.h"
#include "worker/trainer/group_batch_norm.h"
#include "worker/trainer/dataset.h"
#include "worker/trainer/device.h"
#include "worker/trainer/layer_features.h"
#include "worker/trainer/metrics_writer.h"
#include "worker/trainer/optimizer.h"
#include "worker/trainer/ssl_method.h"

namespace sslsweep {
namespace {

constexpr int64_t kFeatureBatch = 256;  // images per no-grad forward in Measure
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

// A data-parallel collective failed: another rank is gone (its process
// died, its connection broke) or stopped answering. Unavailable, and the
// message starts with "lost a peer rank: ", which train_main.cc maps to its
// own exit code; other Unavailable failures (output not writable) do not.
constexpr absl::string_view kLostPeerPrefix = "lost a peer rank: ";

absl::Status LostPeer(absl::string_view detail) {
  return absl::UnavailableError(absl::StrCat(kLostPeerPrefix, detail));
}

// A DataParallelGroup collective's failure as RunTrial reports it: LostPeer
// for Unavailable (a rank gone), anything else (a tensor the collective
// refuses) as it is.
absl::Status CollectiveFailure(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kUnavailable) return status;
  return LostPeer(status.message());
}

// What a data-parallel group's differentiable collective (all-gather,
// all-reduce: DataParallelGroup::AllGatherRows, AllReduceSum) threw, if `e`
// says that another rank is gone: the c10::Error into which the group turns
// every failure of a collective, as Unavailable ("UNAVAILABLE: <message>",
// as absl::Status::ToString writes it). Nullopt for any other error.
std::optional<std::string> LostPeerThrown(const std::exception& e) {
  constexpr absl::string_view kUnavailable = "UNAVAILABLE: ";
  if (const auto* error = dynamic_cast<const c10::Error*>(&e)) {
    const absl::string_view message = error->what_without_backtrace();
    if (absl::StartsWith(message, kUnavailable)) {
      return std::string(message.substr(kUnavailable.size()));
    }
  }
  return std::nullopt;
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

// One trial's state; confined to the calling thread.
class TrialRunner {
 public:
  TrialRunner(const TrialConfig& config, const TrainerOptions& options,
              const DeviceSettings& device, TrialData data, SslNetwork network,
              std::unique_ptr<DataParallelGroup> group)
      : config_(config),
        group_(std::move(group)),
        options_(options),
        device_(device),
        out_dir_(options.out_dir),
        data_(OnDevice(std::move(data), device)),
        steps_per_epoch_(data_.train_images.size(0) / config.optim.batch_size),
        total_steps_(config.epochs * steps_per_epoch_),
        warmup_steps_(config.optim.warmup_epochs * steps_per_epoch_),
        network_(std::move(network)) {}

  ~TrialRunner() {
    if (group() != nullptr) SetBatchNormGroup(nullptr);
  }

  absl::Status Run() {
    auto plan = PrepareMeasurement(
        config_, data_, NetworkTapNames(*network_->backbone, *network_->method), device_);
    if (!plan.ok()) return plan.status();
    plan_ = *std::move(plan);
    PlaceModel(*network_, device_);
    if (auto s = JoinGroup(); !s.ok()) return s;
    auto optimizer = MakeOptimizer(config_.optim, network_->TrainableParameters());
    if (!optimizer.ok()) return optimizer.status();
    optimizer_ = *std::move(optimizer);
    for (const auto& param_group : optimizer_->param_groups()) {
      for (const torch::Tensor& p : param_group.params()) trained_.push_back(p);
    }
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
      if (auto s = leader() ? Measure(0) : metrics_->EndEpoch(0); !s.ok()) return s;
    }
    for (int64_t epoch = done + 1; epoch <= config_.epochs; ++epoch) {
      if (auto s = RunEpoch(epoch); !s.ok()) return s;
      if (auto s = checkpointer.Save(TrainingProgress{epoch, step_}); !s.ok()) {
        return s;
      }
      if (options_.checkpoint_links) {
        if (auto s = LinkCheckpoint(epoch); !s.ok()) return s;
      }
      if (epoch == options_.stop_after_epoch) break;
    }
    if (done == config_.epochs && !options_.export_dir.empty()) {
      // Resumed after the last epoch: its features were not kept.
      network_->eval();
      return Export(Collect(plan_.train_images), Collect(plan_.test_images));
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

  // Hard-links the checkpoint just saved as checkpoint-<epoch>.pt and echoes
  // the checkpoint event naming it. Not written to metrics.jsonl: a resume
  // replays that file, and the event describes this run's files only.
  absl::Status LinkCheckpoint(int64_t epoch) {
    const std::string name = absl::StrCat("checkpoint-", epoch, ".pt");
    const std::filesystem::path link = out_dir_ / name;
    std::error_code error;
    std::filesystem::remove(link, error);  // left by a run killed after it
    std::filesystem::create_hard_link(out_dir_ / kCheckpointFile, link, error);
    if (error) {
      return absl::UnavailableError(
          absl::StrCat(link.string(), ": cannot link the checkpoint: ", error.message()));
    }
    if (options_.metrics_echo != nullptr) {
      nlohmann::ordered_json line;
      line["epoch"] = epoch;
      line["event"] = "checkpoint";
      line["path"] = name;
      *options_.metrics_echo << line.dump() << '\n';
      options_.metrics_echo->flush();
    }
    return absl::OkStatus();
  }

  // The data-parallel group of a multi-rank trial; null when alone.
  DataParallelGroup* group() const { return group_.get(); }
  // Whether this process measures: alone, or rank 0.
  bool leader() const { return group() == nullptr || group()->rank() == 0; }

  // Joins the group, if any: global-batch losses and BatchNorm, and rank 0's
  // initial model on every rank.
  absl::Status JoinGroup() {
    if (group() == nullptr) return absl::OkStatus();
    DataParallelGroup* group = this->group();
    SetBatchNormGroup(group);
    network_->method->SetBatchGather(
        [group](const torch::Tensor& local) { return group->AllGatherRows(local); });
    std::vector<torch::Tensor> state = network_->parameters();
    for (const torch::Tensor& buffer : network_->buffers()) state.push_back(buffer);
    if (auto s = group->Broadcast(state); !s.ok()) return CollectiveFailure(s);
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
    return measured && leader() ? Measure(epoch) : metrics_->EndEpoch(epoch);
  }

  absl::StatusOr<EpochLosses> TrainEpoch(int64_t epoch) {
    network_->train();
    const int64_t batch = config_.optim.batch_size;
    // From the global CPU generator, whose state the checkpoint carries.
    const torch::Tensor order =
        torch::randperm(data_.train_images.size(0), torch::kInt64);
    // This process's rows of each global batch: all of them alone, rank r's
    // share (rows r*B/N .. (r+1)*B/N) in a group.
    const int64_t rows = group() == nullptr ? batch : batch / group()->world_size();
    const BatchRows mine{group() == nullptr ? 0 : group()->rank() * rows, batch};
    // Once per run, after the optimiser's parameters are known (with
    // overlap, it sets hooks on their gradient accumulators).
    if (group() != nullptr && gradient_sync_ == nullptr) {
      gradient_sync_ = group()->NewGradientSync(trained_);
    }
    EpochLosses sums;
    for (const std::string& term : network_->method->term_names()) sums.terms.emplace_back(term, 0.0);
    for (int64_t step = 0; step < steps_per_epoch_; ++step) {
      SetLearningRate(
          *optimizer_,
          LearningRateAt(step_, total_steps_, warmup_steps_, config_.optim.lr));
      const int64_t first = step * batch + mine.first;
      const torch::Tensor images = data_.train_images.index_select(
          0, order.slice(0, first, first + rows).to(device_.device));
      // Both views come from the images' device. Every rank draws the random
      // choices of the whole global batch from its generator, whose state
      // the checkpoint carries, as one process would, and augments its own
      // rows only: its views are that process's views of those rows.
      const torch::Tensor view1 =
          PlaceTensor(AugmentViewRows(images, mine, config_.augment, 1), device_);
      const torch::Tensor view2 =
          PlaceTensor(AugmentViewRows(images, mine, config_.augment, 2), device_);
      LossTerms loss;
      double total = 0;
      try {
        {
          AutocastScope autocast(device_);
          loss = network_->method->Loss(*network_->backbone, view1, view2);
        }
        total = loss.total.item<double>();
        if (!std::isfinite(total)) {
          return absl::AbortedError(absl::StrCat("diverged: loss is ",
                                                 Describe(total), " at epoch ",
                                                 epoch, " step ", step + 1));
        }
        optimizer_->zero_grad();
        if (gradient_sync_ != nullptr) gradient_sync_->Arm();
        loss.total.backward();
      } catch (const std::exception& e) {
        // In a group the forward's and backward's collectives (the losses'
        // all-gathers, synchronised BatchNorm) throw when a rank is gone.
        const std::optional<std::string> lost =
            group() != nullptr ? LostPeerThrown(e) : std::nullopt;
        if (!lost.has_value()) throw;
        return LostPeer(*lost);
      }
      if (gradient_sync_ != nullptr) {
        if (auto s = gradient_sync_->Finish(); !s.ok()) {
          return CollectiveFailure(s);
        }
      }
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

  // The features of `images` at every measured tap, on the device.
  std::vector<torch::Tensor> Collect(const torch::Tensor& images) {
    return CollectLayerFeatures(*network_->backbone, *network_->method, images, plan_.taps,
                                device_, kFeatureBatch);
  }

  // Measures every selected (tap, target, metric) of plan_ and ends the
  // epoch's lines; after the last epoch, exports the features if asked to.
  absl::Status Measure(int64_t epoch) {
    const double start = Now();
    // The analysis has its own generators; this keeps any draw it makes out
    // of the training's stream all the same.
    GlobalGeneratorsGuard keep_training_stream(device_.device);
    network_->eval();
    const PlanFeatures features =
        CollectPlanFeatures(*network_->backbone, *network_->method, plan_, device_, kFeatureBatch);
    int64_t written = 0;
    std::string headline;
    for (const MetricValue& value : MeasurePlan(plan_, features)) {
      // The suite leaves undefined values out; JSON has no NaN either way.
      if (!std::isfinite(value.value)) continue;
      if (auto s = metrics_->Write(epoch, value.name, value.value); !s.ok()) return s;
      ++written;
      if (value.name == kNccTestAccMetric) {
        headline = absl::StrFormat("%s %.4f, ", value.name, value.value);
      }
    }
    Log(absl::StrFormat("epoch %d: %s%d metrics of %d layers (%.1f s)", epoch, headline,
                        written, plan_.taps.size(), Now() - start));
    if (auto s = metrics_->EndEpoch(epoch); !s.ok()) return s;
    if (epoch == config_.epochs && !options_.export_dir.empty()) {
      return Export(features.train, features.test);
    }
    return absl::OkStatus();
  }

  absl::Status Export(const std::vector<torch::Tensor>& train,
                      const std::vector<torch::Tensor>& test) {
    if (auto s = ExportLayerFeatures(options_.export_dir, plan_, train, test, data_); !s.ok()) {
      return s;
    }
    Log(absl::StrCat("features of ", plan_.taps.size(), " layers exported to ",
                     options_.export_dir));
    return absl::OkStatus();
  }

  // Constant after construction.
  const TrialConfig config_;
  // The data-parallel ranks of a multi-rank trial; null when alone.
  const std::unique_ptr<DataParallelGroup> group_;
  const TrainerOptions options_;
  const DeviceSettings device_;
  const std::filesystem::path out_dir_;
  const TrialData data_;  // images on the device, labels on the CPU
  const int64_t steps_per_epoch_;
  const int64_t total_steps_;
  const int64_t warmup_steps_;

  std::vector<torch::Tensor> trained_;  // the optimiser's parameters
  // Training state; the checkpoint carries all of it.
  SslNetwork network_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  int64_t step_ = 0;  // optimiser steps taken over the whole run
  // Averages trained_'s gradients over the group (overlapped with the
  // backward where DataParallelOptions::overlap_gradient_sync says so);
  // null when alone. Destroyed before group_, which it uses.
  std::unique_ptr<GradientSync> gradient_sync_;

  // Set once at the start of Run.
  MeasurementPlan plan_;

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
  return ValidateAnalysisConfig(config.analysis);
}

absl::Status RunTrialOrThrow(const TrialConfig& config,
                             const TrainerOptions& options) {
  if (auto s = CheckRunnable(config); !s.ok()) return s;
  KeepLargeAllocationsInHeap();
  SetComputeThreads(static_cast<int>(config.threads));  // 0: one per core
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
  std::unique_ptr<DataParallelGroup> group;
  if (options.data_parallel.world_size > 1) {
    const DataParallelSpec& spec = options.data_parallel;
    // Every rank has the same configuration, so each refuses it alike,
    // before any waits for the others.
    if (config.optim.batch_size % spec.world_size != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "optim.batch_size ", config.optim.batch_size, " is the global batch of ",
          spec.world_size, " ranks and must be divisible by it"));
    }
    DataParallelOptions group_options;
    group_options.rank = spec.rank;
    group_options.world_size = spec.world_size;
    group_options.master_addr = spec.master_addr;
    group_options.master_port = spec.master_port;
    group_options.local_addr = spec.local_addr;
    group_options.overlap_gradient_sync = spec.overlap_gradient_sync;
    group_options.cuda_device = device->device.is_cuda() ? device->device.index() : -1;
    group_options.on_listening = spec.on_listening;
    group_options.timeout = std::chrono::milliseconds(spec.timeout_ms);
    auto connected = DataParallelGroup::Connect(group_options);
    if (!connected.ok()) return connected.status();
    group = *std::move(connected);
  }
  TrialRunner runner(config, options, *device, *std::move(data), *std::move(network),
                     std::move(group));
  return runner.Run();
}

}  // namespace

bool IsLostPeer(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable &&
         absl::StartsWith(status.message(), kLostPeerPrefix);
}

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
