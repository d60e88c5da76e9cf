// The VICReg loss (Bardes, Ponce and LeCun, ICLR 2022), exactly as the
// official implementation computes it (facebookresearch/vicreg,
// main_vicreg.py, VICReg.forward) for two batches of projections x and y:
//
//   invariance = mse(x, y)
//   x, y centred over the batch; std = sqrt(var(dim 0, unbiased) + 1e-4)
//   variance   = mean(relu(1 - std_x)) / 2 + mean(relu(1 - std_y)) / 2
//   cov        = x^T x / (N - 1)
//   covariance = sum(offdiag(cov_x)^2) / D + sum(offdiag(cov_y)^2) / D
//   total      = sim_coeff * invariance + std_coeff * variance
//                + cov_coeff * covariance
//
// The terms are returned unweighted; only `total` carries the coefficients.
//
// Thread contract: a pure function; call it from any thread.

#ifndef SSLSWEEP_WORKER_TRAINER_VICREG_LOSS_H_
#define SSLSWEEP_WORKER_TRAINER_VICREG_LOSS_H_

#include <torch/torch.h>

namespace sslsweep {

struct VicregLossOptions {
  double sim_coeff = 25.0;
  double std_coeff = 25.0;
  double cov_coeff = 1.0;
  double std_epsilon = 1e-4;
};

struct VicregLossTerms {
  torch::Tensor total;       // scalar, differentiable
  torch::Tensor invariance;  // scalar, unweighted
  torch::Tensor variance;    // scalar, unweighted
  torch::Tensor covariance;  // scalar, unweighted
};

// REQUIRES: x and y are floating [N, D] tensors of the same shape, N >= 2.
VicregLossTerms VicregLoss(const torch::Tensor& x, const torch::Tensor& y,
                           const VicregLossOptions& options = {});

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_VICREG_LOSS_H_
