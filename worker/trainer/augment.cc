#include "worker/trainer/augment.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

namespace sslsweep {
namespace {

constexpr double kMinRatio = 3.0 / 4.0;
constexpr double kMaxRatio = 4.0 / 3.0;
constexpr double kMinBlurSigma = 0.1;  // for 224-pixel images
constexpr double kMaxBlurSigma = 2.0;
constexpr double kBlurReferenceSide = 224.0;

void CheckImages(const torch::Tensor& images) {
  TORCH_CHECK(images.dim() == 4 && images.scalar_type() == torch::kFloat32,
              "augmentations need a float32 [B, C, H, W] tensor, got ",
              images.sizes(), " ", images.scalar_type());
  TORCH_CHECK(images.size(1) == 1 || images.size(1) == 3,
              "augmentations need 1 or 3 channels, got ", images.size(1));
}

// Uniform in [low, high) from uniforms in [0, 1).
torch::Tensor Between(const torch::Tensor& u, double low, double high) {
  return u * (high - low) + low;
}

// A per-image [B] tensor viewed for broadcasting against [B, C, H, W].
torch::Tensor PerImage(const torch::Tensor& values) {
  return values.view({-1, 1, 1, 1});
}

// [B, 3, H, W] -> [B, 1, H, W], ITU-R 601 luma.
torch::Tensor Luma(const torch::Tensor& rgb) {
  return rgb.narrow(1, 0, 1) * 0.299 + rgb.narrow(1, 1, 1) * 0.587 +
         rgb.narrow(1, 2, 1) * 0.114;
}

// The indices of the true entries of a [B] bool tensor, ascending.
torch::Tensor Selected(const torch::Tensor& mask) {
  return mask.nonzero().squeeze(1);
}

// `images` with the images at `rows` (ascending indices) replaced by
// fn(those images, rows); fn must not modify its argument in place.
template <typename Fn>
torch::Tensor ReplaceRows(const torch::Tensor& images,
                          const torch::Tensor& rows, Fn fn) {
  if (rows.numel() == 0) return images;
  if (rows.numel() == images.size(0)) return fn(images, rows);
  return images.index_copy(0, rows, fn(images.index_select(0, rows), rows));
}

// ---- Resized crop, separably --------------------------------------------

// Bilinear resampling of `x` along `dim` (2: rows, 3: columns) at each
// image's source coordinates `source` ([B, size] float64, input pixel units,
// already clamped to [0, size - 1] as grid_sample's border padding does):
// two gathers and a blend, cheaper than grid_sample for axis-aligned crops.
torch::Tensor ResampleAlong(const torch::Tensor& x, const torch::Tensor& source,
                            int64_t dim) {
  const int64_t batch = x.size(0);
  const int64_t size = x.size(dim);
  std::vector<int64_t> shape = {batch, 1, 1, 1};
  shape[dim] = size;
  const torch::Tensor low_coordinate = torch::floor(source);
  const torch::Tensor low = low_coordinate.to(torch::kInt64);
  const torch::Tensor high = (low + 1).clamp_max(size - 1);
  const torch::Tensor weight =
      (source - low_coordinate).to(x.scalar_type()).view(shape);
  const torch::Tensor a = x.gather(dim, low.view(shape).expand_as(x));
  torch::Tensor b = x.gather(dim, high.view(shape).expand_as(x));
  return b.sub_(a).mul_(weight).add_(a);  // a + weight (b - a)
}

// The source coordinates of the `size` output pixels of each image when the
// normalised coordinate g in [-1, 1] maps to centre + scale * g
// (affine_grid's convention with align_corners = false).
torch::Tensor SourceCoordinates(const torch::Tensor& centre,
                                const torch::Tensor& scale, int64_t size) {
  const auto options = torch::TensorOptions().dtype(torch::kFloat64);
  const torch::Tensor grid =
      (torch::arange(size, options.device(centre.device())) * 2 + 1) / size - 1;
  const torch::Tensor g = centre.to(torch::kFloat64).view({-1, 1}) +
                          scale.to(torch::kFloat64).view({-1, 1}) * grid;
  return (((g + 1) * size - 1) / 2).clamp(0, size - 1);
}

// ---- Colour jitter, as torchvision's functional adjust_* ----------------

torch::Tensor AdjustBrightness(const torch::Tensor& x,
                               const torch::Tensor& factor) {
  return (x * PerImage(factor)).clamp_(0.0, 1.0);
}

torch::Tensor AdjustContrast(const torch::Tensor& x,
                             const torch::Tensor& factor) {
  const torch::Tensor gray = x.size(1) == 3 ? Luma(x) : x;
  const torch::Tensor mean = gray.mean({1, 2, 3}, /*keepdim=*/true);
  return (x - mean).mul_(PerImage(factor)).add_(mean).clamp_(0.0, 1.0);
}

torch::Tensor AdjustSaturation(const torch::Tensor& x,
                               const torch::Tensor& factor) {
  const torch::Tensor gray = Luma(x);
  return (x - gray).mul_(PerImage(factor)).add_(gray).clamp_(0.0, 1.0);
}

// Rotates the hue by `shift` turns as torchvision's RGB -> HSV -> RGB round
// trip does, without its branches. With V = max, m = min, C = V - m and the
// hue H in sixths of a turn from the channel holding the max (ties to R,
// then G, though tied branches agree), HSV -> RGB is, for n = 5, 3, 1
// (R, G, B) and k = (n + H) mod 6: V - C clamp(min(k, 4 - k), 0, 1), which
// is m + C clamp(|k - 2| - 1, 0, 1). Work in turns (k / 6) to use frac.
torch::Tensor AdjustHue(const torch::Tensor& x, const torch::Tensor& shift) {
  const torch::Tensor r = x.select(1, 0);
  const torch::Tensor g = x.select(1, 1);
  const torch::Tensor b = x.select(1, 2);
  const torch::Tensor max = x.amax(1);
  const torch::Tensor min = x.amin(1);
  const torch::Tensor chroma = max - min;
  const torch::Tensor is_r = r.eq(max).to(x.scalar_type());
  const torch::Tensor is_g = g.eq(max).to(x.scalar_type()).mul_(1 - is_r);
  // H = [is_r (g - b) + is_g (b - r) + is_b (r - g)] / C + 2 is_g + 4 is_b
  // with is_b = 1 - is_r - is_g. Gray pixels (C = 0) have a zero numerator
  // and keep their value whatever their hue.
  const torch::Tensor r_g = r - g;
  torch::Tensor turns = (g - b).sub_(r_g).mul_(is_r);
  turns.addcmul_((b - r).sub_(r_g), is_g).add_(r_g);
  // The clamp only guards C = 0: below it the output moves by under 1e-12.
  turns.div_(chroma.clamp_min(1e-12)).sub_(is_r, 4).sub_(is_g, 2).add_(4);
  // From sixths to turns, shifted, plus 1 to stay positive (H >= -1 and
  // shift >= -1/2).
  turns.div_(6).add_(shift.view({-1, 1, 1}) + 1);
  const torch::Tensor n =
      torch::tensor({5.0 / 6, 3.0 / 6, 1.0 / 6}, x.options())
          .view({1, 3, 1, 1});
  return (turns.unsqueeze(1) + n)
      .frac_()
      .sub_(1.0 / 3)
      .abs_()
      .mul_(6)
      .sub_(1)
      .clamp_(0.0, 1.0)
      .mul_(chroma.unsqueeze(1))
      .add_(min.unsqueeze(1))
      .clamp_(0.0, 1.0);
}

enum JitterOp { kBrightness = 0, kContrast, kSaturation, kHue, kNumJitterOps };

torch::Tensor ApplyJitterOp(int op, const torch::Tensor& x,
                            const torch::Tensor& factor) {
  switch (op) {
    case kBrightness:
      return AdjustBrightness(x, factor);
    case kContrast:
      return AdjustContrast(x, factor);
    case kSaturation:
      return AdjustSaturation(x, factor);
    default:
      return AdjustHue(x, factor);
  }
}

// ---- Gaussian blur ----------------------------------------------------------

// Convolves each image of x along `dim` with its own symmetric kernel
// (`weights`, [B, 2 radius + 1]), reflecting at the borders as reflect
// padding would, by adding shifted slices in place: for the few taps that
// small images need this beats padding and a grouped convolution.
// REQUIRES: radius < x.size(dim).
torch::Tensor ConvolveAlong(const torch::Tensor& x,
                            const torch::Tensor& weights, int64_t radius,
                            int64_t dim) {
  const int64_t size = x.size(dim);
  torch::Tensor out = x * PerImage(weights.select(1, radius));
  for (int64_t d = 1; d <= radius; ++d) {
    const torch::Tensor w = PerImage(weights.select(1, radius + d));
    // Inside: out[j] += w (x[j - d] + x[j + d]).
    out.narrow(dim, d, size - d).addcmul_(x.narrow(dim, 0, size - d), w);
    out.narrow(dim, 0, size - d).addcmul_(x.narrow(dim, d, size - d), w);
    // At the borders the missing neighbours reflect: x[-i] = x[i] and
    // x[size - 1 + i] = x[size - 1 - i].
    for (int64_t j = 0; j < d; ++j) {
      out.narrow(dim, j, 1).addcmul_(x.narrow(dim, d - j, 1), w);
      const int64_t right = size - 1 - j;
      out.narrow(dim, right, 1)
          .addcmul_(x.narrow(dim, 2 * (size - 1) - right - d, 1), w);
    }
  }
  return out;
}

// Each image's normalised Gaussian weights over 2 radius + 1 taps, from its
// sigma ([B]): [B, 2 radius + 1].
torch::Tensor GaussianWeights(const torch::Tensor& sigma, int64_t radius) {
  const torch::Tensor offsets =
      torch::arange(-radius, radius + 1, sigma.options()).view({1, -1});
  const torch::Tensor sigmas = sigma.view({-1, 1});
  const torch::Tensor weights =
      torch::exp(-(offsets * offsets) / (2.0 * sigmas * sigmas));
  return weights / weights.sum(1, /*keepdim=*/true);
}

// Blurs each image of x with its own weights ([B, 2 radius + 1]) per axis.
torch::Tensor BlurEach(const torch::Tensor& x, const torch::Tensor& weights,
                       int64_t radius) {
  return ConvolveAlong(ConvolveAlong(x, weights, radius, 2), weights, radius, 3)
      .clamp_(0.0, 1.0);  // the weights sum to 1 only up to rounding
}

// ---- Each op's random choices, drawn for the whole batch -----------------
//
// An op draws its random numbers for every image of the batch and turns
// them into per-image parameters before it touches an image; Rows() keeps
// the parameters of contiguous rows, so that those rows can be augmented
// alone. The parameters are computed for the whole batch even then:
// transcendental functions (log, exp) may round differently in a kernel's
// vectorised and scalar paths, and which one an element takes depends on
// its position in the tensor.

// What the draws need to know of the batch.
struct BatchShape {
  int64_t batch = 0;
  int64_t channels = 0;
  int64_t height = 0;
  int64_t width = 0;
  torch::TensorOptions options;  // the images' dtype and device
};

// The shape of a batch of `batch` images like those of `images`.
BatchShape ShapeOf(const torch::Tensor& images, int64_t batch) {
  return {batch, images.size(1), images.size(2), images.size(3),
          images.options()};
}

void CheckCropConfig(const AugmentConfig& config) {
  const double min_scale = config.crop_scale_min;
  const double max_scale = config.crop_scale_max;
  TORCH_CHECK(0 < min_scale && min_scale <= max_scale && max_scale <= 1,
              "RandomResizedCrop needs 0 < crop_scale_min <= crop_scale_max "
              "<= 1, got ",
              min_scale, " and ", max_scale);
}

void CheckJitterConfig(const AugmentConfig& config) {
  TORCH_CHECK(config.hue >= 0 && config.hue <= 0.5,
              "RandomColorJitter needs 0 <= hue <= 0.5, got ", config.hue);
}

struct CropChoices {
  torch::Tensor source_x;  // [B, W] float64: where each output column samples
  torch::Tensor source_y;  // [B, H] float64: where each output row samples

