#include "worker/trainer/layer_features.h"

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "analysis/npy.h"
#include "worker/trainer/augment.h"

namespace sslsweep {
namespace {

bool IsProjectorTap(const std::string& tap, const SslMethod& method) {
  const std::vector<std::string> names = method.projector_tap_names();
  return std::find(names.begin(), names.end(), tap) != names.end();
}

// A tap's batch as float32 [B, D]: spatial dimensions averaged away.
torch::Tensor PoolTap(const torch::Tensor& tap) {
  torch::Tensor features = tap.to(torch::kFloat);
  if (features.dim() > 2) features = features.flatten(2).mean(2);
  return features;
}

constexpr int64_t kMaxLabelFileClasses = 100000;

int64_t MeasuredRows(int64_t available, int64_t max_samples) {
  return max_samples == 0 ? available : std::min(available, max_samples);
}

// The first `rows` labels of a user's label file, as int64 on `device`.
absl::StatusOr<torch::Tensor> ReadLabelFile(const std::string& path, int64_t rows,
                                            torch::Device device) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) {
    return absl::NotFoundError(absl::StrCat(path, ": No such file or directory"));
  }
  torch::Tensor labels;
  try {
    labels = ReadNpy(path);
  } catch (const c10::Error& e) {
    return absl::DataLossError(e.what_without_backtrace());
  }
  if (labels.dim() == 2 && labels.size(1) == 1) labels = labels.flatten();
  const auto dtype = labels.scalar_type();
  if (labels.dim() != 1 || !(at::isIntegralType(dtype, /*includeBool=*/false))) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": a label file must hold a 1-D integer array (one label per sample); it holds ",
        c10::toString(dtype), " of shape ", c10::str(labels.sizes())));
  }
  if (labels.size(0) < rows) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", labels.size(0), " labels, but the trial measures the first ",
                     rows, " samples of the split"));
  }
  labels = labels.slice(0, 0, rows).to(torch::kInt64);
  if (rows > 0) {
    // Class means and one-hot targets are [classes, ...]: a stray huge label
    // would allocate for every class below it.
    const torch::Tensor bad = labels.lt(0).logical_or(labels.ge(kMaxLabelFileClasses));
    if (bad.any().item<bool>()) {
      const int64_t at = bad.nonzero()[0][0].item<int64_t>();
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": label ", labels[at].item<int64_t>(), " at row ", at,
                       "; labels must be in [0, ", kMaxLabelFileClasses, ")"));
    }
  }
  return labels.to(device);
}

absl::StatusOr<Target> LabelFileTarget(const LabelFileSpec& spec, int64_t train_rows,
                                       int64_t test_rows, torch::Device device) {
  Target target;
  target.name = spec.name;
  auto train = ReadLabelFile(spec.train_path, train_rows, device);
  if (!train.ok()) return train.status();
  target.train_labels = *std::move(train);
  int64_t classes = target.train_labels.max().item<int64_t>() + 1;
  if (!spec.test_path.empty()) {
    auto test = ReadLabelFile(spec.test_path, test_rows, device);
    if (!test.ok()) return test.status();
    target.test_labels = *std::move(test);
    classes = std::max(classes, target.test_labels.max().item<int64_t>() + 1);
  }
  target.num_classes = classes;
  return target;
}

// `views` augmented views of each of `images`, view-major, alternating the
// recipe's view 1 and view 2.
torch::Tensor AugmentedViews(const torch::Tensor& images, const AugmentConfig& augment,
                             int64_t views) {
  std::vector<torch::Tensor> parts;
  for (int64_t v = 0; v < views; ++v) {
    parts.push_back(AugmentView(images, augment, static_cast<int>(v % 2) + 1));
  }
  return torch::cat(parts);
}

void SeedGlobalGenerators(torch::Device device, uint64_t seed) {
  std::vector<torch::Device> devices = {torch::Device(torch::kCPU)};
  if (device.is_cuda()) devices.push_back(device);
  for (const torch::Device& d : devices) {
    at::Generator generator = at::globalContext().defaultGenerator(d);
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_current_seed(seed);
  }
}

}  // namespace

GlobalGeneratorsGuard::GlobalGeneratorsGuard(torch::Device device) : device_(device) {
  {
    at::Generator cpu = at::globalContext().defaultGenerator(torch::kCPU);
    std::lock_guard<std::mutex> lock(cpu.mutex());
    cpu_state_ = cpu.get_state();
  }
  if (device_.is_cuda()) {
    at::Generator generator = at::globalContext().defaultGenerator(device_);
    std::lock_guard<std::mutex> lock(generator.mutex());
    device_state_ = generator.get_state();
  }
}

