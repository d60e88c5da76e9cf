#include "worker/trainer/ssl_method.h"

#include <ATen/autocast_mode.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "worker/trainer/barlow_twins_loss.h"
#include "worker/trainer/byol.h"
#include "worker/trainer/simclr_loss.h"
#include "worker/trainer/vicreg_loss.h"

namespace sslsweep {
namespace {

// Turns CUDA and CPU autocast off for its lifetime.
class AutocastOff {
 public:
  AutocastOff()
      : cuda_(at::autocast::is_enabled()),
        cpu_(at::autocast::is_cpu_enabled()) {
    at::autocast::set_enabled(false);
    at::autocast::set_cpu_enabled(false);
  }
  ~AutocastOff() {
    at::autocast::set_enabled(cuda_);
    at::autocast::set_cpu_enabled(cpu_);
  }
  AutocastOff(const AutocastOff&) = delete;
  AutocastOff& operator=(const AutocastOff&) = delete;

 private:
  const bool cuda_;
  const bool cpu_;
};

using PairLoss =
    std::function<LossTerms(const torch::Tensor&, const torch::Tensor&)>;

// The methods whose loss is a function of the two views' projections:
// VICReg, SimCLR and Barlow Twins.
class ProjectedPairMethod final : public SslMethod {
 public:
  ProjectedPairMethod(const ProjectorOptions& projector,
                      std::vector<std::string> term_names, PairLoss loss)
      : SslMethod(projector),
        term_names_(std::move(term_names)),
        loss_(std::move(loss)) {}

  LossTerms Loss(Backbone& backbone, const torch::Tensor& view1,
                 const torch::Tensor& view2) override {
    const torch::Tensor z1 = projector()(backbone.forward(view1));
    const torch::Tensor z2 = projector()(backbone.forward(view2));
    return InFloat32({z1, z2}, [this](const std::vector<torch::Tensor>& z) {
      return loss_(z[0], z[1]);
    });
  }

  std::vector<std::string> term_names() const override { return term_names_; }

 private:
  const std::vector<std::string> term_names_;
  const PairLoss loss_;
};

std::shared_ptr<SslMethod> MakeVicreg(const MethodConfig& config,
                                      const ProjectorOptions& projector) {
  const VicregLossOptions options{config.sim_coeff, config.std_coeff,
                                  config.cov_coeff};
  return std::make_shared<ProjectedPairMethod>(
      projector,
      std::vector<std::string>{"invariance", "variance", "covariance"},
      [options](const torch::Tensor& z1, const torch::Tensor& z2) {
        VicregLossTerms vicreg = VicregLoss(z1, z2, options);
        return LossTerms{vicreg.total,
                         {{"invariance", vicreg.invariance},
                          {"variance", vicreg.variance},
                          {"covariance", vicreg.covariance}}};
      });
}

std::shared_ptr<SslMethod> MakeSimclr(const MethodConfig& config,
                                      const ProjectorOptions& projector) {
  const double temperature = config.temperature;
  return std::make_shared<ProjectedPairMethod>(
      projector, std::vector<std::string>{"nt_xent"},
      [temperature](const torch::Tensor& z1, const torch::Tensor& z2) {
        torch::Tensor nt_xent = NtXentLoss(z1, z2, temperature);
        return LossTerms{nt_xent, {{"nt_xent", nt_xent}}};
      });
}

std::shared_ptr<SslMethod> MakeBarlowTwins(const MethodConfig& config,
                                           const ProjectorOptions& projector) {
  BarlowTwinsLossOptions options;
  options.lambda = config.barlow_lambda;
  return std::make_shared<ProjectedPairMethod>(
      projector, std::vector<std::string>{"on_diagonal", "off_diagonal"},
      [options](const torch::Tensor& z1, const torch::Tensor& z2) {
        BarlowTwinsLossTerms barlow = BarlowTwinsLoss(z1, z2, options);
        return LossTerms{barlow.total,
                         {{"on_diagonal", barlow.on_diagonal},
                          {"off_diagonal", barlow.off_diagonal}}};
      });
}

absl::Status CheckSettings(const MethodConfig& method,
                           const ProjectorConfig& projector) {
  if (projector.layers < 1 || projector.hidden < 1 || projector.out < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "projector: layers, hidden and out must be >= 1, got ",
        projector.layers, ", ", projector.hidden, ", ", projector.out));
  }
  if (method.name == "simclr" && !(method.temperature > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "method.temperature: must be > 0, got ", method.temperature));
  }
  if (method.name == "byol" && method.predictor_hidden < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("method.predictor_hidden: must be >= 1, got ",
                     method.predictor_hidden));
  }
  if (method.name == "byol" &&
      !(method.ema_momentum >= 0 && method.ema_momentum <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "method.ema_momentum: must be in [0, 1], got ", method.ema_momentum));
  }
  return absl::OkStatus();
}

}  // namespace

SslMethod::SslMethod(const ProjectorOptions& projector)
    : projector_(register_module("projector", Projector(projector))) {}

LossTerms SslMethod::InFloat32(
    const std::vector<torch::Tensor>& heads,
    const std::function<LossTerms(const std::vector<torch::Tensor>&)>& loss) {
  const AutocastOff autocast_off;
  std::vector<torch::Tensor> upcast;
  upcast.reserve(heads.size());
  for (const torch::Tensor& head : heads) {
    const bool reduced = head.scalar_type() == torch::kBFloat16 ||
                         head.scalar_type() == torch::kHalf;
    torch::Tensor head32 = reduced ? head.to(torch::kFloat32) : head;
    upcast.push_back(gather_ ? gather_(head32) : head32);
  }
  return loss(upcast);
}

absl::StatusOr<std::shared_ptr<SslMethod>> MakeSslMethod(
    const MethodConfig& method, const ProjectorConfig& projector,
    Backbone& online_backbone,
    const std::function<std::shared_ptr<Backbone>()>& make_backbone) {
  if (auto s = CheckSettings(method, projector); !s.ok()) return s;
  const ProjectorOptions projector_options{online_backbone.embedding_dim(),
                                           projector.hidden, projector.out,
                                           projector.layers};
  if (method.name == "vicreg") return MakeVicreg(method, projector_options);
  if (method.name == "simclr") return MakeSimclr(method, projector_options);
  if (method.name == "barlow_twins") {
    return MakeBarlowTwins(method, projector_options);
  }
  if (method.name == "byol") {
    if (!make_backbone) {
      return absl::InvalidArgumentError("byol needs a make_backbone function");
    }
    ByolOptions options;
    options.projector = projector_options;
    options.predictor_hidden = method.predictor_hidden;
    options.ema_momentum = method.ema_momentum;
    return std::shared_ptr<SslMethod>(std::make_shared<ByolMethod>(
        options, online_backbone, make_backbone()));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("method.name: '", method.name,
                   "' is not one of: vicreg, simclr, byol, barlow_twins"));
}

}  // namespace sslsweep
