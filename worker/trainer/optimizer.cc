#include "worker/trainer/optimizer.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "worker/trainer/lars.h"

namespace sslsweep {
namespace {

constexpr double kPi = 3.14159265358979323846;

}  // namespace

absl::Status CheckOptimizerName(const OptimConfig& config) {
  if (config.name == "sgd" || config.name == "lars" || config.name == "adamw") {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "optim.name: '", config.name, "' is not one of: sgd, lars, adamw"));
}

absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> MakeOptimizer(
    const OptimConfig& config, std::vector<torch::Tensor> parameters) {
  if (auto s = CheckOptimizerName(config); !s.ok()) return s;
  try {
    if (config.name == "sgd") {
      return std::make_unique<torch::optim::SGD>(
          std::move(parameters), torch::optim::SGDOptions(config.lr)
                                     .momentum(config.momentum)
                                     .weight_decay(config.weight_decay));
    }
    if (config.name == "lars") {
      return std::make_unique<Lars>(std::move(parameters),
                                    LarsOptions(config.lr)
                                        .momentum(config.momentum)
                                        .weight_decay(config.weight_decay)
                                        .eta(config.lars_eta));
    }
    return std::make_unique<torch::optim::AdamW>(
        std::move(parameters),
        torch::optim::AdamWOptions(config.lr).weight_decay(
            config.weight_decay));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(
        "optim: LibTorch rejected the options: ", e.what_without_backtrace()));
  }
}

double LearningRateAt(int64_t step, int64_t total_steps, int64_t warmup_steps,
                      double peak) {
  if (step < warmup_steps) {
    return peak * static_cast<double>(step + 1) /
           static_cast<double>(warmup_steps + 1);
  }
  const double progress = static_cast<double>(step - warmup_steps) /
                          static_cast<double>(total_steps - warmup_steps);
  return peak * 0.5 * (1.0 + std::cos(kPi * progress));
}

void SetLearningRate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

}  // namespace sslsweep
