// Tests of the optimisers and the learning-rate schedule (worker/trainer/
// optimizer.h, lars.h): LearningRateAt at its landmarks, LARS against
// numbers computed by hand, the options MakeOptimizer passes on, and the
// LARS state through a save/load round trip.

#include <cmath>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/trainer/lars.h"
#include "worker/trainer/optimizer.h"
#include "worker/trial_config.h"

namespace sslsweep {
namespace {

using ::testing::DoubleNear;
using ::testing::HasSubstr;
using ::testing::Pointwise;

constexpr double kPi = 3.14159265358979323846;

// ---- LearningRateAt ---------------------------------------------------------

TEST(LearningRateAtTest, WarmUpThenCosine) {
  const int64_t total = 100;
  const int64_t warmup = 20;
  const double peak = 0.8;
  EXPECT_DOUBLE_EQ(LearningRateAt(0, total, warmup, peak), peak / 21);
  EXPECT_DOUBLE_EQ(LearningRateAt(9, total, warmup, peak), peak * 10 / 21);
  EXPECT_DOUBLE_EQ(LearningRateAt(19, total, warmup, peak), peak * 20 / 21);
  // The end of the warm-up is the peak, where the cosine starts.
  EXPECT_DOUBLE_EQ(LearningRateAt(20, total, warmup, peak), peak);
  // Halfway through the cosine's 80 steps.
  EXPECT_DOUBLE_EQ(LearningRateAt(60, total, warmup, peak), peak / 2);
  // The last step: one step short of 0.
  EXPECT_DOUBLE_EQ(LearningRateAt(99, total, warmup, peak),
                   peak * 0.5 * (1 + std::cos(kPi * 79 / 80)));
  EXPECT_GT(LearningRateAt(99, total, warmup, peak), 0.0);
  EXPECT_LT(LearningRateAt(99, total, warmup, peak), 1e-3 * peak);
}

TEST(LearningRateAtTest, WithoutWarmUpIsThePlainCosine) {
  EXPECT_DOUBLE_EQ(LearningRateAt(0, 10, 0, 0.5), 0.5);
  EXPECT_DOUBLE_EQ(LearningRateAt(5, 10, 0, 0.5), 0.25);
  EXPECT_DOUBLE_EQ(LearningRateAt(9, 10, 0, 0.5),
                   0.5 * 0.5 * (1 + std::cos(kPi * 9 / 10)));
}

TEST(LearningRateAtTest, IsMonotoneOnEachSide) {
  double previous = 0;
  for (int64_t step = 0; step < 50; ++step) {
    const double lr = LearningRateAt(step, 50, 10, 1.0);
    if (step <= 10) {
      EXPECT_GT(lr, previous) << step;
    } else {
      EXPECT_LT(lr, previous) << step;
    }
    previous = lr;
  }
}

// ---- LARS by hand -----------------------------------------------------------

struct TwoParameters {
  torch::Tensor weight;  // 2-D: decayed and trust-scaled
  torch::Tensor bias;    // 1-D: neither
};

TwoParameters MakeParameters() {
  TwoParameters p;
  p.weight = torch::tensor({3.0, 0.0, 0.0, 4.0}, torch::kFloat64)
                 .reshape({2, 2})
                 .requires_grad_();
  p.bias = torch::tensor({1.0, -2.0}, torch::kFloat64).requires_grad_();
  return p;
}

void SetGradients(TwoParameters& p) {
  p.weight.mutable_grad() =
      torch::tensor({0.3, 0.0, 0.0, 0.4}, torch::kFloat64).reshape({2, 2});
  p.bias.mutable_grad() = torch::tensor({0.5, 0.25}, torch::kFloat64);
}

LarsOptions HandOptions() {
  return LarsOptions(0.5).momentum(0.9).weight_decay(0.1).eta(0.02);
}

std::vector<double> Values(const torch::Tensor& t) {
  const torch::Tensor flat = t.detach().reshape({-1}).contiguous();
  return std::vector<double>(flat.data_ptr<double>(),
                             flat.data_ptr<double>() + flat.numel());
}

TEST(LarsTest, OneStepByHand) {
  TwoParameters p = MakeParameters();
  Lars lars(std::vector<torch::Tensor>{p.weight, p.bias}, HandOptions());
  SetGradients(p);
  lars.step();
  // Weight: g = [[.3, 0], [0, .4]] + 0.1 * [[3, 0], [0, 4]] = [[.6, 0],
  // [0, .8]], |g| = 1, |w| = 5, trust = 0.02 * 5 / 1 = 0.1, so the update
  // is [[.06, 0], [0, .08]]; mu starts at 0, so mu = the update and
  // w = w - 0.5 * mu.
  const std::vector<double> w = Values(p.weight);
  EXPECT_NEAR(w[0], 3.0 - 0.5 * 0.06, 1e-15);
  EXPECT_EQ(w[1], 0.0);
  EXPECT_EQ(w[2], 0.0);
  EXPECT_NEAR(w[3], 4.0 - 0.5 * 0.08, 1e-15);
  // Bias: no decay, no trust ratio: b = b - 0.5 * g.
  EXPECT_EQ(Values(p.bias), (std::vector<double>{1.0 - 0.25, -2.0 - 0.125}));
}

TEST(LarsTest, SecondStepUsesMomentumAndTheNewNorms) {
  TwoParameters p = MakeParameters();
  Lars lars(std::vector<torch::Tensor>{p.weight, p.bias}, HandOptions());
  SetGradients(p);
  lars.step();
  SetGradients(p);
  lars.step();
  // After step 1: w = diag(2.97, 3.96), mu_w = diag(.06, .08),
  // b = (.75, -2.125), mu_b = (.5, .25).
  const double w0 = 2.97, w1 = 3.96;
  const double g0 = 0.3 + 0.1 * w0, g1 = 0.4 + 0.1 * w1;
  const double trust =
      0.02 * std::sqrt(w0 * w0 + w1 * w1) / std::sqrt(g0 * g0 + g1 * g1);
  const double mu0 = 0.9 * 0.06 + trust * g0;
  const double mu1 = 0.9 * 0.08 + trust * g1;
  const std::vector<double> w = Values(p.weight);
  EXPECT_NEAR(w[0], w0 - 0.5 * mu0, 1e-14);
  EXPECT_NEAR(w[3], w1 - 0.5 * mu1, 1e-14);
  const std::vector<double> b = Values(p.bias);
  EXPECT_NEAR(b[0], 0.75 - 0.5 * (0.9 * 0.5 + 0.5), 1e-15);
  EXPECT_NEAR(b[1], -2.125 - 0.5 * (0.9 * 0.25 + 0.25), 1e-15);
}

TEST(LarsTest, ZeroWeightGetsTrustOne) {
  torch::Tensor weight = torch::zeros({2, 2}, torch::kFloat64).requires_grad_();
  Lars lars(std::vector<torch::Tensor>{weight}, HandOptions());
  weight.mutable_grad() = torch::full({2, 2}, 0.5, torch::kFloat64);
  lars.step();
  // |w| = 0: the (undecayed, since w = 0) gradient is applied unscaled.
  EXPECT_EQ(Values(weight), std::vector<double>(4, -0.25));
}

TEST(LarsTest, SkipsParametersWithoutGradient) {
  TwoParameters p = MakeParameters();
  Lars lars(std::vector<torch::Tensor>{p.weight, p.bias}, HandOptions());
  p.bias.mutable_grad() = torch::tensor({0.5, 0.25}, torch::kFloat64);
  lars.step();
  EXPECT_EQ(Values(p.weight), (std::vector<double>{3, 0, 0, 4}));
  EXPECT_EQ(lars.state().size(), 1u);
}

TEST(LarsTest, StateRoundTripsThroughAnArchive) {
  TwoParameters a = MakeParameters();
  Lars first(std::vector<torch::Tensor>{a.weight, a.bias}, HandOptions());
  SetGradients(a);
  first.step();
  std::stringstream bytes;
  {
    torch::serialize::OutputArchive archive;
    first.save(archive);
    archive.save_to(bytes);
  }

  // A fresh optimiser over parameters equal to a's, as after a restart.
  TwoParameters b = MakeParameters();
  {
    torch::NoGradGuard no_grad;
    b.weight.copy_(a.weight);
    b.bias.copy_(a.bias);
  }
  Lars second(std::vector<torch::Tensor>{b.weight, b.bias}, HandOptions());
  torch::serialize::InputArchive archive;
  archive.load_from(bytes);
  second.load(archive);
  ASSERT_EQ(second.state().size(), 2u);
  const auto& buffer = static_cast<const LarsParamState&>(
      *second.state().at(c10::guts::to_string(b.weight.unsafeGetTensorImpl())));
  EXPECT_THAT(Values(buffer.momentum_buffer()),
              Pointwise(DoubleNear(1e-15), {0.06, 0.0, 0.0, 0.08}));

  SetGradients(a);
  first.step();
  SetGradients(b);
  second.step();
  EXPECT_TRUE(torch::equal(a.weight, b.weight));
  EXPECT_TRUE(torch::equal(a.bias, b.bias));
}

// ---- MakeOptimizer ---------------------------------------------------------

OptimConfig Config(const std::string& name) {
  OptimConfig config;
  config.name = name;
  config.lr = 0.3;
  config.momentum = 0.8;
  config.weight_decay = 0.01;
  config.lars_eta = 0.005;
  return config;
}

std::vector<torch::Tensor> SomeParameters() {
  return {torch::zeros({3, 2}).requires_grad_(),
          torch::zeros({3}).requires_grad_()};
}

TEST(MakeOptimizerTest, SgdGetsMomentumAndDecay) {
  auto optimizer = MakeOptimizer(Config("sgd"), SomeParameters());
  ASSERT_TRUE(optimizer.ok()) << optimizer.status();
  auto* sgd = dynamic_cast<torch::optim::SGD*>(optimizer->get());
  ASSERT_NE(sgd, nullptr);
  const auto& options = static_cast<const torch::optim::SGDOptions&>(
      sgd->param_groups().at(0).options());
  EXPECT_EQ(options.lr(), 0.3);
  EXPECT_EQ(options.momentum(), 0.8);
  EXPECT_EQ(options.weight_decay(), 0.01);
  EXPECT_FALSE(options.nesterov());
  EXPECT_EQ(sgd->param_groups().at(0).params().size(), 2u);
}

TEST(MakeOptimizerTest, AdamWGetsDecoupledDecay) {
  auto optimizer = MakeOptimizer(Config("adamw"), SomeParameters());
  ASSERT_TRUE(optimizer.ok()) << optimizer.status();
  auto* adamw = dynamic_cast<torch::optim::AdamW*>(optimizer->get());
  ASSERT_NE(adamw, nullptr);
  const auto& options = static_cast<const torch::optim::AdamWOptions&>(
      adamw->param_groups().at(0).options());
  EXPECT_EQ(options.lr(), 0.3);
  EXPECT_EQ(options.weight_decay(), 0.01);
  EXPECT_EQ(std::get<0>(options.betas()), 0.9);
  EXPECT_EQ(std::get<1>(options.betas()), 0.999);
}

TEST(MakeOptimizerTest, LarsGetsEtaMomentumAndDecay) {
  auto optimizer = MakeOptimizer(Config("lars"), SomeParameters());
  ASSERT_TRUE(optimizer.ok()) << optimizer.status();
  auto* lars = dynamic_cast<Lars*>(optimizer->get());
  ASSERT_NE(lars, nullptr);
  const auto& options =
      static_cast<const LarsOptions&>(lars->param_groups().at(0).options());
  EXPECT_EQ(options.lr(), 0.3);
  EXPECT_EQ(options.momentum(), 0.8);
  EXPECT_EQ(options.weight_decay(), 0.01);
  EXPECT_EQ(options.eta(), 0.005);
}

TEST(MakeOptimizerTest, RejectsUnknownNamesAndBadOptions) {
  auto unknown = MakeOptimizer(Config("lbfgs"), SomeParameters());
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(unknown.status().message(),
            "optim.name: 'lbfgs' is not one of: sgd, lars, adamw");
  OptimConfig negative = Config("lars");
  negative.lr = -1;
  auto bad = MakeOptimizer(negative, SomeParameters());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("Invalid learning rate"));
}

TEST(SetLearningRateTest, SetsEveryGroup) {
  torch::Tensor a = torch::zeros({2}).requires_grad_();
  torch::Tensor b = torch::zeros({2, 2}).requires_grad_();
  Lars lars({torch::optim::OptimizerParamGroup({a}),
             torch::optim::OptimizerParamGroup({b})},
            LarsOptions(0.1));
  SetLearningRate(lars, 0.025);
  ASSERT_EQ(lars.param_groups().size(), 2u);
  for (auto& group : lars.param_groups()) {
    EXPECT_EQ(group.options().get_lr(), 0.025);
  }
}

}  // namespace
}  // namespace sslsweep