  CropChoices Rows(int64_t first, int64_t count) const {
    return {source_x.narrow(0, first, count), source_y.narrow(0, first, count)};
  }
};

CropChoices DrawCrop(const BatchShape& shape, const AugmentConfig& config) {
  const torch::Tensor u = torch::rand({5, shape.batch}, shape.options);
  // Crop width and height as fractions of the image side. For an area
  // fraction a the crop fits (w, h <= 1) iff the ratio is in [a, 1 / a].
  const torch::Tensor area =
      Between(u[0], config.crop_scale_min, config.crop_scale_max);
  const torch::Tensor log_area = torch::log(area);
  const torch::Tensor low = log_area.clamp_min(std::log(kMinRatio));
  const torch::Tensor high = (-log_area).clamp_max(std::log(kMaxRatio));
  const torch::Tensor ratio = torch::exp(low + u[1] * (high - low));
  const torch::Tensor w = torch::sqrt(area * ratio).clamp_max(1.0);
  const torch::Tensor h = torch::sqrt(area / ratio).clamp_max(1.0);
  // In normalised coordinates, which span [-1, 1], a fraction w of the side
  // is a scale of w and the centre may move by up to 1 - w.
  const torch::Tensor cx = (u[2] * 2 - 1) * (1 - w);
  const torch::Tensor cy = (u[3] * 2 - 1) * (1 - h);
  const torch::Tensor flip =
      1 - 2 * (u[4] < config.flip_prob).to(w.scalar_type());
  // A flip negates the x scale.
  return {SourceCoordinates(cx, w * flip, shape.width),
          SourceCoordinates(cy, h, shape.height)};
}

// Axis-aligned, so the bilinear resampling is separable: columns, then
// rows, each image at its own coordinates.
torch::Tensor ApplyCrop(const torch::Tensor& images, const CropChoices& crop) {
  return ResampleAlong(ResampleAlong(images, crop.source_x, 3), crop.source_y,
                       2);
}

struct JitterChoices {
  std::array<double, kNumJitterOps> strength{};  // 0: the adjustment is off
  torch::Tensor apply;  // [B] bool: whether the image is jittered
  torch::Tensor order;  // [B, 4] int64: the adjustment of each step
  std::array<torch::Tensor, kNumJitterOps> factor;  // [B] each

