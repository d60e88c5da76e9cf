#include "worker/trainer/resnet.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace sslsweep {
namespace {

constexpr std::array<int64_t, 4> kBaseChannels = {64, 128, 256, 512};
constexpr std::array<int64_t, 4> kStageStrides = {1, 2, 2, 2};

torch::nn::Conv2d Conv(int64_t in, int64_t out, int64_t kernel,
                       int64_t stride) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel)
                               .stride(stride)
                               .padding(kernel / 2)
                               .bias(false));
}

}  // namespace

ResNetBasicBlockImpl::ResNetBasicBlockImpl(int64_t in_channels,
                                           int64_t out_channels, int64_t stride)
    : conv1_(
          register_module("conv1", Conv(in_channels, out_channels, 3, stride))),
      bn1_(register_module("bn1", GroupBatchNorm(out_channels))),
      conv2_(register_module("conv2", Conv(out_channels, out_channels, 3, 1))),
      bn2_(register_module("bn2", GroupBatchNorm(out_channels))) {
  if (stride != 1 || in_channels != out_channels) {
    downsample_ = register_module(
        "downsample",
        torch::nn::Sequential(Conv(in_channels, out_channels, 1, stride),
                              GroupBatchNorm(out_channels)));
  }
}

torch::Tensor ResNetBasicBlockImpl::forward(const torch::Tensor& x) {
  // In place where autograd allows it, as torchvision does: neither
  // BatchNorm's nor the addition's backward needs the tensor overwritten.
  torch::Tensor out = bn1_->forward(conv1_->forward(x)).relu_();
  out = bn2_->forward(conv2_->forward(out));
  out += downsample_ ? downsample_->forward(x) : x;
  return out.relu_();
}

ResNet::ResNet(const ResNetOptions& options) {
  TORCH_CHECK(options.in_channels >= 1, "ResNet needs in_channels >= 1");
  TORCH_CHECK(
      std::isfinite(options.width_multiplier) && options.width_multiplier > 0,
      "ResNet needs width_multiplier > 0, got ", options.width_multiplier);
  auto channels = [&](int64_t base) {
    return std::max<int64_t>(
        1, std::llround(static_cast<double>(base) * options.width_multiplier));
  };
  int64_t in = channels(kBaseChannels[0]);
  conv1_ = register_module("conv1", Conv(options.in_channels, in, 3, 1));
  bn1_ = register_module("bn1", GroupBatchNorm(in));
  for (size_t stage = 0; stage < options.stages.size(); ++stage) {
    TORCH_CHECK(options.stages[stage] >= 1,
                "ResNet needs at least one block per stage");
    const int64_t out = channels(kBaseChannels[stage]);
    torch::nn::Sequential layer;
    for (int64_t block = 0; block < options.stages[stage]; ++block) {
      layer->push_back(
          ResNetBasicBlock(in, out, block == 0 ? kStageStrides[stage] : 1));
      in = out;
    }
    layers_.push_back(register_module(absl::StrCat("layer", stage + 1), layer));
  }
  embedding_dim_ = in;

  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<torch::nn::Conv2d>()) {
      torch::nn::init::kaiming_normal_(conv->weight, /*a=*/0, torch::kFanOut,
                                       torch::kReLU);
    } else if (auto* bn = module->as<GroupBatchNormImpl>()) {
      torch::nn::init::ones_(bn->weight);
      torch::nn::init::zeros_(bn->bias);
    }
  }
}

torch::Tensor ResNet::Stem(const torch::Tensor& images) {
  return bn1_->forward(conv1_->forward(images)).relu_();
}

std::vector<std::string> ResNet::tap_names() const {
  return {"stem", "layer1", "layer2", "layer3", "layer4", "embedding"};
}

torch::OrderedDict<std::string, torch::Tensor> ResNet::ForwardTaps(
    const torch::Tensor& images) {
  torch::OrderedDict<std::string, torch::Tensor> taps;
  torch::Tensor x = Stem(images);
  taps.insert("stem", x);
  for (size_t i = 0; i < layers_.size(); ++i) {
    x = layers_[i]->forward(x);
    taps.insert(absl::StrCat("layer", i + 1), x);
  }
  taps.insert("embedding", x.mean({2, 3}));
  return taps;
}

torch::Tensor ResNet::forward(const torch::Tensor& images) {
  torch::Tensor x = Stem(images);
  for (auto& layer : layers_) x = layer->forward(x);
  return x.mean({2, 3});
}

}  // namespace sslsweep
