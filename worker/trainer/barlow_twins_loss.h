// The Barlow Twins loss (Zbontar, Jing, Misra, LeCun and Deny, ICML 2021),
// as the official implementation computes it (facebookresearch/barlowtwins,
// main.py, BarlowTwins.forward) for two batches of projections z1, z2 [N, D]:
//
//   z standardised per dimension over the batch, as BatchNorm1d(affine=False)
//     in training mode: (z - mean) / sqrt(biased var + 1e-5)
//   c            = z1^T z2 / N                       [D, D]
//   on_diagonal  = sum_i (1 - c_ii)^2
//   off_diagonal = sum_{i != j} c_ij^2
//   total        = on_diagonal + lambda * off_diagonal
//
// The terms are returned unweighted; only `total` carries lambda.
//
// Thread contract: a pure function; call it from any thread.

#ifndef SSLSWEEP_WORKER_TRAINER_BARLOW_TWINS_LOSS_H_
#define SSLSWEEP_WORKER_TRAINER_BARLOW_TWINS_LOSS_H_

#include <torch/torch.h>

namespace sslsweep {

struct BarlowTwinsLossOptions {
  double lambda = 5e-3;      // weight of the off-diagonal (redundancy) term
  double bn_epsilon = 1e-5;  // BatchNorm1d's default
};

struct BarlowTwinsLossTerms {
  torch::Tensor total;         // scalar, differentiable
  torch::Tensor on_diagonal;   // scalar, unweighted
  torch::Tensor off_diagonal;  // scalar, unweighted
};

// REQUIRES: z1 and z2 are floating [N, D] tensors of the same shape, N >= 2
// (c10::Error if not).
BarlowTwinsLossTerms BarlowTwinsLoss(
    const torch::Tensor& z1, const torch::Tensor& z2,
    const BarlowTwinsLossOptions& options = {});

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_BARLOW_TWINS_LOSS_H_
