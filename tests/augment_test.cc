// Tests of the augmentations (worker/trainer/augment): shapes and range,
// seeding, rows of a batch augmented alone, each op's probability 0 and 1,
// the exact effects that can be checked (grayscale, solarize, flip, blur of a
// constant, what each colour adjustment preserves), and 1-channel images. A
// disabled test times a batch
// (--gtest_also_run_disabled_tests --gtest_filter='*Benchmark*').

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "gtest/gtest.h"
#include "worker/trainer/augment.h"
#include "worker/trial_config.h"

namespace sslsweep {
namespace {

// Every random choice off: each op is the identity.
AugmentConfig AllOff() {
  AugmentConfig config;
  config.crop_scale_min = config.crop_scale_max = 1.0;
  config.flip_prob = 0.0;
  config.jitter_prob = 0.0;
  config.grayscale_prob = 0.0;
  config.blur_prob_view1 = config.blur_prob_view2 = 0.0;
  config.solarize_prob_view1 = config.solarize_prob_view2 = 0.0;
  return config;
}

// Only the given jitter strengths, always applied.
AugmentConfig JitterOnly(double brightness, double contrast, double saturation,
                         double hue) {
  AugmentConfig config = AllOff();
  config.jitter_prob = 1.0;
  config.brightness = brightness;
  config.contrast = contrast;
  config.saturation = saturation;
  config.hue = hue;
  return config;
}

torch::Tensor Images(int64_t channels, int64_t batch = 16, int64_t side = 32) {
  torch::manual_seed(11);
  return torch::rand({batch, channels, side, side});
}

using Op = std::function<torch::Tensor(const torch::Tensor&)>;

struct NamedOp {
  std::string name;
  Op op;
};

// Each op at probability 1 (and the full views), for the generic checks.
std::vector<NamedOp> EveryOp() {
  const AugmentConfig defaults;
  return {
      {"view1",
       [=](const torch::Tensor& x) { return AugmentView(x, defaults, 1); }},
      {"view2",
       [=](const torch::Tensor& x) { return AugmentView(x, defaults, 2); }},
      {"crop",
       [=](const torch::Tensor& x) { return RandomResizedCrop(x, defaults); }},
      {"jitter",
       [](const torch::Tensor& x) {
         return RandomColorJitter(x, JitterOnly(0.8, 0.8, 0.8, 0.2));
       }},
      {"grayscale",
       [](const torch::Tensor& x) { return RandomGrayscale(x, 1.0); }},
      {"blur",
       [](const torch::Tensor& x) { return RandomGaussianBlur(x, 1.0); }},
      {"solarize",
       [](const torch::Tensor& x) { return RandomSolarize(x, 1.0); }},
  };
}

TEST(AugmentTest, EveryOpKeepsShapeAndRangeAndFollowsTheSeed) {
  for (int64_t channels : {1, 3}) {
    const torch::Tensor images = Images(channels);
    const torch::Tensor before = images.clone();
    for (const NamedOp& named : EveryOp()) {
      SCOPED_TRACE(named.name + " channels " + std::to_string(channels));
      torch::manual_seed(1);
      const torch::Tensor a = named.op(images);
      torch::manual_seed(1);
      const torch::Tensor b = named.op(images);
      EXPECT_EQ(a.sizes(), images.sizes());
      EXPECT_EQ(a.scalar_type(), torch::kFloat32);
      EXPECT_GE(a.min().item<float>(), 0.0f);
      EXPECT_LE(a.max().item<float>(), 1.0f);
      EXPECT_TRUE(torch::equal(a, b));
      EXPECT_TRUE(torch::equal(images, before)) << "modified its input";
      const bool identity_on_gray = named.name == "grayscale";
      if (channels == 3 || !identity_on_gray) {
        EXPECT_FALSE(torch::allclose(a, images)) << "changed nothing";
      }
    }
    // Ops whose outcome is random per image differ with another seed.
    for (const NamedOp& named : EveryOp()) {
      if (named.name == "grayscale" || named.name == "solarize") continue;
      SCOPED_TRACE(named.name + " channels " + std::to_string(channels));
      torch::manual_seed(1);
      const torch::Tensor a = named.op(images);
      torch::manual_seed(2);
      EXPECT_FALSE(torch::equal(a, named.op(images)));
    }
  }
}

TEST(AugmentTest, EachImageGetsItsOwnView) {
  const torch::Tensor twins = Images(3, 1).expand({2, 3, 32, 32}).contiguous();
  torch::manual_seed(3);
  const torch::Tensor views = AugmentView(twins, AugmentConfig(), 1);
  EXPECT_FALSE(torch::allclose(views[0], views[1]));
}

// A data-parallel rank augments its own rows of the global batch: they must
// be exactly the rows that augmenting the whole batch gives, and the
// generator must end where it would, whatever rows and batch sizes.
TEST(AugmentTest, AugmentingSomeRowsGivesThoseRowsOfTheWholeBatch) {
  AugmentConfig every_op;  // each op on some images of either view
  every_op.solarize_prob_view1 = 0.3;
  for (int64_t channels : {1, 3}) {
    for (int64_t batch : {1, 7, 64}) {
      const torch::Tensor images = Images(channels, batch, 24);
      for (int view : {1, 2}) {
        torch::manual_seed(12);
        const torch::Tensor whole = AugmentView(images, every_op, view);
        const torch::Tensor after_whole = torch::rand({4});
        // Halves, an odd split, single rows at both ends, and the whole batch.
        const std::vector<std::pair<int64_t, int64_t>> ranges = {
            {0, batch / 2},
            {batch / 2, batch},
            {0, 1},
            {batch - 1, batch},
            {batch / 3, batch - batch / 5},
            {0, batch}};
        for (const auto& [begin, end] : ranges) {
          if (begin >= end) continue;
          SCOPED_TRACE("channels " + std::to_string(channels) + " batch " +
                       std::to_string(batch) + " view " + std::to_string(view) +
                       " rows " + std::to_string(begin) + ".." +
                       std::to_string(end));
          torch::manual_seed(12);
          const torch::Tensor part = AugmentViewRows(
              images.slice(0, begin, end), {begin, batch}, every_op, view);
          EXPECT_TRUE(torch::equal(torch::rand({4}), after_whole))
              << "the generator advanced otherwise";
          ASSERT_EQ(part.sizes(), images.slice(0, begin, end).sizes());
          EXPECT_TRUE(torch::equal(part, whole.slice(0, begin, end)))
              << "max difference "
              << (part - whole.slice(0, begin, end)).abs().max().item<float>();
        }
      }
    }
  }
}

TEST(AugmentTest, RowsMustLieInTheBatch) {
  const torch::Tensor images = Images(3, 4);
  EXPECT_THROW(AugmentViewRows(images, {-1, 8}, AugmentConfig(), 1),
               c10::Error);
  EXPECT_THROW(AugmentViewRows(images, {5, 8}, AugmentConfig(), 1), c10::Error);
  EXPECT_THROW(AugmentViewRows(images, {0, 3}, AugmentConfig(), 1), c10::Error);
}

TEST(AugmentTest, ProbabilityZeroIsTheIdentity) {
  const AugmentConfig off = AllOff();
  for (int64_t channels : {1, 3}) {
    SCOPED_TRACE(channels);
    const torch::Tensor images = Images(channels);
    // Resampling at the pixel centres reproduces them up to rounding.
    EXPECT_TRUE(
        torch::allclose(RandomResizedCrop(images, off), images, 0, 1e-5));
    EXPECT_TRUE(torch::allclose(AugmentView(images, off, 1), images, 0, 1e-5));
    EXPECT_TRUE(torch::allclose(AugmentView(images, off, 2), images, 0, 1e-5));
    AugmentConfig jitter_off = JitterOnly(0.8, 0.8, 0.8, 0.2);
    jitter_off.jitter_prob = 0.0;
    EXPECT_TRUE(torch::equal(RandomColorJitter(images, jitter_off), images));
    EXPECT_TRUE(torch::equal(RandomColorJitter(images, JitterOnly(0, 0, 0, 0)),
                             images));
    EXPECT_TRUE(torch::equal(RandomGrayscale(images, 0.0), images));
    EXPECT_TRUE(torch::equal(RandomGaussianBlur(images, 0.0), images));
    EXPECT_TRUE(torch::equal(RandomSolarize(images, 0.0), images));
  }
}

TEST(AugmentTest, FlipWithProbabilityOneMirrorsEveryImage) {
  AugmentConfig flip = AllOff();
  flip.flip_prob = 1.0;
  const torch::Tensor images = Images(3);
  EXPECT_TRUE(torch::allclose(RandomResizedCrop(images, flip), images.flip({3}),
                              0, 1e-5));
}

TEST(AugmentTest, CropsZoomIn) {
  AugmentConfig config = AllOff();
  config.crop_scale_min = config.crop_scale_max = 0.25;
  // A horizontal ramp: a crop of a quarter of the area at a ratio r in
  // [3/4, 4/3] is sqrt(r) / 2 of the width, so it spans 0.43 to 0.58 of it.
  const torch::Tensor ramp =
      torch::linspace(0, 1, 32).view({1, 1, 1, 32}).expand({8, 1, 32, 32});
  torch::manual_seed(4);
  const torch::Tensor views = RandomResizedCrop(ramp, config);
  const torch::Tensor span =
      views.select(3, 31).mean({1, 2}) - views.select(3, 0).mean({1, 2});
  EXPECT_LT(span.max().item<float>(), 0.62f);  // at most sqrt(0.25 * 4/3)
  EXPECT_GT(span.min().item<float>(), 0.40f);  // at least sqrt(0.25 * 3/4)
}

TEST(AugmentTest, GrayscaleReplicatesTheLuma) {
  const torch::Tensor images = Images(3);
  const torch::Tensor gray = RandomGrayscale(images, 1.0);
  EXPECT_TRUE(torch::equal(gray.select(1, 0), gray.select(1, 1)));
  EXPECT_TRUE(torch::equal(gray.select(1, 0), gray.select(1, 2)));
  const torch::Tensor luma = images.select(1, 0) * 0.299 +
                             images.select(1, 1) * 0.587 +
                             images.select(1, 2) * 0.114;
  EXPECT_TRUE(torch::allclose(gray.select(1, 0), luma, 0, 1e-6));
  const torch::Tensor one_channel = Images(1);
  EXPECT_TRUE(torch::equal(RandomGrayscale(one_channel, 1.0), one_channel));
}

TEST(AugmentTest, SolarizeInvertsFromOneHalf) {
  const torch::Tensor images =
      torch::tensor({0.0f, 0.25f, 0.49f, 0.5f, 0.75f, 1.0f}).view({1, 1, 2, 3});
  const torch::Tensor expected =
      torch::tensor({0.0f, 0.25f, 0.49f, 0.5f, 0.25f, 0.0f}).view({1, 1, 2, 3});
  EXPECT_TRUE(torch::equal(RandomSolarize(images, 1.0), expected));
}

TEST(AugmentTest, BlurKeepsAConstantImageAndSmoothsLargeOnes) {
  const torch::Tensor constant = torch::full({4, 3, 32, 32}, 0.3f);
  const torch::Tensor blurred = RandomGaussianBlur(constant, 1.0);
  EXPECT_TRUE(torch::allclose(blurred, constant, 0, 1e-6));
  EXPECT_NEAR(blurred.mean().item<float>(), 0.3f, 1e-6);
  // At 224 pixels sigma is in [0.1, 2]: a checkerboard's contrast drops
  // (most of all where sigma is large), the mean stays.
  const torch::Tensor board =
      (torch::arange(224).view({224, 1}) + torch::arange(224).view({1, 224}))
          .remainder(2)
          .to(torch::kFloat32)
          .expand({4, 1, 224, 224})
          .contiguous();
  torch::manual_seed(5);
  const torch::Tensor smooth = RandomGaussianBlur(board, 1.0);
  EXPECT_NEAR(smooth.mean().item<float>(), 0.5f, 1e-3);
  EXPECT_LT((smooth - 0.5).abs().amax({1, 2, 3}).min().item<float>(), 0.5f);
}

TEST(AugmentTest, EachColourAdjustmentDoesItsJob) {
  // Values in [0.4, 0.6]: no adjustment below reaches a clamp.
  torch::manual_seed(6);
  const torch::Tensor images = torch::rand({16, 3, 8, 8}) * 0.2 + 0.4;
  auto luma = [](const torch::Tensor& x) {
    return x.select(1, 0) * 0.299 + x.select(1, 1) * 0.587 +
           x.select(1, 2) * 0.114;
  };
  {
    SCOPED_TRACE("brightness scales each image");
    const torch::Tensor out =
        RandomColorJitter(images, JitterOnly(0.4, 0, 0, 0));
    const torch::Tensor ratio = out / images;
    EXPECT_TRUE(torch::allclose(
        ratio, ratio.amin({1, 2, 3}, true).expand_as(ratio), 0, 1e-5));
    EXPECT_FALSE(torch::allclose(out, images));
  }
  {
    SCOPED_TRACE("contrast keeps the mean luma");
    const torch::Tensor out =
        RandomColorJitter(images, JitterOnly(0, 0.4, 0, 0));
    EXPECT_TRUE(torch::allclose(luma(out).mean({1, 2}),
                                luma(images).mean({1, 2}), 0, 1e-5));
    EXPECT_FALSE(torch::allclose(out, images));
  }
  {
    SCOPED_TRACE("saturation keeps each pixel's luma");
    const torch::Tensor out =
        RandomColorJitter(images, JitterOnly(0, 0, 0.4, 0));
    EXPECT_TRUE(torch::allclose(luma(out), luma(images), 0, 1e-5));
    EXPECT_FALSE(torch::allclose(out, images));
  }
  {
    SCOPED_TRACE("hue keeps each pixel's max and min (HSV's V and S)");
    const torch::Tensor out =
        RandomColorJitter(images, JitterOnly(0, 0, 0, 0.5));
    EXPECT_TRUE(torch::allclose(out.amax(1), images.amax(1), 0, 1e-5));
    EXPECT_TRUE(torch::allclose(out.amin(1), images.amin(1), 0, 1e-5));
    EXPECT_FALSE(torch::allclose(out, images));
  }
}

TEST(AugmentTest, HueShiftOfAThirdTurnsRedToGreen) {
  // With hue strength 0.5 the shift is uniform in [-0.5, 0.5]; a pure red
  // pixel moves to the hue of its shift, keeping full saturation and value,
  // so the output is one of the fully saturated colours: max 1, min 0.
  const torch::Tensor red = torch::tensor({1.0f, 0.0f, 0.0f})
                                .view({1, 3, 1, 1})
                                .expand({64, 3, 1, 1});
  torch::manual_seed(7);
  const torch::Tensor out =
      RandomColorJitter(red.contiguous(), JitterOnly(0, 0, 0, 0.5));
  EXPECT_TRUE(torch::allclose(out.amax(1), torch::ones({64, 1, 1}), 0, 1e-5));
  EXPECT_TRUE(torch::allclose(out.amin(1), torch::zeros({64, 1, 1}), 0, 1e-5));
  // Some image went green-most and some blue-most.
  EXPECT_TRUE((out.select(1, 1) > 0.99).any().item<bool>());
  EXPECT_TRUE((out.select(1, 2) > 0.99).any().item<bool>());
}

// torchvision's RGB <-> HSV (colorsys's formulas), one pixel at a time.
struct Hsv {
  double h, s, v;
};

Hsv ToHsv(double r, double g, double b) {
  const double max = std::max({r, g, b});
  const double min = std::min({r, g, b});
  if (max == min) return {0, 0, max};
  const double c = max - min;
  double h;
  if (max == r) {
    h = (g - b) / c;
  } else if (max == g) {
    h = 2 + (b - r) / c;
  } else {
    h = 4 + (r - g) / c;
  }
  return {std::fmod(h / 6 + 1, 1.0), c / max, max};
}

std::vector<double> ToRgb(const Hsv& hsv) {
  const double sector = std::floor(hsv.h * 6);
  const double f = hsv.h * 6 - sector;
  const double p = hsv.v * (1 - hsv.s);
  const double q = hsv.v * (1 - hsv.s * f);
  const double t = hsv.v * (1 - hsv.s * (1 - f));
  const double v = hsv.v;
  switch (static_cast<int>(sector) % 6) {
    case 0:
      return {v, t, p};
    case 1:
      return {q, v, p};
    case 2:
      return {p, v, t};
    case 3:
      return {p, q, v};
    case 4:
      return {t, p, v};
    default:
      return {v, p, q};
  }
}

TEST(AugmentTest, HueMatchesTorchvisionsHsvRoundTrip) {
  // Each image: a pure red pixel, whose output hue is the image's shift,
  // then a colour that the same shift must move as torchvision would.
  const int64_t batch = 32;
  torch::manual_seed(9);
  const torch::Tensor colours = torch::rand({batch, 3});
  torch::Tensor images = torch::zeros({batch, 3, 1, 2});
  images.select(3, 0).select(2, 0).select(1, 0).fill_(1.0);
  images.select(3, 1).select(2, 0).copy_(colours);
  const torch::Tensor out =
      RandomColorJitter(images, JitterOnly(0, 0, 0, 0.5)).to(torch::kFloat64);
  for (int64_t i = 0; i < batch; ++i) {
    SCOPED_TRACE(i);
    auto pixel = [&](const torch::Tensor& t, int64_t x) {
      return std::vector<double>{t[i][0][0][x].item<double>(),
                                 t[i][1][0][x].item<double>(),
                                 t[i][2][0][x].item<double>()};
    };
    const std::vector<double> red = pixel(out, 0);
    const double shift = ToHsv(red[0], red[1], red[2]).h;
    const std::vector<double> in = pixel(images.to(torch::kFloat64), 1);
    Hsv hsv = ToHsv(in[0], in[1], in[2]);
    hsv.h = std::fmod(hsv.h + shift, 1.0);
    const std::vector<double> expected = ToRgb(hsv);
    const std::vector<double> got = pixel(out, 1);
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(got[c], expected[c], 2e-5) << c;
  }
}

// The blur of a dot far from the borders is the separable, normalised
// Gaussian kernel of one sigma in [0.1, 2.0] (the image is 224 pixels).
TEST(AugmentTest, BlurOfADotIsANormalisedSeparableGaussian) {
  torch::Tensor dots = torch::zeros({8, 1, 224, 224});
  dots.select(3, 112).select(2, 112).fill_(1.0);
  torch::manual_seed(10);
  const torch::Tensor out =
      RandomGaussianBlur(dots, 1.0).to(torch::kFloat64).squeeze(1);
  std::vector<double> sigmas;
  for (int64_t i = 0; i < 8; ++i) {
    SCOPED_TRACE(i);
    const torch::Tensor k = out[i];
    EXPECT_NEAR(k.sum().item<double>(), 1.0, 1e-5);
    const double centre = k[112][112].item<double>();
    const double side = k[112][113].item<double>();
    EXPECT_NEAR(k[111][112].item<double>(), side, 1e-7);  // symmetric
    EXPECT_NEAR(k[113][113].item<double>() * centre, side * side, 1e-7);
    // w(1) / w(0) = exp(-1 / (2 sigma^2)); sigma >= 0.2 to be measurable.
    if (side < 1e-4) continue;
    const double sigma = std::sqrt(-1 / (2 * std::log(side / centre)));
    EXPECT_GE(sigma, 0.1);
    EXPECT_LE(sigma, 2.0 + 1e-6);
    const double two = k[112][114].item<double>();
    EXPECT_NEAR(two / centre, std::exp(-4 / (2 * sigma * sigma)), 1e-4);
    sigmas.push_back(sigma);
  }
  ASSERT_GE(sigmas.size(), 3u);
  EXPECT_NE(sigmas[0], sigmas[1]);  // each image its own sigma
}

TEST(AugmentTest, OneChannelImagesKeepOneChannel) {
  const torch::Tensor images = Images(1, 8, 28);
  // Saturation and hue do nothing to gray images.
  EXPECT_TRUE(torch::equal(
      RandomColorJitter(images, JitterOnly(0, 0, 0.8, 0.5)), images));
  torch::manual_seed(8);
  const torch::Tensor view = AugmentView(images, AugmentConfig(), 2);
  EXPECT_EQ(view.sizes(), images.sizes());
}

TEST(AugmentTest, RejectsBadArguments) {
  EXPECT_THROW(AugmentView(Images(3), AugmentConfig(), 3), c10::Error);
  EXPECT_THROW(AugmentView(torch::rand({2, 2, 8, 8}), AugmentConfig(), 1),
               c10::Error);
  EXPECT_THROW(RandomSolarize(torch::rand({2, 8, 8}), 1.0), c10::Error);
  AugmentConfig bad_crop;
  bad_crop.crop_scale_min = 0.0;
  EXPECT_THROW(RandomResizedCrop(Images(1), bad_crop), c10::Error);
}

// Milliseconds per batch of 256 for each op and the default recipe's views:
// the median and the fastest of 20 runs.
TEST(AugmentTest, DISABLED_Benchmark) {
  std::vector<NamedOp> ops = EveryOp();
  const std::vector<std::pair<std::string, AugmentConfig>> adjustments = {
      {"brightness", JitterOnly(0.4, 0, 0, 0)},
      {"contrast", JitterOnly(0, 0.4, 0, 0)},
      {"saturation", JitterOnly(0, 0, 0.4, 0)},
      {"hue", JitterOnly(0, 0, 0, 0.1)}};
  for (const auto& [name, config] : adjustments) {
    ops.push_back({name, [config = config](const torch::Tensor& x) {
                     return RandomColorJitter(x, config);
                   }});
  }
  for (int64_t channels : {1, 3}) {
    const int64_t side = channels == 1 ? 28 : 32;
    const torch::Tensor images = torch::rand({256, channels, side, side});
    for (const NamedOp& named : ops) {
      // As in training, a batch's views live until the next batch's exist.
      torch::Tensor view;
      for (int i = 0; i < 3; ++i) view = named.op(images);  // warm-up
      std::vector<double> ms;
      for (int i = 0; i < 20; ++i) {
        const auto start = std::chrono::steady_clock::now();
        view = named.op(images);
        ms.push_back(std::chrono::duration<double, std::milli>(
                         std::chrono::steady_clock::now() - start)
                         .count());
      }
      std::sort(ms.begin(), ms.end());
      std::printf(
          "%ldx%ldx%ld %-10s median %6.2f ms, min %6.2f ms (%d threads)\n",
          channels, side, side, named.name.c_str(), ms[ms.size() / 2], ms[0],
          torch::get_num_threads());
    }
  }
}

}  // namespace
}  // namespace sslsweep
