#include "worker/trainer/projector.h"

#include "worker/trainer/group_batch_norm.h"

namespace sslsweep {

ProjectorImpl::ProjectorImpl(const ProjectorOptions& options) {
  TORCH_CHECK(options.in >= 1 && options.hidden >= 1 && options.out >= 1 &&
                  options.layers >= 1,
              "Projector needs in, hidden, out and layers >= 1, got in=",
              options.in, " hidden=", options.hidden, " out=", options.out,
              " layers=", options.layers);
  int64_t width = options.in;
  for (int64_t i = 1; i < options.layers; ++i) {
    blocks_.push_back(torch::nn::Sequential(
        torch::nn::Linear(width, options.hidden),
        GroupBatchNorm(options.hidden), torch::nn::ReLU()));
    width = options.hidden;
  }
  blocks_.push_back(torch::nn::Sequential(torch::nn::Linear(
      torch::nn::LinearOptions(width, options.out).bias(false))));
  for (size_t i = 0; i < blocks_.size(); ++i) {
    register_module("block" + std::to_string(i + 1), blocks_[i]);
  }
}

torch::Tensor ProjectorImpl::forward(const torch::Tensor& embedding) {
  torch::Tensor x = embedding;
  for (auto& block : blocks_) x = block->forward(x);
  return x;
}

torch::OrderedDict<std::string, torch::Tensor> ProjectorImpl::ForwardTaps(
    const torch::Tensor& embedding) {
  torch::OrderedDict<std::string, torch::Tensor> taps;
  torch::Tensor x = embedding;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    x = blocks_[i]->forward(x);
    taps.insert("projector" + std::to_string(i + 1), x);
  }
  return taps;
}

std::vector<std::string> ProjectorImpl::tap_names() const {
  std::vector<std::string> names;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    names.push_back("projector" + std::to_string(i + 1));
  }
  return names;
}

}  // namespace sslsweep
