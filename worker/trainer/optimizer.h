// The optimiser of a trial and its learning-rate schedule.
//
// MakeOptimizer builds what optim.name names: SGD with momentum (weight
// decay on every parameter), AdamW (decoupled weight decay, betas 0.9/0.999,
// eps 1e-8) or LARS (lars.h: no decay or adaptation on 1-D parameters), all
// starting at the peak rate optim.lr. The schedule is a pure function of the
// global step: a linear warm-up over the first warmup_steps steps, then a
// half cosine towards 0; SetLearningRate is the one place that writes it
// into the optimiser.
//
// Thread contract: LearningRateAt is pure; an optimiser is confined to the
// training thread.

#ifndef SSLSWEEP_WORKER_TRAINER_OPTIMIZER_H_
#define SSLSWEEP_WORKER_TRAINER_OPTIMIZER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/trial_config.h"

namespace sslsweep {

// OK if config.name is sgd, lars or adamw; otherwise InvalidArgument
// "optim.name: 'x' is not one of: sgd, lars, adamw".
absl::Status CheckOptimizerName(const OptimConfig& config);

// The optimiser over `parameters` (the trainable ones only: a BYOL target
// network stays out). InvalidArgument as CheckOptimizerName; Internal if
// LibTorch rejects an option (a negative rate).
absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> MakeOptimizer(
    const OptimConfig& config, std::vector<torch::Tensor> parameters);

// The learning rate of step `step` (0-based, counted over the whole run):
//   step <  warmup_steps:  peak * (step + 1) / (warmup_steps + 1)
//   step >= warmup_steps:  peak * (1 + cos(pi * (step - warmup_steps) /
//                                          (total_steps - warmup_steps))) / 2
// so the warm-up climbs from peak / (warmup_steps + 1) to peak at step
// warmup_steps, where the cosine starts, and the cosine reaches 0 just after
// the last step. Without warm-up it is the plain per-step cosine.
// REQUIRES: 0 <= warmup_steps < total_steps, 0 <= step < total_steps.
double LearningRateAt(int64_t step, int64_t total_steps, int64_t warmup_steps,
                      double peak);

// Sets the learning rate of every parameter group of `optimizer` to `lr`.
void SetLearningRate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_OPTIMIZER_H_
