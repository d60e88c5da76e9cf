#include "worker/trainer/dataset.h"

#include <algorithm>

#include <ATen/CPUGeneratorImpl.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "worker/trainer/fashion_mnist.h"

namespace sslsweep {
namespace {

constexpr int64_t kImageSide = 28;
constexpr int64_t kPrototypeSide = 7;  // prototypes are smooth at this scale

// Smooth random fields: Gaussian noise on a coarse grid, upsampled.
torch::Tensor SmoothNoise(int64_t count, torch::Generator& generator) {
  torch::Tensor coarse = torch::randn(
      {count, 1, kPrototypeSide, kPrototypeSide}, generator, torch::kFloat32);
  return torch::nn::functional::interpolate(
      coarse, torch::nn::functional::InterpolateFuncOptions()
                  .size(std::vector<int64_t>{kImageSide, kImageSide})
                  .mode(torch::kBilinear)
                  .align_corners(false));
}

torch::Tensor ToTensorImages(const LabeledImages& split) {
  torch::Tensor bytes = torch::from_blob(
      const_cast<uint8_t*>(split.pixels.data()),
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
  // Prototypes span [0.15, 0.85] so that noise still leaves them distinct.
  torch::Tensor prototypes = SmoothNoise(options.classes, generator);
  const torch::Tensor low = prototypes.amin({1, 2, 3}, /*keepdim=*/true);
  const torch::Tensor high = prototypes.amax({1, 2, 3}, /*keepdim=*/true);
  prototypes = (prototypes - low) / (high - low).clamp_min(1e-6) * 0.7 + 0.15;

  auto make_split = [&](int64_t count, torch::Tensor& images,
                        torch::Tensor& labels) {
    labels = torch::randint(options.classes, {count}, generator,
                            torch::kInt64);
    images = prototypes.index_select(0, labels) +
             options.smooth_noise * SmoothNoise(count, generator) +
             options.pixel_noise *
                 torch::randn({count, 1, kImageSide, kImageSide}, generator,
                              torch::kFloat32);
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
    return absl::InvalidArgumentError(absl::StrCat(
        "data.dataset: '", config.dataset,
        "' is not one of: fashion_mnist, synthetic"));
  }
  auto raw = LoadFashionMnist(config.root, config.train_samples,
                              config.test_samples);
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
