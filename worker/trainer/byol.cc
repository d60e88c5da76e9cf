#include "worker/trainer/byol.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "worker/trainer/byol_loss.h"
#include "worker/trainer/group_batch_norm.h"

namespace sslsweep {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Fails unless `to` has `from`'s parameter and buffer names and shapes, in
// order: the copy and the EMA pair tensors by position.
void CheckSameArchitecture(const torch::nn::Module& from,
                           const torch::nn::Module& to) {
  const auto check = [](const torch::OrderedDict<std::string, torch::Tensor>& a,
                        const torch::OrderedDict<std::string, torch::Tensor>& b,
                        const char* what) {
    TORCH_CHECK(a.size() == b.size(), "BYOL target has ", b.size(), " ", what,
                ", the online network ", a.size());
    for (size_t i = 0; i < a.size(); ++i) {
      TORCH_CHECK(a[i].key() == b[i].key() &&
                      a[i].value().sizes() == b[i].value().sizes(),
                  "BYOL target's ", what, " ", b[i].key(), " ",
                  b[i].value().sizes(), " does not match the online ",
                  a[i].key(), " ", a[i].value().sizes());
    }
  };
  check(from.named_parameters(), to.named_parameters(), "parameters");
  check(from.named_buffers(), to.named_buffers(), "buffers");
}

void CopyInto(const torch::nn::Module& from, torch::nn::Module& to) {
  CheckSameArchitecture(from, to);
  torch::NoGradGuard no_grad;
  const auto source_parameters = from.parameters();
  const auto target_parameters = to.parameters();
  for (size_t i = 0; i < source_parameters.size(); ++i) {
    target_parameters[i].copy_(source_parameters[i]);
    target_parameters[i].set_requires_grad(false);
  }
  const auto source_buffers = from.buffers();
  const auto target_buffers = to.buffers();
  for (size_t i = 0; i < source_buffers.size(); ++i) {
    target_buffers[i].copy_(source_buffers[i]);
  }
}

// target <- tau target + (1 - tau) online, parameter by parameter.
void MoveAverage(const torch::nn::Module& online, torch::nn::Module& target,
                 double tau) {
  torch::NoGradGuard no_grad;
  const auto online_parameters = online.parameters();
  const auto target_parameters = target.parameters();
  TORCH_CHECK(online_parameters.size() == target_parameters.size(),
              "BYOL AfterStep got a backbone of another architecture");
  for (size_t i = 0; i < online_parameters.size(); ++i) {
    target_parameters[i].lerp_(online_parameters[i], 1.0 - tau);
  }
}

}  // namespace

double ByolTargetMomentum(double base, int64_t step, int64_t total_steps) {
  TORCH_CHECK(total_steps >= 1, "ByolTargetMomentum needs total_steps >= 1");
  const double progress = std::min(
      1.0, static_cast<double>(step) / static_cast<double>(total_steps));
  return 1.0 - (1.0 - base) * (std::cos(kPi * progress) + 1.0) / 2.0;
}

ByolMethod::ByolMethod(const ByolOptions& options, Backbone& online_backbone,
                       std::shared_ptr<Backbone> target_backbone)
    : SslMethod(options.projector),
      ema_momentum_(options.ema_momentum),
      target_backbone_(std::move(target_backbone)) {
  TORCH_CHECK(target_backbone_ != nullptr, "BYOL needs a target backbone");
  TORCH_CHECK(options.projector.in == online_backbone.embedding_dim(),
              "BYOL projector input ", options.projector.in,
              " != the backbone's embedding_dim ",
              online_backbone.embedding_dim());
  TORCH_CHECK(options.predictor_hidden >= 1,
              "BYOL needs predictor_hidden >= 1, got ",
              options.predictor_hidden);
  TORCH_CHECK(options.ema_momentum >= 0 && options.ema_momentum <= 1,
              "BYOL needs 0 <= ema_momentum <= 1, got ", options.ema_momentum);
  const int64_t out = options.projector.out;
  predictor_ = register_module(
      "predictor",
      torch::nn::Sequential(torch::nn::Linear(out, options.predictor_hidden),
                            GroupBatchNorm(options.predictor_hidden),
                            torch::nn::ReLU(),
                            torch::nn::Linear(options.predictor_hidden, out)));
  register_module("target_backbone", target_backbone_);
  target_projector_ =
      register_module("target_projector", Projector(options.projector));
  CopyInto(online_backbone, *target_backbone_);
  CopyInto(*projector(), *target_projector_);
}

LossTerms ByolMethod::Loss(Backbone& backbone, const torch::Tensor& view1,
                           const torch::Tensor& view2) {
  const torch::Tensor p1 =
      predictor_->forward(projector()(backbone.forward(view1)));
  const torch::Tensor p2 =
      predictor_->forward(projector()(backbone.forward(view2)));
  torch::Tensor z1;
  torch::Tensor z2;
  {
    torch::NoGradGuard no_grad;
    z1 = target_projector_(target_backbone_->forward(view1));
    z2 = target_projector_(target_backbone_->forward(view2));
  }
  return InFloat32({p1, p2, z1, z2}, [](const std::vector<torch::Tensor>& h) {
    LossTerms terms;
    const torch::Tensor regression =
        ByolRegressionLoss(h[0], h[3]) + ByolRegressionLoss(h[1], h[2]);
    terms.total = regression;
    terms.terms = {{"regression", regression}};
    return terms;
  });
}

void ByolMethod::AfterStep(Backbone& backbone, int64_t step,
                           int64_t total_steps) {
  const double tau = ByolTargetMomentum(ema_momentum_, step, total_steps);
  MoveAverage(backbone, *target_backbone_, tau);
  MoveAverage(*projector(), *target_projector_, tau);
}

std::vector<torch::Tensor> ByolMethod::TrainableParameters() {
  std::vector<torch::Tensor> parameters = projector()->parameters();
  for (const torch::Tensor& p : predictor_->parameters()) {
    parameters.push_back(p);
  }
  return parameters;
}

}  // namespace sslsweep
