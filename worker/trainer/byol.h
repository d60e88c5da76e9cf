// BYOL (Grill et al., "Bootstrap your own latent", NeurIPS 2020): an online
// network (the trainer's backbone, the projector, a predictor) regresses the
// projections of a target network, an exponential moving average of the
// online backbone and projector that gets no gradient.
//
//   online  p = predictor(projector(backbone(v)))
//   target  z' = target_projector(target_backbone(v)), no grad
//   loss    = ByolRegressionLoss(p1, z2') + ByolRegressionLoss(p2, z1')
//             (byol_loss.h; term "regression")
//   after step k of K:  target <- tau_k target + (1 - tau_k) online,
//             tau_k = 1 - (1 - tau_base) (cos(pi k / K) + 1) / 2
//
// The predictor is the paper's MLP, Linear(out, predictor_hidden) -
// BatchNorm1d - ReLU - Linear(predictor_hidden, out). The projector is the
// trial's (projector.h), so its last layer has no bias, unlike the paper's.
// The EMA moves parameters only; the target's BatchNorm running statistics
// come from its own forwards, as in the official implementation (they are
// never used: the target only runs in training).
//
// Thread contract: a module is not thread-safe; confine an instance, and
// the backbone it is given, to one thread.

#ifndef SSLSWEEP_WORKER_TRAINER_BYOL_H_
#define SSLSWEEP_WORKER_TRAINER_BYOL_H_

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "worker/trainer/backbone.h"
#include "worker/trainer/projector.h"
#include "worker/trainer/ssl_method.h"

namespace sslsweep {

struct ByolOptions {
  ProjectorOptions projector;
  int64_t predictor_hidden = 512;
  double ema_momentum = 0.996;  // tau_base
};

class ByolMethod final : public SslMethod {
 public:
  // `target_backbone` becomes the target network's backbone, its parameters
  // and buffers overwritten with `online_backbone`'s.
  // REQUIRES: options.projector.in == online_backbone.embedding_dim();
  // target_backbone has online_backbone's parameter and buffer names and
  // shapes; predictor_hidden >= 1; 0 <= ema_momentum <= 1 (c10::Error if
  // not).
  ByolMethod(const ByolOptions& options, Backbone& online_backbone,
             std::shared_ptr<Backbone> target_backbone);

  LossTerms Loss(Backbone& backbone, const torch::Tensor& view1,
                 const torch::Tensor& view2) override;
  void AfterStep(Backbone& backbone, int64_t step,
                 int64_t total_steps) override;
  // The projector's and the predictor's.
  std::vector<torch::Tensor> TrainableParameters() override;
  std::vector<std::string> term_names() const override {
    return {"regression"};
  }

  Backbone& target_backbone() { return *target_backbone_; }
  Projector& target_projector() { return target_projector_; }

 private:
  const double ema_momentum_;
  std::shared_ptr<Backbone> target_backbone_;
  Projector target_projector_ = nullptr;
  torch::nn::Sequential predictor_ = nullptr;
};

// tau_k for step k of K: base at k = 0, rising on a cosine to 1 at k = K
// (and 1 beyond it).
// REQUIRES: total_steps >= 1.
double ByolTargetMomentum(double base, int64_t step, int64_t total_steps);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_BYOL_H_
