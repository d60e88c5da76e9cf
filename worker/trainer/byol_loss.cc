#include "worker/trainer/byol_loss.h"

namespace sslsweep {

torch::Tensor ByolRegressionLoss(const torch::Tensor& prediction,
                                 const torch::Tensor& target) {
  TORCH_CHECK(prediction.dim() == 2 && prediction.sizes() == target.sizes(),
              "ByolRegressionLoss needs two [N, D] tensors of the same shape, "
              "got ",
              prediction.sizes(), " and ", target.sizes());
  TORCH_CHECK(prediction.is_floating_point() && target.is_floating_point(),
              "ByolRegressionLoss needs floating point inputs");
  namespace F = torch::nn::functional;
  const auto unit = F::NormalizeFuncOptions().dim(1);
  const torch::Tensor cosine =
      (F::normalize(prediction, unit) * F::normalize(target, unit)).sum(1);
  return (2.0 - 2.0 * cosine).mean();
}

}  // namespace sslsweep
