// SslMethod: one self-supervised learning method (VICReg, SimCLR, BYOL or
// Barlow Twins) behind one interface: the heads it puts on a backbone, the
// loss on two augmented views of a batch, and what it does after each
// optimiser step.
//
// A method owns its heads (the projector, projector.h; BYOL also its
// predictor and its EMA target network) as registered submodules, so
// checkpointing the method saves them, and train()/eval() on it sets their
// mode (BYOL's target follows it: batch statistics while training, as the
// official implementation's is_training=True target forward). It never owns
// the backbone: the trainer passes it to every call, so that the backbone's
// taps stay the trainer's.
//
// Formulas and their sources are in the loss headers: vicreg_loss.h,
// simclr_loss.h, barlow_twins_loss.h, byol_loss.h; BYOL's networks and EMA
// in byol.h.
//
// Heads run in whatever autocast mode the caller set; every loss itself runs
// in float32 with autocast off (bf16's 8-bit mantissa is too coarse for
// covariance and cross-correlation sums).
//
// Thread contract: a module is not thread-safe; confine a method, and the
// backbone it is given, to one thread.

#ifndef SSLSWEEP_WORKER_TRAINER_SSL_METHOD_H_
#define SSLSWEEP_WORKER_TRAINER_SSL_METHOD_H_

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/trainer/backbone.h"
#include "worker/trainer/projector.h"
#include "worker/trial_config.h"

namespace sslsweep {

struct LossTerms {
  torch::Tensor total;  // scalar, the one to back-propagate
  // Scalars, unweighted, in term_names() order; reported as "loss/<name>".
  std::vector<std::pair<std::string, torch::Tensor>> terms;
};

class SslMethod : public torch::nn::Module {
 public:
  // Both views of one batch through the backbone and the heads, one forward
  // per view per network, and the loss. Gradients reach the backbone and
  // TrainableParameters() when the caller back-propagates `total`.
  // REQUIRES: view1 and view2 are batches of the same N >= 2 images of the
  // backbone's shape (c10::Error if the shapes do not fit).
  virtual LossTerms Loss(Backbone& backbone, const torch::Tensor& view1,
                         const torch::Tensor& view2) = 0;

  // Call after each optimiser step; `step` is that step's 0-based index
  // in the trial, `total_steps` the trial's number of steps. BYOL moves its
  // target towards `backbone` and the projector; the others do nothing.
  // REQUIRES: `backbone` is the online backbone given to MakeSslMethod.
  virtual void AfterStep(Backbone& backbone, int64_t step,
                         int64_t total_steps) {}

  // The method's own parameters the optimiser trains (its heads; not the
  // backbone's, nor BYOL's target network).
  virtual std::vector<torch::Tensor> TrainableParameters() {
    return parameters();
  }

  // The names of LossTerms::terms, in order.
  virtual std::vector<std::string> term_names() const = 0;

  // Every projector layer's output for an embedding [B, D], "projector1" ..
  // "projectorK", for the layer-wise analysis. Run under NoGradGuard and
  // eval() to measure with the running BatchNorm statistics.
  torch::OrderedDict<std::string, torch::Tensor> ProjectorTaps(
      const torch::Tensor& embedding) {
    return projector_->ForwardTaps(embedding);
  }
  std::vector<std::string> projector_tap_names() const {
    return projector_->tap_names();
  }

  // For a data-parallel trial: the loss is computed on `gather` of every
  // head (DataParallelGroup::AllGatherRows: every rank's rows), so that its
  // batch statistics, negatives and means are the global batch's. Unset,
  // the process's batch is the batch.
  void SetBatchGather(std::function<torch::Tensor(const torch::Tensor&)> gather) {
    gather_ = std::move(gather);
  }

 protected:
  explicit SslMethod(const ProjectorOptions& projector);

  Projector& projector() { return projector_; }

  // Runs `loss` on float32 copies of `heads` (bf16/fp16 ones upcast, others
  // as they are; gathered over the ranks when SetBatchGather was called)
  // with autocast off, restoring the autocast state after.
  LossTerms InFloat32(
      const std::vector<torch::Tensor>& heads,
      const std::function<LossTerms(const std::vector<torch::Tensor>&)>& loss);

 private:
  Projector projector_;
  std::function<torch::Tensor(const torch::Tensor&)> gather_;
};

// Builds `method.name`'s method with a `projector` head on `online_backbone`
// (its embedding_dim() is the projector's input). BYOL calls `make_backbone`
// once for its target network, which must have the online backbone's
// architecture (same parameter and buffer names and shapes); the target
// starts as a copy of the online backbone and projector.
// Fails with InvalidArgument, naming the field, when method.name is not one
// of vicreg, simclr, byol, barlow_twins or a setting is out of range.
absl::StatusOr<std::shared_ptr<SslMethod>> MakeSslMethod(
    const MethodConfig& method, const ProjectorConfig& projector,
    Backbone& online_backbone,
    const std::function<std::shared_ptr<Backbone>()>& make_backbone);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_SSL_METHOD_H_
