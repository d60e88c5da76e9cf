// Mlp: the fully connected backbone, with named layer taps.
//
// The image is flattened to C*H*W features, then `depth` hidden layers
// Linear(width, no bias) - BatchNorm1d - ReLU follow (the bias would be
// cancelled by BatchNorm's mean subtraction). The last hidden layer's output
// is the embedding (width features). ForwardTaps returns the earlier hidden
// layers ("layer1".."layer(N-1)", [B, width]) and then "embedding" [B, width].
//
// Thread contract: a module is not thread-safe; confine each instance to one
// thread (LibTorch parallelises inside each operation).

#ifndef SSLSWEEP_WORKER_TRAINER_MLP_H_
#define SSLSWEEP_WORKER_TRAINER_MLP_H_

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "worker/trainer/backbone.h"

namespace sslsweep {

struct MlpOptions {
  int64_t in_features = 28 * 28;  // C*H*W of the images
  int64_t depth = 3;              // hidden layers
  int64_t width = 512;            // units per hidden layer
};

class Mlp final : public Backbone {
 public:
  // REQUIRES: in_features, depth, width >= 1 (c10::Error if not).
  explicit Mlp(const MlpOptions& options);

  // REQUIRES: images [B, ...] with in_features values per sample.
  torch::OrderedDict<std::string, torch::Tensor> ForwardTaps(
      const torch::Tensor& images) override;
  torch::Tensor forward(const torch::Tensor& images) override;
  int64_t embedding_dim() const override { return width_; }
  std::vector<std::string> tap_names() const override { return tap_names_; }

 private:
  std::vector<torch::nn::Sequential> layers_;
  std::vector<std::string> tap_names_;
  int64_t width_ = 0;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_MLP_H_