  JitterChoices Rows(int64_t first, int64_t count) const {
    JitterChoices rows = *this;
    rows.apply = apply.narrow(0, first, count);
    rows.order = order.narrow(0, first, count);
    for (torch::Tensor& f : rows.factor) f = f.narrow(0, first, count);
    return rows;
  }
};

JitterChoices DrawJitter(const BatchShape& shape, const AugmentConfig& config) {
  const torch::Tensor u =
      torch::rand({1 + kNumJitterOps, shape.batch}, shape.options);
  JitterChoices jitter;
  // A uniformly random permutation of the four adjustments per image.
  jitter.order = torch::rand({shape.batch, kNumJitterOps}, shape.options)
                     .argsort(/*dim=*/1, /*descending=*/false);
  const bool rgb = shape.channels == 3;
  jitter.strength = {config.brightness, config.contrast,
                     rgb ? config.saturation : 0.0, rgb ? config.hue : 0.0};
  for (int op = 0; op < kNumJitterOps; ++op) {
    const double s = jitter.strength[op];
    jitter.factor[op] = op == kHue
                            ? Between(u[1 + op], -s, s)
                            : Between(u[1 + op], std::max(0.0, 1 - s), 1 + s);
  }
  jitter.apply = u[0] < config.jitter_prob;
  return jitter;
}

torch::Tensor ApplyJitter(const torch::Tensor& images,
                          const JitterChoices& jitter) {
  const auto& strength = jitter.strength;
  const bool any_op = std::any_of(strength.begin(), strength.end(),
                                  [](double s) { return s > 0; });
  if (!any_op) return images;
  return ReplaceRows(
      images, Selected(jitter.apply),
      [&](const torch::Tensor& selected, const torch::Tensor& rows) {
        // At step `slot` each image applies the adjustment its permutation
        // puts there: gathering the images that share one keeps every
        // image's work to one pass per adjustment.
        torch::Tensor x = selected.clone();  // updated in place below
        const torch::Tensor x_order = jitter.order.index_select(0, rows);
        std::array<torch::Tensor, kNumJitterOps> x_factor;
        for (int op = 0; op < kNumJitterOps; ++op) {
          x_factor[op] = jitter.factor[op].index_select(0, rows);
        }
        for (int slot = 0; slot < kNumJitterOps; ++slot) {
          const torch::Tensor op_at_slot = x_order.select(1, slot);
          for (int op = 0; op < kNumJitterOps; ++op) {
            if (strength[op] <= 0) continue;
            const torch::Tensor op_rows = Selected(op_at_slot == op);
            if (op_rows.numel() == 0) continue;
            x.index_copy_(0, op_rows,
                          ApplyJitterOp(op, x.index_select(0, op_rows),
                                        x_factor[op].index_select(0, op_rows)));
          }
        }
        return x;
      });
}

// A coin per image: [B] bool, true with probability `probability`.
torch::Tensor DrawCoins(const BatchShape& shape, double probability) {
  return torch::rand({shape.batch}, shape.options) < probability;
}

torch::Tensor ApplyGrayscale(const torch::Tensor& images,
                             const torch::Tensor& apply) {
  if (images.size(1) == 1) return images;
  return ReplaceRows(images, Selected(apply),
                     [](const torch::Tensor& x, const torch::Tensor&) {
                       return Luma(x).repeat({1, 3, 1, 1});
                     });
}

torch::Tensor ApplySolarize(const torch::Tensor& images,
                            const torch::Tensor& apply) {
  // min(x, 1 - x) is x below the threshold of 0.5 and 1 - x from it on.
  return ReplaceRows(images, Selected(apply),
                     [](const torch::Tensor& x, const torch::Tensor&) {
                       return torch::minimum(x, 1.0 - x);
                     });
}

struct BlurChoices {
  torch::Tensor apply;  // [B] bool: whether the image is blurred
  // [B, 2 radius + 1]: each blurred image's kernel (zeros for the others).
  // The largest sigma of the blurred images of the whole batch sets the
  // radius, which every image's normalisation depends on.
  torch::Tensor weights;
  int64_t radius = 0;

