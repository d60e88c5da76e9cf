// ResNet: the CIFAR variant of ResNet-18/34 (He et al. 2016, BasicBlock), the
// usual backbone of self-supervised learning on small images.
//
// Stem: Conv3x3(stride 1, no bias) - BatchNorm - ReLU, with no max-pool (the
// ImageNet stem's 7x7 stride-2 convolution and max-pool would shrink a 32x32
// image to 8x8 before the first stage). Four stages of BasicBlocks follow,
// with round(64m), round(128m), round(256m), round(512m) channels (m the
// width multiplier, at least one channel each) and strides 1, 2, 2, 2; a block
// whose shape changes adds a Conv1x1(no bias) - BatchNorm shortcut. A global
// average pool of the last stage gives the embedding. ForwardTaps returns
// "stem", "layer1".."layer4" ([B, C, H, W]) and "embedding" ([B, D]), in that
// order. Parameter names follow torchvision's ResNet (conv1, bn1,
// layer1.0.conv1, layer1.0.downsample.0, ...), without its fc layer.
//
// Convolutions start Kaiming-normal (fan_out, ReLU) and BatchNorm at weight 1,
// bias 0, as torchvision initialises them.
//
// Thread contract: a module is not thread-safe; confine each instance to one
// thread (LibTorch parallelises inside each operation).

#ifndef SSLSWEEP_WORKER_TRAINER_RESNET_H_
#define SSLSWEEP_WORKER_TRAINER_RESNET_H_

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "worker/trainer/backbone.h"
#include "worker/trainer/group_batch_norm.h"

namespace sslsweep {

// BasicBlocks per stage.
using ResNetStages = std::array<int64_t, 4>;
inline constexpr ResNetStages kResNet18Stages = {2, 2, 2, 2};
inline constexpr ResNetStages kResNet34Stages = {3, 4, 6, 3};

struct ResNetOptions {
  int64_t in_channels = 3;
  ResNetStages stages = kResNet18Stages;
  double width_multiplier = 1.0;
};

// Two 3x3 convolutions with BatchNorm and a residual connection:
// relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).
class ResNetBasicBlockImpl : public torch::nn::Module {
 public:
  // REQUIRES: in_channels, out_channels, stride >= 1.
  ResNetBasicBlockImpl(int64_t in_channels, int64_t out_channels,
                       int64_t stride);

  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv1_{nullptr};
  GroupBatchNorm bn1_{nullptr};
  torch::nn::Conv2d conv2_{nullptr};
  GroupBatchNorm bn2_{nullptr};
  torch::nn::Sequential downsample_{nullptr};  // null: identity shortcut
};
TORCH_MODULE(ResNetBasicBlock);

class ResNet final : public Backbone {
 public:
  // REQUIRES: in_channels >= 1, every stage >= 1 block, width_multiplier > 0
  // (c10::Error if not).
  explicit ResNet(const ResNetOptions& options);

  torch::OrderedDict<std::string, torch::Tensor> ForwardTaps(
      const torch::Tensor& images) override;
  torch::Tensor forward(const torch::Tensor& images) override;
  int64_t embedding_dim() const override { return embedding_dim_; }
  std::vector<std::string> tap_names() const override;

 private:
  torch::Tensor Stem(const torch::Tensor& images);

  torch::nn::Conv2d conv1_{nullptr};
  GroupBatchNorm bn1_{nullptr};
  std::vector<torch::nn::Sequential> layers_;
  int64_t embedding_dim_ = 0;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_RESNET_H_