GlobalGeneratorsGuard::~GlobalGeneratorsGuard() {
  {
    at::Generator cpu = at::globalContext().defaultGenerator(torch::kCPU);
    std::lock_guard<std::mutex> lock(cpu.mutex());
    cpu.set_state(cpu_state_);
  }
  if (device_state_.defined()) {
    at::Generator generator = at::globalContext().defaultGenerator(device_);
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(device_state_);
  }
}

std::vector<std::string> NetworkTapNames(const Backbone& backbone, const SslMethod& method) {
  std::vector<std::string> taps = backbone.tap_names();
  for (const std::string& tap : method.projector_tap_names()) taps.push_back(tap);
  return taps;
}

absl::StatusOr<std::vector<std::string>> SelectTaps(const std::string& layers,
                                                    const std::vector<std::string>& taps) {
  const std::vector<std::string> names = SplitAnalysisList(layers);
  if (std::find(names.begin(), names.end(), "all") != names.end()) return taps;
  for (const std::string& name : names) {
    if (std::find(taps.begin(), taps.end(), name) == taps.end()) {
      return absl::InvalidArgumentError(absl::StrCat("analysis.layers: the network has no tap '",
                                                     name, "'; its taps: ",
                                                     absl::StrJoin(taps, ", "), ", or all"));
    }
  }
  std::vector<std::string> selected;
  for (const std::string& tap : taps) {
    if (std::find(names.begin(), names.end(), tap) != names.end()) selected.push_back(tap);
  }
  return selected;
}

std::vector<torch::Tensor> CollectLayerFeatures(Backbone& backbone, SslMethod& method,
                                                const torch::Tensor& images,
                                                const std::vector<std::string>& taps,
                                                const DeviceSettings& settings,
                                                int64_t batch_rows) {
  TORCH_CHECK(images.dim() == 4 && images.size(0) > 0 && batch_rows > 0,
              "CollectLayerFeatures needs images [N>0, C, H, W] and batch_rows > 0");
  torch::NoGradGuard no_grad;
  const bool needs_projector =
      std::any_of(taps.begin(), taps.end(),
                  [&](const std::string& tap) { return IsProjectorTap(tap, method); });
  const int64_t rows = images.size(0);
  // Filled batch by batch, so that the peak is the result plus one batch.
  std::vector<torch::Tensor> features(taps.size());
  for (int64_t begin = 0; begin < rows; begin += batch_rows) {
    const int64_t end = std::min(rows, begin + batch_rows);
    torch::OrderedDict<std::string, torch::Tensor> outputs;
    {
      AutocastScope autocast(settings);
      outputs = backbone.ForwardTaps(PlaceTensor(images.slice(0, begin, end), settings));
      if (needs_projector) {
        const auto projector = method.ProjectorTaps(outputs["embedding"]);
        for (const auto& item : projector) outputs.insert(item.key(), item.value());
      }
    }
    for (size_t i = 0; i < taps.size(); ++i) {
      const torch::Tensor batch = PoolTap(outputs[taps[i]]);
      if (!features[i].defined()) {
        features[i] = torch::empty({rows, batch.size(1)}, batch.options());
      }
      features[i].slice(0, begin, end).copy_(batch);
    }
  }
  return features;
}

