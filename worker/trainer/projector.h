// Projector: the MLP head between a backbone's embedding and an SSL loss
// (VICReg's "expander"), shared by every method in ssl_method.h.
//
// `layers` Linear layers; every one but the last is followed by
// BatchNorm1d - ReLU, and the last has no bias. With the defaults this is
// the official VICReg projector (facebookresearch/vicreg, main_vicreg.py
// Projector: Linear-BN-ReLU, Linear-BN-ReLU, Linear(bias=False)), which is
// also Barlow Twins' shape (facebookresearch/barlowtwins, main.py).
// layers = 1 is a single bias-free Linear(in, out).
//
// Each layer's output is a tap for the layer-wise analysis: "projector1" ..
// "projectorK", the output of block i after its ReLU (the last: the
// projection itself).
//
// Thread contract: a module is not thread-safe; confine each instance to one
// thread.

#ifndef SSLSWEEP_WORKER_TRAINER_PROJECTOR_H_
#define SSLSWEEP_WORKER_TRAINER_PROJECTOR_H_

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sslsweep {

struct ProjectorOptions {
  int64_t in = 128;      // embedding width
  int64_t hidden = 512;  // width of every layer but the last
  int64_t out = 512;     // width of the projection
  int64_t layers = 3;    // Linear layers
};

class ProjectorImpl : public torch::nn::Module {
 public:
  // REQUIRES: in, hidden, out, layers >= 1 (c10::Error if not).
  explicit ProjectorImpl(const ProjectorOptions& options);

  // [B, in] -> [B, out].
  torch::Tensor forward(const torch::Tensor& embedding);

  // Every layer's output for [B, in], "projector1" .. "projectorK"; the last
  // equals forward(embedding).
  torch::OrderedDict<std::string, torch::Tensor> ForwardTaps(
      const torch::Tensor& embedding);

  // The names ForwardTaps returns, in order.
  std::vector<std::string> tap_names() const;

 private:
  std::vector<torch::nn::Sequential> blocks_;
};
TORCH_MODULE(Projector);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_PROJECTOR_H_
