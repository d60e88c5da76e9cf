#include "worker/trainer/lars.h"

#include <memory>
#include <string>
#include <utility>

#include <c10/util/string_utils.h>

namespace sslsweep {

LarsOptions::LarsOptions(double lr) : lr_(lr) {}

void LarsOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(weight_decay);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(eta);
}

void LarsOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, momentum);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, weight_decay);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, eta);
}

double LarsOptions::get_lr() const { return lr(); }

void LarsOptions::set_lr(const double lr) { this->lr(lr); }

void LarsParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum_buffer);
}

void LarsParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, momentum_buffer);
}

Lars::Lars(std::vector<torch::optim::OptimizerParamGroup> param_groups,
           LarsOptions defaults)
    : Optimizer(std::move(param_groups),
                std::make_unique<LarsOptions>(defaults)) {
  TORCH_CHECK(defaults.lr() >= 0, "Invalid learning rate: ", defaults.lr());
  TORCH_CHECK(defaults.momentum() >= 0,
              "Invalid momentum value: ", defaults.momentum());
  TORCH_CHECK(defaults.weight_decay() >= 0,
              "Invalid weight_decay value: ", defaults.weight_decay());
  TORCH_CHECK(defaults.eta() >= 0, "Invalid eta value: ", defaults.eta());
}

Lars::Lars(std::vector<torch::Tensor> params, LarsOptions defaults)
    : Lars(
          std::vector<torch::optim::OptimizerParamGroup>{
              torch::optim::OptimizerParamGroup(std::move(params))},
          defaults) {}

torch::Tensor Lars::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const LarsOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      torch::Tensor update = p.grad();
      if (p.dim() != 1) {
        update = update.add(p, options.weight_decay());
        const torch::Tensor param_norm = p.norm();
        const torch::Tensor update_norm = update.norm();
        const torch::Tensor one = torch::ones_like(param_norm);
        const torch::Tensor trust = torch::where(
            param_norm > 0,
            torch::where(update_norm > 0,
                         options.eta() * param_norm / update_norm, one),
            one);
        update = update.mul(trust);
      }
      // LibTorch's optimisers key their state by the parameter's TensorImpl;
      // serialize() maps the keys through the parameter order on load.
      const std::string key = c10::guts::to_string(p.unsafeGetTensorImpl());
      auto found = state_.find(key);
      if (found == state_.end()) {
        auto state = std::make_unique<LarsParamState>();
        state->momentum_buffer(torch::zeros_like(p));
        found = state_.emplace(key, std::move(state)).first;
      }
      torch::Tensor& buffer =
          static_cast<LarsParamState&>(*found->second).momentum_buffer();
      buffer.mul_(options.momentum()).add_(update);
      p.add_(buffer, -options.lr());
    }
  }
  return loss;
}

void Lars::save(torch::serialize::OutputArchive& archive) const {
  torch::optim::serialize<LarsParamState, LarsOptions>(archive, *this);
}

void Lars::load(torch::serialize::InputArchive& archive) {
  torch::optim::serialize<LarsParamState, LarsOptions>(archive, *this);
}

}  // namespace sslsweep
