// Lars: layer-wise adaptive rate scaling (You, Gitman and Ginsburg, 2017), as
// the official VICReg, BYOL and Barlow Twins code runs it.
//
// For each parameter p with gradient g, in every step:
//   if p is not 1-D:  g = g + weight_decay * p
//                     g = g * trust, trust = eta * |p| / |g| when both norms
//                         are > 0, else 1
//   mu = momentum * mu + g      (mu starts at 0)
//   p  = p - lr * mu
// 1-D parameters (biases, batch-norm scales and shifts) get neither weight
// decay nor the trust ratio. Norms are Frobenius norms over the whole tensor.
// The trust ratio is computed with tensor ops, without a host round trip, so
// a step on CUDA does not synchronise.
//
// The momentum buffers are the state; save() and load() round-trip them
// with LibTorch's optimiser archive format, as SGD's are. A parameter group's
// learning rate is LarsOptions::lr (set_lr from a schedule).
//
// Thread contract: like every torch::optim::Optimizer, not thread-safe;
// confine an instance to one thread.

#ifndef SSLSWEEP_WORKER_TRAINER_LARS_H_
#define SSLSWEEP_WORKER_TRAINER_LARS_H_

#include <vector>

#include <torch/torch.h>

namespace sslsweep {

struct LarsOptions
    : public torch::optim::OptimizerCloneableOptions<LarsOptions> {
  LarsOptions(double lr = 0.1);  // NOLINT: LibTorch's loader builds one from 0
  TORCH_ARG(double, lr) = 0.1;
  TORCH_ARG(double, momentum) = 0.9;
  TORCH_ARG(double, weight_decay) = 0.0;
  TORCH_ARG(double, eta) = 1e-3;  // trust coefficient

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  double get_lr() const override;
  void set_lr(const double lr) override;
};

struct LarsParamState
    : public torch::optim::OptimizerCloneableParamState<LarsParamState> {
  TORCH_ARG(torch::Tensor, momentum_buffer);

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

class Lars : public torch::optim::Optimizer {
 public:
  // Throws c10::Error if lr, momentum, weight_decay or eta is negative.
  Lars(std::vector<torch::optim::OptimizerParamGroup> param_groups,
       LarsOptions defaults);
  Lars(std::vector<torch::Tensor> params, LarsOptions defaults);

  // One update of every parameter that has a gradient; returns the closure's
  // loss when a closure is given, else an undefined tensor.
  torch::Tensor step(LossClosure closure = nullptr) override;

  void save(torch::serialize::OutputArchive& archive) const override;
  // Restores the momentum buffers saved by an optimiser over the same
  // parameters, in the same order. Throws c10::Error when the number of
  // groups or of parameters in a group differs.
  void load(torch::serialize::InputArchive& archive) override;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_LARS_H_
