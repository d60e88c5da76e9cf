#include "worker/trainer/mlp.h"

#include "absl/strings/str_cat.h"
#include "worker/trainer/group_batch_norm.h"

namespace sslsweep {

Mlp::Mlp(const MlpOptions& options) : width_(options.width) {
  TORCH_CHECK(
      options.in_features >= 1 && options.depth >= 1 && options.width >= 1,
      "Mlp needs in_features, depth and width >= 1");
  int64_t in = options.in_features;
  for (int64_t i = 0; i < options.depth; ++i) {
    const std::string name = absl::StrCat("layer", i + 1);
    layers_.push_back(register_module(
        name, torch::nn::Sequential(
                  torch::nn::Linear(
                      torch::nn::LinearOptions(in, options.width).bias(false)),
                  GroupBatchNorm(options.width), torch::nn::ReLU())));
    tap_names_.push_back(i + 1 < options.depth ? name : "embedding");
    in = options.width;
  }
}

torch::OrderedDict<std::string, torch::Tensor> Mlp::ForwardTaps(
    const torch::Tensor& images) {
  torch::OrderedDict<std::string, torch::Tensor> taps;
  torch::Tensor x = images.flatten(1);
  for (size_t i = 0; i < layers_.size(); ++i) {
    x = layers_[i]->forward(x);
    taps.insert(tap_names_[i], x);
  }
  return taps;
}

torch::Tensor Mlp::forward(const torch::Tensor& images) {
  torch::Tensor x = images.flatten(1);
  for (auto& layer : layers_) x = layer->forward(x);
  return x;
}

}  // namespace sslsweep
