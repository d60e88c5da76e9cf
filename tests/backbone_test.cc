// Tests of the backbones (worker/trainer/backbone.h): tap names and shapes of
// the ConvNet, MLP and CIFAR ResNets, parameter counts against the
// architecture worked out by hand, forward() against ForwardTaps(), seeded
// initialisation, gradient flow, and MakeBackbone's names.

#include "worker/trainer/backbone.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/trial_config.h"

namespace sslsweep {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Shape = std::vector<int64_t>;

BackboneConfig Config(const std::string& name, int64_t depth, int64_t width,
                      double width_multiplier = 1.0) {
  BackboneConfig config;
  config.name = name;
  config.depth = depth;
  config.width = width;
  config.width_multiplier = width_multiplier;
  return config;
}

constexpr ImageShape kMnist{1, 28, 28};
constexpr ImageShape kCifar{3, 32, 32};

torch::Tensor Images(const ImageShape& shape, int64_t batch = 2) {
  return torch::rand({batch, shape.channels, shape.height, shape.width});
}

// One small instance of every backbone, for the properties they all share.
struct Case {
  std::string label;
  BackboneConfig config;
  ImageShape shape;
};

std::vector<Case> EveryBackbone() {
  return {{"convnet", Config("convnet", 3, 4), kMnist},
          {"mlp", Config("mlp", 3, 16), kMnist},
          {"resnet18", Config("resnet18", 1, 1, 0.125), kCifar},
          {"resnet34", Config("resnet34", 1, 1, 0.0625), kMnist}};
}

std::vector<std::string> Keys(
    const torch::OrderedDict<std::string, torch::Tensor>& taps) {
  std::vector<std::string> keys;
  for (const auto& item : taps) keys.push_back(item.key());
  return keys;
}

// ---- Tap names and shapes --------------------------------------------------

TEST(ConvNetTest, TapShapesForEachDepth) {
  const torch::Tensor images = Images(kMnist);
  const std::vector<int64_t> sides = {14, 7, 4, 2, 1};
  for (int64_t depth = 1; depth <= 5; ++depth) {
    SCOPED_TRACE(depth);
    auto net = MakeBackbone(Config("convnet", depth, 4), kMnist);
    const auto taps = net->ForwardTaps(images);
    ASSERT_EQ(taps.size(), static_cast<size_t>(depth + 1));
    for (int64_t i = 0; i < depth; ++i) {
      EXPECT_EQ(taps[i].key(), "stage" + std::to_string(i + 1));
      EXPECT_EQ(taps[i].value().sizes(),
                (Shape{2, 4 << i, sides[i], sides[i]}));
    }
    EXPECT_EQ(taps[depth].key(), "embedding");
    EXPECT_EQ(taps[depth].value().sizes(), (Shape{2, 4 << (depth - 1)}));
    EXPECT_EQ(net->embedding_dim(), 4 << (depth - 1));
    EXPECT_EQ(net->tap_names(), Keys(taps));
  }
}

TEST(MlpTest, TapShapesForEachDepth) {
  const torch::Tensor images = Images(kMnist, 3);
  for (int64_t depth = 1; depth <= 3; ++depth) {
    SCOPED_TRACE(depth);
    auto net = MakeBackbone(Config("mlp", depth, 16), kMnist);
    const auto taps = net->ForwardTaps(images);
    ASSERT_EQ(taps.size(), static_cast<size_t>(depth));
    for (int64_t i = 0; i + 1 < depth; ++i) {
      EXPECT_EQ(taps[i].key(), "layer" + std::to_string(i + 1));
      EXPECT_EQ(taps[i].value().sizes(), (Shape{3, 16}));
    }
    EXPECT_EQ(taps[depth - 1].key(), "embedding");
    EXPECT_EQ(taps[depth - 1].value().sizes(), (Shape{3, 16}));
    EXPECT_EQ(net->embedding_dim(), 16);
    EXPECT_EQ(net->tap_names(), Keys(taps));
  }
}

TEST(ResNetTest, TapShapesOnCifarAndFashionMnist) {
  // m = 0.125: channels 8, 16, 32, 64; strides 1, 2, 2, 2 after a stride-1
  // stem, so no max-pool shrinks the image.
  struct Expected {
    ImageShape shape;
    std::vector<int64_t> sides;  // stem, layer1..layer4
  };
  for (const Expected& e : {Expected{kCifar, {32, 32, 16, 8, 4}},
                            Expected{kMnist, {28, 28, 14, 7, 4}}}) {
    SCOPED_TRACE(e.shape.channels);
    auto net = MakeBackbone(Config("resnet18", 1, 1, 0.125), e.shape);
    const auto taps = net->ForwardTaps(Images(e.shape));
    EXPECT_THAT(Keys(taps), ElementsAre("stem", "layer1", "layer2", "layer3",
                                        "layer4", "embedding"));
    EXPECT_EQ(net->tap_names(), Keys(taps));
    const std::vector<int64_t> channels = {8, 8, 16, 32, 64};
    for (size_t i = 0; i < 5; ++i) {
      EXPECT_EQ(taps[i].value().sizes(),
                (Shape{2, channels[i], e.sides[i], e.sides[i]}))
          << taps[i].key();
    }
    EXPECT_EQ(taps[5].value().sizes(), (Shape{2, 64}));
    EXPECT_EQ(net->embedding_dim(), 64);
  }
}

// ---- Parameter counts ------------------------------------------------------

int64_t CountParameters(torch::nn::Module& module) {
  int64_t count = 0;
  for (const auto& p : module.parameters()) count += p.numel();
  return count;
}

// The CIFAR ResNet's parameters from its definition: 3x3 stem conv (no bias)
// and BN (2 per channel); per BasicBlock two 3x3 convs and two BNs, plus a
// 1x1 conv and BN where the shape changes; no fc.
int64_t ExpectedResNetParameters(int64_t in_channels,
                                 const std::vector<int64_t>& blocks,
                                 const std::vector<int64_t>& channels) {
  int64_t in = channels[0];
  int64_t count = 9 * in_channels * in + 2 * in;
  for (size_t stage = 0; stage < 4; ++stage) {
    const int64_t out = channels[stage];
    for (int64_t block = 0; block < blocks[stage]; ++block) {
      const bool downsample = (block == 0 && stage > 0) || in != out;
      count += 9 * in * out + 2 * out + 9 * out * out + 2 * out;
      if (downsample) count += in * out + 2 * out;
      in = out;
    }
  }
  return count;
}

TEST(ResNetTest, ParameterCountsMatchTheArchitecture) {
  const std::vector<int64_t> full = {64, 128, 256, 512};
  // torchvision's resnet18 has 11,689,512 parameters; without its fc
  // (512*1000 + 1000) and with a 3x3 instead of a 7x7 stem conv
  // (3*64*(49-9) fewer) that is 11,168,832.
  EXPECT_EQ(ExpectedResNetParameters(3, {2, 2, 2, 2}, full), 11168832);
  auto resnet18 = MakeBackbone(Config("resnet18", 1, 1, 1.0), kCifar);
  EXPECT_EQ(CountParameters(*resnet18), 11168832);
  EXPECT_EQ(resnet18->embedding_dim(), 512);

  // torchvision's resnet34: 21,797,672 - 513,000 - 7,680.
  EXPECT_EQ(ExpectedResNetParameters(3, {3, 4, 6, 3}, full), 21276992);
  auto resnet34 = MakeBackbone(Config("resnet34", 1, 1, 1.0), kCifar);
  EXPECT_EQ(CountParameters(*resnet34), 21276992);

  // Width multiplier and a one-channel input.
  auto half = MakeBackbone(Config("resnet34", 1, 1, 0.5), kMnist);
  EXPECT_EQ(CountParameters(*half),
            ExpectedResNetParameters(1, {3, 4, 6, 3}, {32, 64, 128, 256}));
}

TEST(ResNetTest, NamesAndInitialisationFollowTorchvision) {
  torch::manual_seed(3);
  auto net = MakeBackbone(Config("resnet18", 1, 1, 1.0), kCifar);
  const auto params = net->named_parameters();
  for (const char* name :
       {"conv1.weight", "bn1.weight", "bn1.bias", "layer1.0.conv1.weight",
        "layer1.1.bn2.bias", "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.weight", "layer4.1.conv2.weight"}) {
    EXPECT_NE(params.find(name), nullptr) << name;
  }
  EXPECT_EQ(params.find("layer1.0.downsample.0.weight"), nullptr);
  EXPECT_EQ(params.find("conv1.bias"), nullptr);
  // Kaiming normal, fan_out, ReLU: std sqrt(2 / (out_channels * 3 * 3)).
  const torch::Tensor w = params["layer3.1.conv1.weight"];
  EXPECT_NEAR(w.std().item<double>(), std::sqrt(2.0 / (256 * 9)), 2e-4);
  EXPECT_TRUE(torch::equal(params["layer3.1.bn1.weight"], torch::ones({256})));
  EXPECT_TRUE(torch::equal(params["layer3.1.bn1.bias"], torch::zeros({256})));
}

// ---- Properties every backbone shares --------------------------------------

TEST(BackboneTest, ForwardEqualsTheEmbeddingTap) {
  for (const Case& c : EveryBackbone()) {
    SCOPED_TRACE(c.label);
    auto net = MakeBackbone(c.config, c.shape);
    const torch::Tensor images = Images(c.shape, 4);
    for (bool training : {true, false}) {
      net->train(training);
      const torch::Tensor embedding = net->forward(images);
      const auto taps = net->ForwardTaps(images);
      EXPECT_EQ(taps.keys().back(), "embedding");
      EXPECT_EQ(embedding.sizes(), (Shape{4, net->embedding_dim()}));
      EXPECT_TRUE(torch::equal(embedding, taps["embedding"]));
    }
  }
}

TEST(BackboneTest, SameSeedSameInitialWeights) {
  for (const Case& c : EveryBackbone()) {
    SCOPED_TRACE(c.label);
    torch::manual_seed(11);
    auto a = MakeBackbone(c.config, c.shape);
    torch::manual_seed(11);
    auto b = MakeBackbone(c.config, c.shape);
    torch::manual_seed(12);
    auto other = MakeBackbone(c.config, c.shape);
    const auto pa = a->parameters();
    const auto pb = b->parameters();
    const auto po = other->parameters();
    ASSERT_EQ(pa.size(), pb.size());
    for (size_t i = 0; i < pa.size(); ++i) {
      EXPECT_TRUE(torch::equal(pa[i], pb[i])) << i;
    }
    EXPECT_FALSE(torch::equal(pa[0], po[0]));
  }
}

TEST(BackboneTest, GradientsReachTheFirstLayer) {
  for (const Case& c : EveryBackbone()) {
    SCOPED_TRACE(c.label);
    auto net = MakeBackbone(c.config, c.shape);
    const torch::Tensor embedding = net->forward(Images(c.shape, 4));
    (embedding * torch::randn_like(embedding)).sum().backward();
    const torch::Tensor first = net->parameters().front();
    ASSERT_TRUE(first.grad().defined());
    EXPECT_GT(first.grad().abs().sum().item<double>(), 0.0);
    for (const auto& p : net->named_parameters()) {
      EXPECT_TRUE(p.value().grad().defined()) << p.key();
    }
  }
}

TEST(BackboneTest, EveryTapCanCarryAGradient) {
  // A loss on intermediate taps too: no tap is overwritten in place after
  // autograd saved it.
  for (const Case& c : EveryBackbone()) {
    SCOPED_TRACE(c.label);
    auto net = MakeBackbone(c.config, c.shape);
    torch::Tensor loss = torch::zeros({});
    for (const auto& tap : net->ForwardTaps(Images(c.shape, 4))) {
      loss = loss + (tap.value() * torch::randn_like(tap.value())).sum();
    }
    ASSERT_NO_THROW(loss.backward());
    EXPECT_GT(net->parameters().front().grad().abs().sum().item<double>(), 0);
  }
}

// ---- MakeBackbone ----------------------------------------------------------

TEST(MakeBackboneTest, BuildsEveryNameAtTheSchemaLimits) {
  // The smallest and deepest settings the trial schema accepts.
  const std::vector<Case> cases = {
      {"convnet depth 5 width 1", Config("convnet", 5, 1), kMnist},
      {"convnet depth 5 on cifar", Config("convnet", 5, 2), kCifar},
      {"mlp depth 5 width 1", Config("mlp", 5, 1), kMnist},
      {"mlp on cifar", Config("mlp", 1, 3), kCifar},
      {"resnet18 one channel", Config("resnet18", 1, 1, 1e-3), kMnist},
      {"resnet34 tiny", Config("resnet34", 1, 1, 0.03), kCifar}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.label);
    auto net = MakeBackbone(c.config, c.shape);
    ASSERT_NE(net, nullptr);
    torch::NoGradGuard no_grad;
    net->eval();
    const torch::Tensor embedding = net->forward(Images(c.shape));
    EXPECT_EQ(embedding.sizes(), (Shape{2, net->embedding_dim()}));
    EXPECT_TRUE(torch::isfinite(embedding).all().item<bool>());
  }
  EXPECT_EQ(
      MakeBackbone(Config("resnet18", 1, 1, 1e-3), kMnist)->embedding_dim(), 1);
}

TEST(MakeBackboneTest, RejectsAnUnknownNameSayingWhatIsAccepted) {
  try {
    MakeBackbone(Config("vgg", 3, 4), kMnist);
    FAIL() << "no error";
  } catch (const c10::Error& e) {
    EXPECT_THAT(e.what_without_backtrace(),
                HasSubstr("backbone.name: 'vgg' is not one of: convnet, mlp, "
                          "resnet18, resnet34"));
  }
  EXPECT_THROW(MakeBackbone(Config("resnet18", 1, 1, 0.0), kCifar), c10::Error);
  EXPECT_THROW(MakeBackbone(Config("convnet", 0, 4), kMnist), c10::Error);
}

}  // namespace
}  // namespace sslsweep
