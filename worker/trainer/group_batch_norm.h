// GroupBatchNorm: BatchNorm over dimension 1 (BatchNorm1d on [N, C],
// BatchNorm2d on [N, C, H, W]), synchronised over the ranks of a
// data-parallel trial when one is set (SyncBatchNorm): in training the batch
// statistics are the global batch's, summed over the ranks with
// DataParallelGroup's differentiable all-reduce, so that N ranks normalise
// exactly as one process with the whole batch would and their running
// statistics stay equal. Without a group, or in eval(), it computes what
// torch::nn::BatchNorm does (the same functional call). Its parameters and
// buffers have BatchNorm's names and defaults (weight, bias, running_mean,
// running_var, num_batches_tracked; eps 1e-5, momentum 0.1), so checkpoints
// are those of torch::nn::BatchNorm.
//
// (Not a subclass of torch::nn::BatchNorm2dImpl: Debian's LibTorch does not
// export the template members a subclass's vtable needs.)
//
// Thread contract: SetBatchNormGroup is process-wide (one trial per
// process); set it before training, from the training thread.

#ifndef SSLSWEEP_WORKER_TRAINER_GROUP_BATCH_NORM_H_
#define SSLSWEEP_WORKER_TRAINER_GROUP_BATCH_NORM_H_

#include <torch/torch.h>

#include <cstdint>
#include <ostream>

namespace sslsweep {

class DataParallelGroup;

// The group whose ranks' batches every GroupBatchNorm normalises together;
// nullptr (the default) for a process training alone. `group` must outlive
// the training.
void SetBatchNormGroup(DataParallelGroup* group);

class GroupBatchNormImpl : public torch::nn::Cloneable<GroupBatchNormImpl> {
 public:
  explicit GroupBatchNormImpl(int64_t features);

  void reset() override;
  torch::Tensor forward(const torch::Tensor& input);
  void pretty_print(std::ostream& stream) const override;

  static constexpr double kEps = 1e-5;
  static constexpr double kMomentum = 0.1;

  int64_t features;
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;
};
TORCH_MODULE(GroupBatchNorm);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_GROUP_BATCH_NORM_H_
