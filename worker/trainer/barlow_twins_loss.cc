#include "worker/trainer/barlow_twins_loss.h"

namespace sslsweep {
namespace {

torch::Tensor Standardised(const torch::Tensor& z, double epsilon) {
  const torch::Tensor centred = z - z.mean(0);
  return centred / torch::sqrt(centred.pow(2).mean(0) + epsilon);
}

}  // namespace

BarlowTwinsLossTerms BarlowTwinsLoss(const torch::Tensor& z1,
                                     const torch::Tensor& z2,
                                     const BarlowTwinsLossOptions& options) {
  TORCH_CHECK(z1.dim() == 2 && z1.sizes() == z2.sizes(),
              "BarlowTwinsLoss needs two [N, D] tensors of the same shape, "
              "got ",
              z1.sizes(), " and ", z2.sizes());
  TORCH_CHECK(z1.size(0) >= 2, "BarlowTwinsLoss needs a batch of at least 2");
  TORCH_CHECK(z1.is_floating_point() && z2.is_floating_point(),
              "BarlowTwinsLoss needs floating point inputs");
  const torch::Tensor c = Standardised(z1, options.bn_epsilon)
                              .t()
                              .mm(Standardised(z2, options.bn_epsilon)) /
                          static_cast<double>(z1.size(0));
  const torch::Tensor diagonal = c.diagonal();
  BarlowTwinsLossTerms terms;
  terms.on_diagonal = (1.0 - diagonal).pow(2).sum();
  // Masked rather than sum(c^2) - sum(diag^2): with D in the thousands and
  // c_ii near 1, the difference would lose the small off-diagonal mass to
  // float32 rounding.
  const torch::Tensor eye = torch::eye(
      c.size(0), torch::TensorOptions().dtype(torch::kBool).device(c.device()));
  terms.off_diagonal = c.pow(2).masked_fill(eye, 0.0).sum();
  terms.total = terms.on_diagonal + options.lambda * terms.off_diagonal;
  return terms;
}

}  // namespace sslsweep
