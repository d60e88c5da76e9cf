#include "worker/trainer/convnet.h"

#include "absl/strings/str_cat.h"
#include "worker/trainer/group_batch_norm.h"

namespace sslsweep {

ConvNetImpl::ConvNetImpl(const ConvNetOptions& options) {
  TORCH_CHECK(
      options.depth >= 1 && options.width >= 1 && options.in_channels >= 1,
      "ConvNet needs depth, width and in_channels >= 1");
  int64_t in = options.in_channels;
  for (int64_t i = 0; i < options.depth; ++i) {
    const int64_t out = options.width << i;
    const std::string name = absl::StrCat("stage", i + 1);
    stages_.push_back(register_module(
        name, torch::nn::Sequential(
                  torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3)
                                        .stride(2)
                                        .padding(1)
                                        .bias(false)),
                  GroupBatchNorm(out), torch::nn::ReLU())));
    tap_names_.push_back(name);
    in = out;
  }
  tap_names_.push_back("embedding");
  embedding_dim_ = in;
}

torch::OrderedDict<std::string, torch::Tensor> ConvNetImpl::ForwardTaps(
    const torch::Tensor& images) {
  torch::OrderedDict<std::string, torch::Tensor> taps;
  torch::Tensor x = images;
  for (size_t i = 0; i < stages_.size(); ++i) {
    x = stages_[i]->forward(x);
    taps.insert(tap_names_[i], x);
  }
  taps.insert(tap_names_.back(), x.mean({2, 3}));
  return taps;
}

torch::Tensor ConvNetImpl::forward(const torch::Tensor& images) {
  torch::Tensor x = images;
  for (auto& stage : stages_) x = stage->forward(x);
  return x.mean({2, 3});
}

}  // namespace sslsweep
