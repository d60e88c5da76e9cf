#include "worker/trainer/projector.h"

namespace sslsweep {

ProjectorImpl::ProjectorImpl(const ProjectorOptions& options) {
  TORCH_CHECK(options.in >= 1 && options.hidden >= 1 && options.out >= 1,
              "Projector needs in, hidden and out >= 1");
  layers_ = register_module(
      "layers", torch::nn::Sequential(
                    torch::nn::Linear(options.in, options.hidden),
                    torch::nn::BatchNorm1d(options.hidden), torch::nn::ReLU(),
                    torch::nn::Linear(options.hidden, options.hidden),
                    torch::nn::BatchNorm1d(options.hidden), torch::nn::ReLU(),
                    torch::nn::Linear(
                        torch::nn::LinearOptions(options.hidden, options.out)
                            .bias(false))));
}

torch::Tensor ProjectorImpl::forward(const torch::Tensor& embedding) {
  return layers_->forward(embedding);
}

}  // namespace sslsweep
