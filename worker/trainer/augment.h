// Augment: the random views an SSL method compares, as batched tensor ops on
// the images' device.
//
// AugmentView applies, in the order of BYOL's and VICReg's recipes:
//   1. random resized crop and horizontal flip (RandomResizedCrop),
//   2. colour jitter (RandomColorJitter),
//   3. grayscale (RandomGrayscale),
//   4. Gaussian blur (RandomGaussianBlur), with the view's probability,
//   5. solarisation (RandomSolarize), with the view's probability.
// Every random choice is made per image: each image of the batch gets its own
// crop, its own coin flips and its own strengths. The random numbers come
// from the global LibTorch generator (of the images' device), each op drawing
// a fixed number of them whatever the outcome, so torch::manual_seed makes
// the views reproducible. Outputs stay in [0, 1]. On 1-channel images
// saturation, hue and grayscale are the identity.
//
// Each op first draws the random choices of the whole batch and turns them
// into per-image parameters (crop coordinates, factors, blur kernels), and
// only then touches images. So AugmentViewRows can augment a few rows of a
// larger batch (a data-parallel rank's share of the global batch) exactly as
// AugmentView augments them within the whole batch, advancing the generator
// alike, for the cost of those rows' image work only: an image's view
// depends on the generator's state and its row in the batch, not on which
// other rows are computed.
//
// Where we follow torchvision and where we differ:
// - Crop: area fraction uniform in [crop_scale_min, crop_scale_max], aspect
//   ratio log-uniform in [3/4, 4/3] restricted to the ratios at which the
//   crop fits in the image (torchvision rejects and redraws such crops), so
//   a scale of 1 is the whole image; resized back to the input size by
//   bilinear interpolation as grid_sample's (align_corners = false, border
//   padding) but separably, two gathers per axis, with the flip folded into
//   the column coordinates; no antialiasing.
// - Colour jitter: torchvision's factors (brightness, contrast, saturation
//   uniform in [max(0, 1 - s), 1 + s], hue shift uniform in [-h, h] turns),
//   formulas (contrast and saturation blend with the ITU-R 601 luma, where
//   torchvision's weights are 0.2989 / 0.587 / 0.114; hue rotates H of an
//   RGB -> HSV -> RGB round trip computed with branch-free tensor ops) and
//   clamping after each. The four are applied in a random order drawn per
//   image, as torchvision does when it transforms images one at a time: at
//   each of the four steps the images are grouped by the adjustment they
//   apply there, so each image still costs one pass per adjustment.
// - Blur: sigma uniform in [0.1, 2.0] * max(H, W) / 224 (the recipes' sigmas
//   are for 224-pixel images), a separable kernel of 2 * ceil(3 sigma_max) + 1
//   taps with sigma_max the largest sigma of the blurred images, each image
//   using its own Gaussian weights normalised over those taps; reflect
//   padding as torchvision's.
// - Solarize: pixels >= 0.5 become 1 - x.
//
// Thread contract: draws from the global generator; call from the training
// thread only.

#ifndef SSLSWEEP_WORKER_TRAINER_AUGMENT_H_
#define SSLSWEEP_WORKER_TRAINER_AUGMENT_H_

#include <torch/torch.h>

#include "worker/trial_config.h"

namespace sslsweep {

// Every function below REQUIRES: images is a float32 [B, C, H, W] tensor
// with C 1 or 3 and values in [0, 1]. Each returns a new tensor of the same
// shape, dtype and device (or `images` itself when it changes nothing) and
// never modifies `images`. A precondition that fails throws c10::Error.

// One random view of each image: the pipeline above, with the blur and
// solarisation probabilities of view 1 or view 2 of `config`.
// REQUIRES: view is 1 or 2; 0 < config.crop_scale_min <=
// config.crop_scale_max <= 1.
torch::Tensor AugmentView(const torch::Tensor& images,
                          const AugmentConfig& config, int view);

// Where a tensor's images lie in a larger batch: its rows are rows
// [first, first + its size) of a batch of batch_size images.
struct BatchRows {
  int64_t first = 0;
  int64_t batch_size = 0;
};

// Rows [rows.first, rows.first + images.size(0)) of AugmentView(batch,
// config, view), where `images` are those rows of `batch`, a batch of
// rows.batch_size images: draws the random choices of the whole batch, as
// AugmentView does (the generator ends in the same state), and computes the
// views of `images` only. AugmentView(images, config, view) is
// AugmentViewRows(images, {0, images.size(0)}, config, view).
// REQUIRES: as AugmentView; 0 <= rows.first and rows.first + images.size(0)
// <= rows.batch_size.
torch::Tensor AugmentViewRows(const torch::Tensor& images,
                              const BatchRows& rows,
                              const AugmentConfig& config, int view);

// The stages of AugmentView, for tests and for other pipelines.

// Random resized crop (config.crop_scale_min / crop_scale_max) and horizontal
// flip with probability config.flip_prob.
torch::Tensor RandomResizedCrop(const torch::Tensor& images,
                                const AugmentConfig& config);

// With probability config.jitter_prob per image, jitters brightness,
// contrast, saturation and hue (config.brightness .. config.hue; a strength
// of 0 skips that adjustment) in a random order.
// REQUIRES: config.hue <= 0.5.
torch::Tensor RandomColorJitter(const torch::Tensor& images,
                                const AugmentConfig& config);

// With probability `probability` per image, replaces the channels by their
// ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B), replicated to 3 channels.
torch::Tensor RandomGrayscale(const torch::Tensor& images, double probability);

// With probability `probability` per image, a Gaussian blur (see above).
torch::Tensor RandomGaussianBlur(const torch::Tensor& images,
                                 double probability);

// With probability `probability` per image, maps pixels x >= 0.5 to 1 - x.
torch::Tensor RandomSolarize(const torch::Tensor& images, double probability);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_AUGMENT_H_
