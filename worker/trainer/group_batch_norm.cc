#include "worker/trainer/group_batch_norm.h"

#include <vector>

#include "worker/trainer/data_parallel_group.h"

namespace sslsweep {
namespace {

DataParallelGroup* g_group = nullptr;

}  // namespace

void SetBatchNormGroup(DataParallelGroup* group) { g_group = group; }

GroupBatchNormImpl::GroupBatchNormImpl(int64_t features) : features(features) { reset(); }

void GroupBatchNormImpl::reset() {
  weight = register_parameter("weight", torch::ones({features}));
  bias = register_parameter("bias", torch::zeros({features}));
  running_mean = register_buffer("running_mean", torch::zeros({features}));
  running_var = register_buffer("running_var", torch::ones({features}));
  num_batches_tracked =
      register_buffer("num_batches_tracked", torch::tensor(0, torch::dtype(torch::kLong)));
}

void GroupBatchNormImpl::pretty_print(std::ostream& stream) const {
  stream << "sslsweep::GroupBatchNorm(" << features << ", eps=" << kEps
         << ", momentum=" << kMomentum << ")";
}

torch::Tensor GroupBatchNormImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() >= 2 && x.size(1) == features, "GroupBatchNorm(", features,
              "): expected [N, ", features, ", ...], got ", x.sizes());
  if (is_training()) num_batches_tracked.add_(1);
  if (g_group == nullptr || g_group->world_size() == 1 || !is_training()) {
    return torch::batch_norm(x, weight, bias, running_mean, running_var, is_training(),
                             kMomentum, kEps, /*cudnn_enabled=*/true);
  }
  // The global batch's statistics; two passes, as LibTorch's own kernel
  // (the mean, then the centred squares).
  std::vector<int64_t> reduced = {0};
  for (int64_t d = 2; d < x.dim(); ++d) reduced.push_back(d);
  std::vector<int64_t> shape(x.dim(), 1);
  shape[1] = features;
  const double count = static_cast<double>(x.numel() / features) * g_group->world_size();
  const torch::Tensor mean = g_group->AllReduceSum(x.sum(reduced)) / count;
  const torch::Tensor centred = x - mean.view(shape);
  const torch::Tensor variance = g_group->AllReduceSum(centred.pow(2).sum(reduced)) / count;
  {
    torch::NoGradGuard no_grad;
    running_mean.mul_(1 - kMomentum).add_(mean.detach(), kMomentum);
    // The running variance is the unbiased one, as in LibTorch.
    running_var.mul_(1 - kMomentum).add_(variance.detach() * (count / (count - 1)), kMomentum);
  }
  return centred * torch::rsqrt(variance + kEps).view(shape) * weight.view(shape) +
         bias.view(shape);
}

}  // namespace sslsweep