absl::StatusOr<MeasurementPlan> PrepareMeasurement(const TrialConfig& config,
                                                   const TrialData& data,
                                                   const std::vector<std::string>& network_taps,
                                                   const DeviceSettings& settings) {
  const AnalysisConfig& analysis = config.analysis;
  if (auto s = ValidateAnalysisConfig(analysis); !s.ok()) return s;
  MeasurementPlan plan;
  auto taps = SelectTaps(analysis.layers, network_taps);
  if (!taps.ok()) return taps.status();
  plan.taps = *std::move(taps);

  std::string metrics_error;
  if (!ParseMetricSelection(analysis.metrics,
                            &plan.suite.metrics, &metrics_error)) {
    return absl::InvalidArgumentError(absl::StrCat("analysis.metrics: ", metrics_error));
  }
  plan.suite.knn.k = analysis.knn_k;
  plan.suite.knn.temperature = analysis.knn_temperature;

  const torch::Device device = data.train_images.device();
  const int64_t train_rows = MeasuredRows(data.train_images.size(0), analysis.max_samples);
  const int64_t test_rows = MeasuredRows(data.test_images.size(0), analysis.max_samples);
  plan.train_images = data.train_images.slice(0, 0, train_rows);
  plan.test_images = data.test_images.slice(0, 0, test_rows);

  auto target_names = ResolveAnalysisTargets(analysis);
  if (!target_names.ok()) return target_names.status();
  auto label_files = ParseLabelFiles(analysis.label_files);
  if (!label_files.ok()) return label_files.status();
  for (const std::string& name : *target_names) {
    Target target;
    target.name = name;
    if (name == "sample") {
      const int64_t images = std::min(analysis.sample_images, data.train_images.size(0));
      torch::Tensor originals = data.train_images.slice(0, 0, images);
      {
        GlobalGeneratorsGuard keep_training_stream(device);
        SeedGlobalGenerators(device, static_cast<uint64_t>(config.seed) + kSampleViewsSeedOffset);
        plan.sample_train_images = AugmentedViews(originals, config.augment, analysis.sample_views);
        plan.sample_test_images = AugmentedViews(originals, config.augment, analysis.sample_views);
      }
      const torch::Tensor labels =
          torch::arange(images, torch::TensorOptions(torch::kInt64).device(device))
              .repeat({analysis.sample_views});
      plan.sample = Target{name, labels, labels, images};
      continue;
    }
    if (name == "fine") {
      target.train_labels = data.train_labels.slice(0, 0, train_rows).to(device);
      target.test_labels = data.test_labels.slice(0, 0, test_rows).to(device);
      target.num_classes = data.num_classes;
    } else if (name == "coarse") {
      target.train_labels = data.train_coarse.slice(0, 0, train_rows).to(device);
      target.test_labels = data.test_coarse.slice(0, 0, test_rows).to(device);
      target.num_classes = data.num_coarse_classes;
    } else if (name == "random") {
      const uint64_t seed = static_cast<uint64_t>(config.seed);
      target.train_labels =
          RandomPartitionLabels(train_rows, data.num_classes, seed + kRandomTrainLabelsSeedOffset)
              .to(device);
      target.test_labels =
          RandomPartitionLabels(test_rows, data.num_classes, seed + kRandomTestLabelsSeedOffset)
              .to(device);
      target.num_classes = data.num_classes;
    } else {
      const auto spec = std::find_if(label_files->begin(), label_files->end(),
                                     [&](const LabelFileSpec& s) { return s.name == name; });
      // ResolveAnalysisTargets only returns declared names.
      auto user = LabelFileTarget(*spec, train_rows, test_rows, device);
      if (!user.ok()) return user.status();
      target = *std::move(user);
    }
    plan.targets.push_back(std::move(target));
  }
  return plan;
}

absl::Status ExportLayerFeatures(const std::string& dir, const MeasurementPlan& plan,
                                 const std::vector<torch::Tensor>& train_features,
                                 const std::vector<torch::Tensor>& test_features,
                                 const TrialData& data) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat(dir, ": cannot create the export directory: ", error.message()));
  }
  const int64_t train_rows = plan.train_images.size(0);
  const int64_t test_rows = plan.test_images.size(0);
  std::vector<std::pair<std::string, torch::Tensor>> files;
  for (size_t i = 0; i < plan.taps.size(); ++i) {
    files.emplace_back(plan.taps[i] + ".train.npy", train_features[i]);
    files.emplace_back(plan.taps[i] + ".test.npy", test_features[i]);
  }
  files.emplace_back("labels.fine.train.npy", data.train_labels.slice(0, 0, train_rows));
  files.emplace_back("labels.fine.test.npy", data.test_labels.slice(0, 0, test_rows));
  files.emplace_back("labels.coarse.train.npy", data.train_coarse.slice(0, 0, train_rows));
  files.emplace_back("labels.coarse.test.npy", data.test_coarse.slice(0, 0, test_rows));
  for (const auto& [name, tensor] : files) {
    const std::string path = (std::filesystem::path(dir) / name).string();
    try {
      WriteNpy(path, tensor);
    } catch (const c10::Error& e) {
      return absl::UnavailableError(e.what_without_backtrace());
    }
  }
  return absl::OkStatus();
}

PlanFeatures CollectPlanFeatures(Backbone& backbone, SslMethod& method,
                                 const MeasurementPlan& plan, const DeviceSettings& settings,
                                 int64_t batch_rows) {
  const auto collect = [&](const torch::Tensor& images) {
    return CollectLayerFeatures(backbone, method, images, plan.taps, settings, batch_rows);
  };
  PlanFeatures features;
  features.train = collect(plan.train_images);
  features.test = collect(plan.test_images);
  if (plan.sample_train_images.defined()) {
    features.sample_train = collect(plan.sample_train_images);
    features.sample_test = collect(plan.sample_test_images);
  }
  return features;
}

std::vector<MetricValue> MeasurePlan(const MeasurementPlan& plan, const PlanFeatures& features) {
  std::vector<MetricValue> values;
  const bool sample = !features.sample_train.empty();
  for (size_t i = 0; i < plan.taps.size(); ++i) {
    if (sample) {
      for (MetricValue& value : MeasureLayer(plan.taps[i], features.sample_train[i],
                                             features.sample_test[i], {plan.sample}, plan.suite)) {
        values.push_back(std::move(value));
      }
    }
    if (!plan.targets.empty()) {
      for (MetricValue& value : MeasureLayer(plan.taps[i], features.train[i], features.test[i],
                                             plan.targets, plan.suite)) {
        values.push_back(std::move(value));
      }
    }
  }
  return values;
}

}  // namespace sslsweep