  BlurChoices Rows(int64_t first, int64_t count) const {
    return {apply.narrow(0, first, count), weights.narrow(0, first, count),
            radius};
  }
};

BlurChoices DrawBlur(const BatchShape& shape, double probability) {
  const torch::Tensor u = torch::rand({2, shape.batch}, shape.options);
  const double side_scale =
      static_cast<double>(std::max(shape.height, shape.width)) /
      kBlurReferenceSide;
  const torch::Tensor sigma =
      Between(u[1], kMinBlurSigma * side_scale, kMaxBlurSigma * side_scale);
  BlurChoices blur;
  blur.apply = u[0] < probability;
  const torch::Tensor rows = Selected(blur.apply);
  if (rows.numel() == 0) {
    blur.weights = torch::zeros({shape.batch, 1}, shape.options);
    return blur;
  }
  const torch::Tensor blurred_sigma = sigma.index_select(0, rows);
  // Reflecting needs the radius below each side.
  blur.radius = std::min<int64_t>(
      static_cast<int64_t>(std::ceil(3 * blurred_sigma.max().item<double>())),
      std::min(shape.height, shape.width) - 1);
  blur.weights =
      torch::zeros({shape.batch, 2 * blur.radius + 1}, shape.options)
          .index_copy_(0, rows, GaussianWeights(blurred_sigma, blur.radius));
  return blur;
}

torch::Tensor ApplyBlur(const torch::Tensor& images, const BlurChoices& blur) {
  return ReplaceRows(images, Selected(blur.apply),
                     [&](const torch::Tensor& x, const torch::Tensor& rows) {
                       if (blur.radius == 0) return x.clone();
                       return BlurEach(x, blur.weights.index_select(0, rows),
                                       blur.radius);
                     });
}

// Every random choice of one view, in the order AugmentView applies them.
struct ViewChoices {
  CropChoices crop;
  JitterChoices jitter;
  torch::Tensor grayscale;  // [B] bool
  BlurChoices blur;
  torch::Tensor solarize;  // [B] bool

