// Projector: VICReg's expander, the head between the embedding and the loss.
//
// The official shape (facebookresearch/vicreg, main_vicreg.py Projector):
// Linear(in, hidden) - BatchNorm1d - ReLU, Linear(hidden, hidden) -
// BatchNorm1d - ReLU, Linear(hidden, out, no bias).
//
// Thread contract: a module is not thread-safe; confine each instance to one
// thread.

#ifndef SSLSWEEP_WORKER_TRAINER_PROJECTOR_H_
#define SSLSWEEP_WORKER_TRAINER_PROJECTOR_H_

#include <cstdint>

#include <torch/torch.h>

namespace sslsweep {

struct ProjectorOptions {
  int64_t in = 128;
  int64_t hidden = 512;
  int64_t out = 512;
};

class ProjectorImpl : public torch::nn::Module {
 public:
  // REQUIRES: in, hidden, out >= 1.
  explicit ProjectorImpl(const ProjectorOptions& options);

  // [B, in] -> [B, out].
  torch::Tensor forward(const torch::Tensor& embedding);

 private:
  torch::nn::Sequential layers_;
};
TORCH_MODULE(Projector);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_PROJECTOR_H_
