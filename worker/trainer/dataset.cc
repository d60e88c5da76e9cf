#include "worker/trainer/dataset.h"

#include <algorithm>
#include <cmath>

#include <ATen/CPUGeneratorImpl.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
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
  torch::Tensor bytes =
      torch::from_blob(const_cast<uint8_t*>(split.pixels.data()),
                       {split.count, 1, split.rows, split.cols}, torch::kUInt8);
  return bytes.to(torch::kFloat32).div_(255.0);  // copies out of `split`
}

torch::Tensor ToTensorLabels(const LabeledImages& split) {
  torch::Tensor bytes = torch::from_blob(
      const_cast<uint8_t*>(split.labels.data()), {split.count}, torch::kUInt8);
  return bytes.to(torch::kInt64);
}

}  // namespace

TrialData MakeSyntheticData(const SyntheticDataOptions& options) {
  TORCH_CHECK(options.classes >= 2, "synthetic data needs >= 2 classes");
  TORCH_CHECK(options.train_samples > 0 && options.test_samples > 0,
              "synthetic data needs train and test samples");
  torch::Generator generator =
      at::make_generator<at::CPUGeneratorImpl>(options.seed);
  // Orientations spread over [0, pi/2] only: a horizontal flip maps angle t
  // to pi - t, which no other class uses, so flip-invariant features still
  // separate the classes.
  const torch::Tensor class_angles =
      torch::linspace(0.0, kPi / 2, options.classes, torch::kFloat64)
          .to(torch::kFloat32);
  const torch::Tensor coordinates =
      (torch::arange(kImageSide, torch::kFloat32) + 0.5) / kImageSide;
  const torch::Tensor ys = coordinates.view({1, 1, kImageSide, 1});
  const torch::Tensor xs = coordinates.view({1, 1, 1, kImageSide});

  auto make_split = [&](int64_t count, torch::Tensor& images,
                        torch::Tensor& labels) {
    labels = torch::randint(options.classes, {count}, generator, torch::kInt64);
    auto per_sample = [&](double low, double high) {
      return (torch::rand({count, 1, 1, 1}, generator, torch::kFloat32) *
                  (high - low) +
              low);
    };
    const torch::Tensor angle =
        class_angles.index_select(0, labels).view({count, 1, 1, 1});
    const torch::Tensor cycles =
        per_sample(options.min_cycles, options.max_cycles);
    const torch::Tensor phase = per_sample(0.0, 2 * kPi);
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
  make_split(options.train_samples, data.train_images, data.train_labels);
  make_split(options.test_samples, data.test_images, data.test_labels);
  return data;
}

absl::StatusOr<TrialData> LoadTrialData(const DataConfig& config) {
  if (config.dataset == "synthetic") {
    SyntheticDataOptions options;
    options.classes = config.synthetic_classes;
    options.train_samples = config.train_samples;
    options.test_samples = config.test_samples > 0
                               ? config.test_samples
                               : std::max<int64_t>(1, config.train_samples / 4);
    if (options.train_samples <= 0) {
      return absl::InvalidArgumentError(
          "data.train_samples: synthetic data needs data.train_samples > 0");
    }
    return MakeSyntheticData(options);
  }
  if (config.dataset != "fashion_mnist") {
    return absl::InvalidArgumentError(
        absl::StrCat("data.dataset: '", config.dataset,
                     "' is not one of: fashion_mnist, synthetic"));
  }
  auto raw =
      LoadFashionMnist(config.root, config.train_samples, config.test_samples);
  if (!raw.ok()) return raw.status();
  TrialData data;
  data.num_classes = FashionMnist::kNumClasses;
  data.train_images = ToTensorImages(raw->train);
  data.train_labels = ToTensorLabels(raw->train);
  data.test_images = ToTensorImages(raw->test);
  data.test_labels = ToTensorLabels(raw->test);
  return data;
}

}  // namespace sslsweep
