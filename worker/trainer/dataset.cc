#include "worker/trainer/dataset.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "worker/trainer/cifar.h"
#include "worker/trainer/fashion_mnist.h"

namespace sslsweep {
namespace {

constexpr int64_t kImageSide = 28;
constexpr int64_t kNoiseSide = 7;  // the smooth noise varies at this scale
constexpr double kPi = 3.14159265358979323846;

// Smooth random fields: Gaussian noise on a coarse grid, upsampled.
torch::Tensor SmoothNoise(int64_t count, torch::Generator& generator) {
  torch::Tensor coarse = torch::randn({count, 1, kNoiseSide, kNoiseSide},
                                      generator, torch::kFloat32);
  return torch::nn::functional::interpolate(
      coarse, torch::nn::functional::InterpolateFuncOptions()
                  .size(std::vector<int64_t>{kImageSide, kImageSide})
                  .mode(torch::kBilinear)
                  .align_corners(false));
}

torch::Tensor ToTensorImages(const LabeledImages& split) {
  torch::Tensor bytes = torch::from_blob(
      const_cast<uint8_t*>(split.pixels.data()),
      {split.count, split.channels, split.rows, split.cols}, torch::kUInt8);
  return bytes.to(torch::kFloat32).div_(255.0);  // copies out of `split`
}

torch::Tensor ToTensorLabels(const std::vector<uint8_t>& labels) {
  torch::Tensor bytes =
      torch::from_blob(const_cast<uint8_t*>(labels.data()),
                       {static_cast<int64_t>(labels.size())}, torch::kUInt8);
  return bytes.to(torch::kInt64);
}

}  // namespace

TrialData ToTrialData(const LabeledImages& train, const LabeledImages& test,
                      int64_t num_classes, int64_t num_coarse_classes) {
  TORCH_CHECK(train.coarse_labels.size() == train.labels.size() &&
                  test.coarse_labels.size() == test.labels.size(),
              "ToTrialData needs coarse labels");
  TORCH_CHECK(train.channels == test.channels && train.rows == test.rows &&
                  train.cols == test.cols,
              "ToTrialData needs one image shape");
  TrialData data;
  data.num_classes = num_classes;
  data.num_coarse_classes = num_coarse_classes;
  data.channels = train.channels;
  data.height = train.rows;
  data.width = train.cols;
  data.train_images = ToTensorImages(train);
  data.train_labels = ToTensorLabels(train.labels);
  data.train_coarse = ToTensorLabels(train.coarse_labels);
  data.test_images = ToTensorImages(test);
  data.test_labels = ToTensorLabels(test.labels);
  data.test_coarse = ToTensorLabels(test.coarse_labels);
  return data;
}

TrialData MakeSyntheticData(const SyntheticDataOptions& options) {
  TORCH_CHECK(options.classes >= 2, "synthetic data needs >= 2 classes");
  TORCH_CHECK(
      options.superclasses >= 1 && options.classes % options.superclasses == 0,
      "synthetic superclasses must divide the classes");
  TORCH_CHECK(options.train_samples > 0 && options.test_samples > 0,
              "synthetic data needs train and test samples");
  torch::Generator generator =
      at::make_generator<at::CPUGeneratorImpl>(options.seed);
  const int64_t per_super = options.classes / options.superclasses;

  // Orientations spread over [0, pi/2] only: a horizontal flip maps angle t
  // to pi - t, which no other class uses, so flip-invariant features still
  // separate the classes. Fine class s * per_super + j sits at slot
  // s * (per_super + band_gap) + j.
  const torch::Tensor fine = torch::arange(options.classes, torch::kFloat64);
  const torch::Tensor superclass = torch::floor(fine / per_super);
  const torch::Tensor within = fine - superclass * per_super;
  const torch::Tensor slot =
      superclass * (per_super + options.band_gap) + within;
  const torch::Tensor class_angles =
      (slot * (kPi / 2) / slot.max()).to(torch::kFloat32);
  const double band = (options.max_cycles - options.min_cycles) / per_super;
  const torch::Tensor class_min_cycles =
      (options.min_cycles + within * band).to(torch::kFloat32);
  // Centred coordinates, so that the phase is coherent around the centre.
  const torch::Tensor coordinates =
      (torch::arange(kImageSide, torch::kFloat32) + 0.5) / kImageSide - 0.5;
  const torch::Tensor ys = coordinates.view({1, 1, kImageSide, 1});
  const torch::Tensor xs = coordinates.view({1, 1, 1, kImageSide});

  auto make_split = [&](int64_t count, torch::Tensor& images,
                        torch::Tensor& labels, torch::Tensor& coarse) {
    labels = torch::randint(options.classes, {count}, generator, torch::kInt64);
    coarse = torch::div(labels, per_super, "floor");
    auto per_sample = [&](double low, double high) {
      return (torch::rand({count, 1, 1, 1}, generator, torch::kFloat32) *
                  (high - low) +
              low);
    };
    const torch::Tensor angle =
        class_angles.index_select(0, labels).view({count, 1, 1, 1});
    const torch::Tensor cycles =
        class_min_cycles.index_select(0, labels).view({count, 1, 1, 1}) +
        per_sample(0.0, band);
    const torch::Tensor phase =
        per_sample(-options.phase_spread / 2, options.phase_spread / 2);
    const torch::Tensor amplitude = per_sample(0.25, 0.4);
    images = 0.5 + amplitude * torch::sin(2 * kPi * cycles *
                                              (xs * torch::cos(angle) +
                                               ys * torch::sin(angle)) +
                                          phase);
    images =
        images + options.smooth_noise * SmoothNoise(count, generator) +
        options.pixel_noise * torch::randn({count, 1, kImageSide, kImageSide},
                                           generator, torch::kFloat32);
    images.clamp_(0.0, 1.0);
  };
  TrialData data;
  data.num_classes = options.classes;
  data.num_coarse_classes = options.superclasses;
  data.channels = 1;
  data.height = kImageSide;
  data.width = kImageSide;
  make_split(options.train_samples, data.train_images, data.train_labels,
             data.train_coarse);
  make_split(options.test_samples, data.test_images, data.test_labels,
             data.test_coarse);
  return data;
}

absl::StatusOr<TrialData> LoadTrialData(const DataConfig& config) {
  if (config.dataset == "synthetic") {
    if (config.train_samples <= 0) {
      return absl::InvalidArgumentError(
          "data.train_samples: synthetic data needs data.train_samples > 0");
    }
    if (config.synthetic_classes < 2 || config.synthetic_superclasses < 1 ||
        config.synthetic_classes % config.synthetic_superclasses != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "data.synthetic_superclasses: ", config.synthetic_superclasses,
          " superclasses must divide data.synthetic_classes (",
          config.synthetic_classes, ", at least 2)"));
    }
    SyntheticDataOptions options;
    options.classes = config.synthetic_classes;
    options.superclasses = config.synthetic_superclasses;
    options.train_samples = config.train_samples;
    options.test_samples = config.test_samples > 0
                               ? config.test_samples
                               : std::max<int64_t>(1, config.train_samples / 4);
    return MakeSyntheticData(options);
  }
  if (config.dataset == "cifar10" || config.dataset == "cifar100") {
    CifarLoadOptions options;
    options.variant = config.dataset == "cifar10" ? CifarVariant::kCifar10
                                                  : CifarVariant::kCifar100;
    options.root = config.root;
    options.train_limit = config.train_samples;
    options.test_limit = config.test_samples;
    auto raw = LoadCifar(options);
    if (!raw.ok()) return raw.status();
    return ToTrialData(raw->train, raw->test, raw->num_classes,
                       raw->num_coarse_classes);
  }
  if (config.dataset != "fashion_mnist") {
    return absl::InvalidArgumentError(absl::StrCat(
        "data.dataset: '", config.dataset,
        "' is not one of: fashion_mnist, cifar10, cifar100, synthetic"));
  }
  auto raw =
      LoadFashionMnist(config.root, config.train_samples, config.test_samples);
  if (!raw.ok()) return raw.status();
  return ToTrialData(raw->train, raw->test, FashionMnist::kNumClasses,
                     FashionMnist::kNumCoarseClasses);
}

}  // namespace sslsweep
