#include "worker/trainer/simclr_loss.h"

#include <limits>

namespace sslsweep {

torch::Tensor NtXentLoss(const torch::Tensor& z1, const torch::Tensor& z2,
                         double temperature) {
  TORCH_CHECK(z1.dim() == 2 && z1.sizes() == z2.sizes(),
              "NtXentLoss needs two [N, D] tensors of the same shape, got ",
              z1.sizes(), " and ", z2.sizes());
  TORCH_CHECK(z1.is_floating_point() && z2.is_floating_point(),
              "NtXentLoss needs floating point inputs");
  TORCH_CHECK(temperature > 0, "NtXentLoss needs temperature > 0, got ",
              temperature);
  const int64_t n = z1.size(0);
  const torch::Tensor u = torch::nn::functional::normalize(
      torch::cat({z1, z2}),
      torch::nn::functional::NormalizeFuncOptions().dim(1));
  const torch::Tensor self = torch::eye(
      2 * n, torch::TensorOptions().dtype(torch::kBool).device(u.device()));
  const torch::Tensor logits =
      (u.mm(u.t()) / temperature)
          .masked_fill(self, -std::numeric_limits<double>::infinity());
  // Row i's positive is i + N for the first view, i - N for the second.
  const torch::Tensor positives =
      torch::arange(
          2 * n, torch::TensorOptions().dtype(torch::kInt64).device(u.device()))
          .add(n)
          .remainder(2 * n);
  return torch::nn::functional::cross_entropy(logits, positives);
}

}  // namespace sslsweep
