// SimCLR's NT-Xent loss (Chen, Kornblith, Norouzi and Hinton, ICML 2020,
// section 2.1 and Algorithm 1) for two batches of projections z1, z2 [N, D]
// of the same N images:
//
//   u    = [z1; z2] / ||.||_2 row-wise, 2N samples
//   s_ij = u_i . u_j / temperature, s_ii = -inf (a sample is not its own
//          candidate)
//   loss = mean over the 2N samples i of cross_entropy(s_i, positive(i)),
//          where positive(i) is the other view of the same image (i +- N)
//
// Thread contract: a pure function; call it from any thread.

#ifndef SSLSWEEP_WORKER_TRAINER_SIMCLR_LOSS_H_
#define SSLSWEEP_WORKER_TRAINER_SIMCLR_LOSS_H_

#include <torch/torch.h>

namespace sslsweep {

// The scalar NT-Xent loss, differentiable.
// REQUIRES: z1 and z2 are floating [N, D] tensors of the same shape, N >= 1;
// temperature > 0 (c10::Error if not).
torch::Tensor NtXentLoss(const torch::Tensor& z1, const torch::Tensor& z2,
                         double temperature);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_SIMCLR_LOSS_H_
