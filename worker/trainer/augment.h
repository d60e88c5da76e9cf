// Augment: the random views an SSL method compares, as batched tensor ops.
//
// Each image of the batch independently gets a random resized crop (area
// fraction uniform in [min_scale, max_scale], aspect ratio log-uniform in
// [min_ratio, max_ratio], position uniform inside the image; one affine_grid
// + grid_sample for the whole batch, bilinear), a horizontal flip with
// probability flip_prob, and with probability jitter_prob a brightness
// (multiply by U[1-b, 1+b]) then contrast (scale the deviation from the
// image's mean by U[1-c, 1+c]) jitter. Outputs stay in [0, 1]. The random
// numbers come from the global LibTorch generator, so torch::manual_seed
// makes the views reproducible.
//
// Thread contract: draws from the global generator; call from the training
// thread only.

#ifndef SSLSWEEP_WORKER_TRAINER_AUGMENT_H_
#define SSLSWEEP_WORKER_TRAINER_AUGMENT_H_

#include <torch/torch.h>

namespace sslsweep {

struct AugmentOptions {
  double min_scale = 0.2;
  double max_scale = 1.0;
  double min_ratio = 3.0 / 4.0;
  double max_ratio = 4.0 / 3.0;
  double flip_prob = 0.5;
  double jitter_prob = 0.8;
  double brightness = 0.4;
  double contrast = 0.4;
};

// Returns one random view of each image.
// REQUIRES: images is a float [B, C, H, W] tensor with values in [0, 1];
// 0 < min_scale <= max_scale <= 1; 0 < min_ratio <= max_ratio.
torch::Tensor Augment(const torch::Tensor& images,
                      const AugmentOptions& options = {});

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_AUGMENT_H_
