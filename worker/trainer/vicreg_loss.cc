#include "worker/trainer/vicreg_loss.h"

namespace sslsweep {
namespace {

// Mean over features of relu(1 - std) for a centred batch.
torch::Tensor HingeOnStd(const torch::Tensor& centred, double epsilon) {
  return torch::relu(1.0 - torch::sqrt(centred.var(0) + epsilon)).mean();
}

// Sum of the squared off-diagonal entries of the covariance, divided by D.
torch::Tensor OffDiagonalPenalty(const torch::Tensor& centred) {
  const int64_t n = centred.size(0);
  const int64_t d = centred.size(1);
  const torch::Tensor cov =
      centred.t().mm(centred) / static_cast<double>(n - 1);
  return (cov.pow(2).sum() - cov.diagonal().pow(2).sum()) /
         static_cast<double>(d);
}

}  // namespace

VicregLossTerms VicregLoss(const torch::Tensor& x, const torch::Tensor& y,
                           const VicregLossOptions& options) {
  TORCH_CHECK(x.dim() == 2 && x.sizes() == y.sizes(),
              "VicregLoss needs two [N, D] tensors of the same shape, got ",
              x.sizes(), " and ", y.sizes());
  TORCH_CHECK(x.size(0) >= 2, "VicregLoss needs a batch of at least 2");
  TORCH_CHECK(x.is_floating_point() && y.is_floating_point(),
              "VicregLoss needs floating point inputs");
  VicregLossTerms terms;
  terms.invariance = torch::mse_loss(x, y);
  const torch::Tensor xc = x - x.mean(0);
  const torch::Tensor yc = y - y.mean(0);
  terms.variance = HingeOnStd(xc, options.std_epsilon) / 2 +
                   HingeOnStd(yc, options.std_epsilon) / 2;
  terms.covariance = OffDiagonalPenalty(xc) + OffDiagonalPenalty(yc);
  terms.total = options.sim_coeff * terms.invariance +
                options.std_coeff * terms.variance +
                options.cov_coeff * terms.covariance;
  return terms;
}

}  // namespace sslsweep
