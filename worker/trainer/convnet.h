// ConvNet: the plain convolutional backbone, with named layer taps.
//
// `depth` stages; stage i (from 1) is Conv3x3(width * 2^(i-1), stride 2,
// padding 1, no bias) - BatchNorm - ReLU, halving the resolution (28x28 ->
// 14, 7, 4, 2, 1, so five stages fit Fashion-MNIST). A global average pool of
// the last stage gives the embedding of width * 2^(depth-1) features.
// ForwardTaps returns every stage's output ("stage1".."stageN", [B, C, H, W])
// and the embedding ("embedding", [B, D]) by name, in that order, for the
// layer-wise analysis.
//
// The stride-2 convolution replaces a stride-1 convolution followed by a 2x2
// max-pool: on CPU, LibTorch 1.13's max-pool dominated the step (measured, one
// thread, batch 256, width 16, depth 3: 318 ms per VICReg step with
// convolution + max-pool, 89 ms with the stride-2 convolution).
//
// Thread contract: a module is not thread-safe; confine each instance to one
// thread (LibTorch parallelises inside each operation).

#ifndef SSLSWEEP_WORKER_TRAINER_CONVNET_H_
#define SSLSWEEP_WORKER_TRAINER_CONVNET_H_

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "worker/trainer/backbone.h"

namespace sslsweep {

struct ConvNetOptions {
  int64_t in_channels = 1;
  int64_t depth = 3;
  int64_t width = 32;
};

class ConvNetImpl final : public Backbone {
 public:
  // REQUIRES: depth >= 1, width >= 1, in_channels >= 1 (c10::Error if not).
  explicit ConvNetImpl(const ConvNetOptions& options);

  torch::OrderedDict<std::string, torch::Tensor> ForwardTaps(
      const torch::Tensor& images) override;
  torch::Tensor forward(const torch::Tensor& images) override;
  int64_t embedding_dim() const override { return embedding_dim_; }
  std::vector<std::string> tap_names() const override { return tap_names_; }

 private:
  std::vector<torch::nn::Sequential> stages_;
  std::vector<std::string> tap_names_;
  int64_t embedding_dim_ = 0;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_CONVNET_H_
