// BYOL's regression loss (Grill et al., NeurIPS 2020, equation 2): the mean
// squared error between l2-normalised online predictions and target
// projections,
//
//   loss(p, z) = mean over the batch of || p/||p|| - z/||z|| ||^2
//              = mean of 2 - 2 cos(p_i, z_i)
//
// in [0, 4]. The method symmetrises it: loss(p1, z2') + loss(p2, z1'), the
// target projections z' carrying no gradient (byol.h).
//
// Thread contract: a pure function; call it from any thread.

#ifndef SSLSWEEP_WORKER_TRAINER_BYOL_LOSS_H_
#define SSLSWEEP_WORKER_TRAINER_BYOL_LOSS_H_

#include <torch/torch.h>

namespace sslsweep {

// The scalar loss, differentiable in both arguments (the caller detaches
// the target).
// REQUIRES: prediction and target are floating [N, D] tensors of the same
// shape, N >= 1 (c10::Error if not).
torch::Tensor ByolRegressionLoss(const torch::Tensor& prediction,
                                 const torch::Tensor& target);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_BYOL_LOSS_H_
