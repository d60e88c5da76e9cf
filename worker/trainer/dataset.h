// The images and labels of one trial, as tensors: Fashion-MNIST or CIFAR-10/
// 100 read from disk, or a seeded synthetic hierarchical dataset for fast
// tests.
//
// Images are float [N, C, H, W] in [0, 1] (1x28x28 for Fashion-MNIST and the
// synthetic data, 3x32x32 for CIFAR); labels int64 [N] in [0, num_classes);
// coarse labels (superclasses) int64 [N] in [0, num_coarse_classes).
//
// The synthetic data: `superclasses` coarse classes of classes/superclasses
// fine classes each. A sample is a sinusoidal grating plus smooth and
// per-pixel noise. Its orientation is its fine class's; the orientations
// spread over [0, pi/2] in bands, one band per superclass with a gap between
// bands, so that the fine classes of a superclass are each other's nearest
// in orientation. Each fine class of a band also has its own sub-range of
// grating frequencies (a second cue). Frequency within the sub-range,
// contrast and phase are random per sample; the phase at the image centre
// spreads over most but not all of a turn, so the class means keep part of
// their grating. Nearest-class-center accuracy on the raw pixels is then
// above chance for both label sets and higher for the coarse ones (0.59
// and 0.61 with the defaults, where chance is 0.1 and 0.2), leaving
// training room to improve it, and the classes are textures that crops,
// flips and colour jitter preserve. It uses its own generator, so it does
// not disturb (or depend on) the global LibTorch generator that seeds the
// training.
//
// Thread contract: the functions are pure and may be called from any thread.

#ifndef SSLSWEEP_WORKER_TRAINER_DATASET_H_
#define SSLSWEEP_WORKER_TRAINER_DATASET_H_

#include <cstdint>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "worker/trainer/fashion_mnist.h"  // LabeledImages
#include "worker/trial_config.h"

namespace sslsweep {

struct TrialData {
  torch::Tensor train_images;  // [N, C, H, W] float in [0, 1]
  torch::Tensor train_labels;  // [N] int64, fine classes
  torch::Tensor train_coarse;  // [N] int64, superclasses
  torch::Tensor test_images;   // [M, C, H, W] float in [0, 1]
  torch::Tensor test_labels;   // [M] int64
  torch::Tensor test_coarse;   // [M] int64
  int64_t num_classes = 0;
  int64_t num_coarse_classes = 0;
  int64_t channels = 0;  // the image shape: C, H, W
  int64_t height = 0;
  int64_t width = 0;
};

struct SyntheticDataOptions {
  int64_t classes = 10;      // fine classes
  int64_t superclasses = 5;  // coarse classes; divides `classes`
  int64_t train_samples = 256;
  int64_t test_samples = 64;
  // Fixed by default so that every trial of a sweep, whatever its seed, sees
  // the same data, as it would with a dataset on disk.
  uint64_t seed = 20231210;
  // Grating frequency in cycles per image side: the range is split into one
  // sub-range per fine class of a superclass, drawn from uniformly.
  double min_cycles = 2.5;
  double max_cycles = 4.0;
  // The empty space between two superclasses' orientation bands, in units of
  // the step between neighbouring fine classes' orientations.
  double band_gap = 0.5;
  // The phase at the image centre is uniform in +-phase_spread / 2: below
  // 2 pi, the class means keep some of the grating.
  double phase_spread = 1.6 * 3.14159265358979;
  double smooth_noise = 0.1;  // std of the low-frequency per-sample noise
  double pixel_noise = 0.05;  // std of the per-pixel noise
};

// The tensors of splits read from disk (pixels / 255, labels as int64).
// REQUIRES: train and test have coarse_labels and the same image shape.
TrialData ToTrialData(const LabeledImages& train, const LabeledImages& test,
                      int64_t num_classes, int64_t num_coarse_classes);

// REQUIRES: classes >= 2, superclasses >= 1 divides classes,
// train_samples > 0, test_samples > 0.
TrialData MakeSyntheticData(const SyntheticDataOptions& options);

// Loads the data `config` names: Fashion-MNIST or CIFAR-10/100 from
// config.root (errors as LoadFashionMnist's and LoadCifar's: NotFound /
// PermissionDenied / DataLoss naming the file, InvalidArgument for a subset
// larger than the split, naming the key), or synthetic data with
// config.test_samples defaulting to train_samples / 4 (at least 1)
// (InvalidArgument if train_samples is 0 or synthetic_superclasses does not
// divide synthetic_classes).
absl::StatusOr<TrialData> LoadTrialData(const DataConfig& config);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_DATASET_H_
