#include "worker/trainer/augment.h"

#include <cmath>

namespace sslsweep {
namespace {

// Uniform in [low, high) from uniforms in [0, 1).
torch::Tensor Between(const torch::Tensor& u, double low, double high) {
  return u * (high - low) + low;
}

}  // namespace

torch::Tensor Augment(const torch::Tensor& images,
                      const AugmentOptions& options) {
  TORCH_CHECK(images.dim() == 4 && images.scalar_type() == torch::kFloat32,
              "Augment needs a float [B, C, H, W] tensor");
  TORCH_CHECK(0 < options.min_scale && options.min_scale <= options.max_scale &&
                  options.max_scale <= 1,
              "Augment needs 0 < min_scale <= max_scale <= 1");
  TORCH_CHECK(0 < options.min_ratio && options.min_ratio <= options.max_ratio,
              "Augment needs 0 < min_ratio <= max_ratio");
  const int64_t batch = images.size(0);
  const auto float_options = images.options();
  // One draw for every random choice of every image keeps the stream simple.
  const torch::Tensor u = torch::rand({8, batch}, float_options);

  // Crop width and height as fractions of the image side; affine_grid's
  // normalised coordinates span [-1, 1], so a fraction w of the side is a
  // scale of w and the centre may move by up to 1 - w either way.
  const torch::Tensor area =
      Between(u[0], options.min_scale, options.max_scale);
  const torch::Tensor ratio = torch::exp(
      Between(u[1], std::log(options.min_ratio), std::log(options.max_ratio)));
  const torch::Tensor w = torch::sqrt(area * ratio).clamp_max(1.0);
  const torch::Tensor h = torch::sqrt(area / ratio).clamp_max(1.0);
  const torch::Tensor cx = (u[2] * 2 - 1) * (1 - w);
  const torch::Tensor cy = (u[3] * 2 - 1) * (1 - h);
  const torch::Tensor flip = torch::where(
      u[4] < options.flip_prob, -torch::ones_like(w), torch::ones_like(w));
  const torch::Tensor zero = torch::zeros_like(w);
  const torch::Tensor theta = torch::stack(
      {torch::stack({w * flip, zero, cx}, 1), torch::stack({zero, h, cy}, 1)},
      1);  // [B, 2, 3]
  const torch::Tensor grid = torch::nn::functional::affine_grid(
      theta, images.sizes(), /*align_corners=*/false);
  torch::Tensor views = torch::nn::functional::grid_sample(
      images, grid,
      torch::nn::functional::GridSampleFuncOptions()
          .mode(torch::kBilinear)
          .padding_mode(torch::kBorder)
          .align_corners(false));
  views.clamp_(0.0, 1.0);  // interpolation may round a hair past 1

  const torch::Tensor jitter = (u[5] < options.jitter_prob).view({-1, 1, 1, 1});
  const torch::Tensor brightness =
      Between(u[6], 1 - options.brightness, 1 + options.brightness)
          .view({-1, 1, 1, 1});
  const torch::Tensor contrast =
      Between(u[7], 1 - options.contrast, 1 + options.contrast)
          .view({-1, 1, 1, 1});
  torch::Tensor jittered = (views * brightness).clamp(0.0, 1.0);
  const torch::Tensor mean = jittered.mean({1, 2, 3}, /*keepdim=*/true);
  jittered = ((jittered - mean) * contrast + mean).clamp(0.0, 1.0);
  return torch::where(jitter, jittered, views);
}

}  // namespace sslsweep
