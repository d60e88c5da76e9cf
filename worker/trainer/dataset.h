// The images and labels of one trial, as tensors: Fashion-MNIST read from
// disk, or a seeded synthetic dataset for fast tests.
//
// Images are float [N, 1, H, W] in [0, 1] (28x28 for both datasets);
// labels int64 [N] in [0, num_classes). A synthetic sample of class c is a
// sinusoidal grating whose orientation is c's (the classes' orientations
// spread evenly over [0, pi/2]), with a random phase, frequency and contrast,
// plus smooth and per-pixel noise: texture classes that random-crop, flip and
// jitter augmentations preserve, so that a network (and NCC) tells them apart
// after a few steps. It uses its own generator, so it does not disturb
// (or depend on) the global LibTorch generator that seeds the training.
//
// Thread contract: the functions are pure and may be called from any thread.

#ifndef SSLSWEEP_WORKER_TRAINER_DATASET_H_
#define SSLSWEEP_WORKER_TRAINER_DATASET_H_

#include <cstdint>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "worker/trial_config.h"

namespace sslsweep {

struct TrialData {
  torch::Tensor train_images;  // [N, 1, 28, 28] float in [0, 1]
  torch::Tensor train_labels;  // [N] int64
  torch::Tensor test_images;   // [M, 1, 28, 28] float in [0, 1]
  torch::Tensor test_labels;   // [M] int64
  int64_t num_classes = 0;
};

struct SyntheticDataOptions {
  int64_t classes = 10;
  int64_t train_samples = 256;
  int64_t test_samples = 64;
  // Fixed by default so that every trial of a sweep, whatever its seed, sees
  // the same data, as it would with a dataset on disk.
  uint64_t seed = 20231210;
  double min_cycles = 2.5;    // grating frequency per image side, drawn
  double max_cycles = 4.0;    // uniformly per sample
  double smooth_noise = 0.1;  // std of the low-frequency per-sample noise
  double pixel_noise = 0.05;  // std of the per-pixel noise
};

// REQUIRES: classes >= 2, train_samples > 0, test_samples > 0.
TrialData MakeSyntheticData(const SyntheticDataOptions& options);

// Loads the data `config` names: Fashion-MNIST from config.root (errors as
// LoadFashionMnist's: NotFound / PermissionDenied / DataLoss naming the file,
// InvalidArgument for a subset larger than the split) or synthetic data with
// config.test_samples defaulting to train_samples / 4 (at least 1).
absl::StatusOr<TrialData> LoadTrialData(const DataConfig& config);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_DATASET_H_