  ViewChoices Rows(int64_t first, int64_t count) const {
    return {crop.Rows(first, count), jitter.Rows(first, count),
            grayscale.narrow(0, first, count), blur.Rows(first, count),
            solarize.narrow(0, first, count)};
  }
};

ViewChoices DrawView(const BatchShape& shape, const AugmentConfig& config,
                     int view) {
  // One statement per op: the generator's draws come in this order.
  ViewChoices choices;
  choices.crop = DrawCrop(shape, config);
  choices.jitter = DrawJitter(shape, config);
  choices.grayscale = DrawCoins(shape, config.grayscale_prob);
  choices.blur = DrawBlur(
      shape, view == 1 ? config.blur_prob_view1 : config.blur_prob_view2);
  choices.solarize = DrawCoins(shape, view == 1 ? config.solarize_prob_view1
                                                : config.solarize_prob_view2);
  return choices;
}

}  // namespace

torch::Tensor RandomResizedCrop(const torch::Tensor& images,
                                const AugmentConfig& config) {
  CheckImages(images);
  CheckCropConfig(config);
  return ApplyCrop(images, DrawCrop(ShapeOf(images, images.size(0)), config));
}

torch::Tensor RandomColorJitter(const torch::Tensor& images,
                                const AugmentConfig& config) {
  CheckImages(images);
  CheckJitterConfig(config);
  return ApplyJitter(images,
                     DrawJitter(ShapeOf(images, images.size(0)), config));
}

torch::Tensor RandomGrayscale(const torch::Tensor& images, double probability) {
  CheckImages(images);
  return ApplyGrayscale(
      images, DrawCoins(ShapeOf(images, images.size(0)), probability));
}

torch::Tensor RandomGaussianBlur(const torch::Tensor& images,
                                 double probability) {
  CheckImages(images);
  return ApplyBlur(images,
                   DrawBlur(ShapeOf(images, images.size(0)), probability));
}

torch::Tensor RandomSolarize(const torch::Tensor& images, double probability) {
  CheckImages(images);
  return ApplySolarize(images,
                       DrawCoins(ShapeOf(images, images.size(0)), probability));
}

torch::Tensor AugmentView(const torch::Tensor& images,
                          const AugmentConfig& config, int view) {
  return AugmentViewRows(images, {0, images.dim() > 0 ? images.size(0) : 0},
                         config, view);
}

torch::Tensor AugmentViewRows(const torch::Tensor& images,
                              const BatchRows& rows,
                              const AugmentConfig& config, int view) {
  TORCH_CHECK(view == 1 || view == 2, "AugmentView: view is 1 or 2, got ",
              view);
  CheckImages(images);
  CheckCropConfig(config);
  CheckJitterConfig(config);
  const int64_t count = images.size(0);
  TORCH_CHECK(rows.first >= 0 && rows.first + count <= rows.batch_size,
              "AugmentViewRows: rows ", rows.first, " to ", rows.first + count,
              " are not rows of a batch of ", rows.batch_size);
  const ViewChoices choices =
      DrawView(ShapeOf(images, rows.batch_size), config, view)
          .Rows(rows.first, count);
  torch::Tensor x = ApplyCrop(images, choices.crop);
  x = ApplyJitter(x, choices.jitter);
  x = ApplyGrayscale(x, choices.grayscale);
  x = ApplyBlur(x, choices.blur);
  return ApplySolarize(x, choices.solarize);
}

}  // namespace sslsweep
