// Tests of the SSL methods behind one interface (worker/trainer/ssl_method.h):
// term names and weights, projector taps, every method training a tiny
// backbone, autocast, the factory's errors, and BYOL's target network and
// EMA. ssl_loss_test.cc checks each loss against its published formula.

#include "worker/trainer/ssl_method.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/trainer/backbone.h"
#include "worker/trainer/barlow_twins_loss.h"
#include "worker/trainer/byol.h"
#include "worker/trainer/byol_loss.h"
#include "worker/trainer/projector.h"
#include "worker/trainer/simclr_loss.h"
#include "worker/trainer/vicreg_loss.h"
#include "worker/trial_config.h"

namespace sslsweep {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ---- Methods through the interface -----------------------------------------

// Flatten - Linear - BatchNorm1d - ReLU: a backbone with buffers to copy.
class TinyBackbone final : public Backbone {
 public:
  TinyBackbone(int64_t in, int64_t dim)
      : linear_(register_module("linear", torch::nn::Linear(in, dim))),
        norm_(register_module("norm", torch::nn::BatchNorm1d(dim))),
        dim_(dim) {}

  torch::OrderedDict<std::string, torch::Tensor> ForwardTaps(
      const torch::Tensor& images) override {
    torch::OrderedDict<std::string, torch::Tensor> taps;
    taps.insert("embedding", forward(images));
    return taps;
  }
  torch::Tensor forward(const torch::Tensor& images) override {
    return torch::relu(norm_(linear_(images.flatten(1))));
  }
  int64_t embedding_dim() const override { return dim_; }
  std::vector<std::string> tap_names() const override { return {"embedding"}; }

 private:
  torch::nn::Linear linear_;
  torch::nn::BatchNorm1d norm_;
  const int64_t dim_;
};

constexpr int64_t kPixels = 16;  // images [B, 1, 4, 4]
constexpr int64_t kEmbedding = 8;

std::shared_ptr<Backbone> MakeTinyBackbone() {
  return std::make_shared<TinyBackbone>(kPixels, kEmbedding);
}

ProjectorConfig SmallProjector() {
  ProjectorConfig projector;
  projector.layers = 2;
  projector.hidden = 16;
  projector.out = 8;
  return projector;
}

std::shared_ptr<SslMethod> Make(const MethodConfig& method,
                                Backbone& backbone) {
  auto made =
      MakeSslMethod(method, SmallProjector(), backbone, MakeTinyBackbone);
  EXPECT_TRUE(made.ok()) << made.status();
  return made.ok() ? *made : nullptr;
}

MethodConfig Method(const std::string& name) {
  MethodConfig method;
  method.name = name;
  method.predictor_hidden = 16;
  return method;
}

bool Contains(const std::vector<torch::Tensor>& tensors,
              const torch::Tensor& t) {
  return std::any_of(tensors.begin(), tensors.end(), [&](const auto& u) {
    return u.unsafeGetTensorImpl() == t.unsafeGetTensorImpl();
  });
}

const std::vector<std::string> kMethods = {"vicreg", "simclr", "byol",
                                           "barlow_twins"};

TEST(SslMethodTest, TermNames) {
  torch::manual_seed(1);
  auto backbone = MakeTinyBackbone();
  const std::vector<std::vector<std::string>> expected = {
      {"invariance", "variance", "covariance"},
      {"nt_xent"},
      {"regression"},
      {"on_diagonal", "off_diagonal"}};
  for (size_t m = 0; m < kMethods.size(); ++m) {
    SCOPED_TRACE(kMethods[m]);
    auto method = Make(Method(kMethods[m]), *backbone);
    ASSERT_NE(method, nullptr);
    EXPECT_EQ(method->term_names(), expected[m]);
    const LossTerms loss = method->Loss(*backbone, torch::rand({6, 1, 4, 4}),
                                        torch::rand({6, 1, 4, 4}));
    std::vector<std::string> names;
    for (const auto& [name, value] : loss.terms) {
      names.push_back(name);
      EXPECT_EQ(value.dim(), 0);
    }
    EXPECT_EQ(names, expected[m]);
    EXPECT_EQ(loss.total.dim(), 0);
  }
}

TEST(SslMethodTest, TotalWeighsTheTermsByTheConfig) {
  torch::manual_seed(2);
  auto backbone = MakeTinyBackbone();
  const torch::Tensor v1 = torch::rand({6, 1, 4, 4});
  const torch::Tensor v2 = torch::rand({6, 1, 4, 4});

  MethodConfig vicreg = Method("vicreg");
  vicreg.sim_coeff = 2;
  vicreg.std_coeff = 3;
  vicreg.cov_coeff = 5;
  LossTerms loss = Make(vicreg, *backbone)->Loss(*backbone, v1, v2);
  EXPECT_NEAR(loss.total.item<double>(),
              2 * loss.terms[0].second.item<double>() +
                  3 * loss.terms[1].second.item<double>() +
                  5 * loss.terms[2].second.item<double>(),
              1e-4);

  MethodConfig barlow = Method("barlow_twins");
  barlow.barlow_lambda = 0.5;
  loss = Make(barlow, *backbone)->Loss(*backbone, v1, v2);
  EXPECT_NEAR(loss.total.item<double>(),
              loss.terms[0].second.item<double>() +
                  0.5 * loss.terms[1].second.item<double>(),
              1e-4);
}

TEST(SslMethodTest, ProjectorTapsFollowTheConfig) {
  torch::manual_seed(3);
  auto backbone = MakeTinyBackbone();
  for (const std::string& name : kMethods) {
    SCOPED_TRACE(name);
    auto method = Make(Method(name), *backbone);
    ASSERT_NE(method, nullptr);
    method->eval();
    const auto taps = method->ProjectorTaps(torch::rand({3, kEmbedding}));
    ASSERT_EQ(taps.size(), 2u);
    EXPECT_EQ(taps[0].key(), "projector1");
    EXPECT_EQ(taps[0].value().sizes(), (std::vector<int64_t>{3, 16}));
    EXPECT_EQ(taps[1].key(), "projector2");
    EXPECT_EQ(taps[1].value().sizes(), (std::vector<int64_t>{3, 8}));
    EXPECT_THAT(method->projector_tap_names(),
                ElementsAre("projector1", "projector2"));
  }
}

// Every method, through the interface alone: the loss reaches the backbone,
// and a few SGD steps on one fixed pair of views lower it.
TEST(SslMethodTest, EveryMethodTrainsTheBackbone) {
  for (const std::string& name : kMethods) {
    SCOPED_TRACE(name);
    torch::manual_seed(4);
    auto backbone = MakeTinyBackbone();
    auto method = Make(Method(name), *backbone);
    ASSERT_NE(method, nullptr);
    backbone->train();
    method->train();
    const torch::Tensor images = torch::rand({16, 1, 4, 4});
    const torch::Tensor view1 = images + 0.05 * torch::randn_like(images);
    const torch::Tensor view2 = images + 0.05 * torch::randn_like(images);

    std::vector<torch::Tensor> parameters = backbone->parameters();
    for (const torch::Tensor& p : method->TrainableParameters()) {
      parameters.push_back(p);
    }
    torch::optim::SGD sgd(parameters,
                          torch::optim::SGDOptions(0.05).momentum(0.9));
    constexpr int64_t kSteps = 30;
    double first = 0, last = 0;
    for (int64_t step = 0; step < kSteps; ++step) {
      sgd.zero_grad();
      const LossTerms loss = method->Loss(*backbone, view1, view2);
      loss.total.backward();
      if (step == 0) {
        first = loss.total.item<double>();
        for (const torch::Tensor& p : backbone->parameters()) {
          ASSERT_TRUE(p.grad().defined());
          EXPECT_GT(p.grad().abs().sum().item<double>(), 0);
        }
      }
      last = loss.total.item<double>();
      sgd.step();
      method->AfterStep(*backbone, step, kSteps);
    }
    EXPECT_LT(last, 0.9 * first) << "first " << first << " last " << last;
  }
}

// CPU autocast on for its lifetime.
class CpuAutocast {
 public:
  CpuAutocast() { at::autocast::set_cpu_enabled(true); }
  ~CpuAutocast() {
    at::autocast::set_cpu_enabled(false);
    at::autocast::clear_cache();
  }
};

TEST(SslMethodTest, LossIsFloat32UnderAutocast) {
  torch::manual_seed(5);
  auto backbone = MakeTinyBackbone();
  const torch::Tensor v1 = torch::rand({6, 1, 4, 4});
  const torch::Tensor v2 = torch::rand({6, 1, 4, 4});
  for (const std::string& name : kMethods) {
    SCOPED_TRACE(name);
    auto method = Make(Method(name), *backbone);
    ASSERT_NE(method, nullptr);
    const CpuAutocast autocast;
    ASSERT_EQ(backbone->forward(v1).scalar_type(), torch::kBFloat16)
        << "the heads must run in bf16 for this test to mean anything";
    const LossTerms loss = method->Loss(*backbone, v1, v2);
    EXPECT_TRUE(at::autocast::is_cpu_enabled());  // restored after the loss
    EXPECT_EQ(loss.total.scalar_type(), torch::kFloat32);
    for (const auto& [term, value] : loss.terms) {
      EXPECT_EQ(value.scalar_type(), torch::kFloat32) << term;
    }
    EXPECT_TRUE(std::isfinite(loss.total.item<double>()));
  }
}

TEST(SslMethodTest, FactoryRejectsBadSettings) {
  auto backbone = MakeTinyBackbone();
  auto made = MakeSslMethod(Method("moco"), SmallProjector(), *backbone,
                            MakeTinyBackbone);
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(made.status().message(), HasSubstr("method.name: 'moco'"));
  EXPECT_THAT(made.status().message(),
              HasSubstr("vicreg, simclr, byol, barlow_twins"));

  MethodConfig simclr = Method("simclr");
  simclr.temperature = 0;
  made = MakeSslMethod(simclr, SmallProjector(), *backbone, MakeTinyBackbone);
  EXPECT_THAT(made.status().message(), HasSubstr("method.temperature"));

  MethodConfig byol = Method("byol");
  byol.ema_momentum = 1.5;
  made = MakeSslMethod(byol, SmallProjector(), *backbone, MakeTinyBackbone);
  EXPECT_THAT(made.status().message(), HasSubstr("method.ema_momentum"));
  made = MakeSslMethod(Method("byol"), SmallProjector(), *backbone, nullptr);
  EXPECT_EQ(made.status().code(), absl::StatusCode::kInvalidArgument);

  ProjectorConfig projector = SmallProjector();
  projector.layers = 0;
  made =
      MakeSslMethod(Method("vicreg"), projector, *backbone, MakeTinyBackbone);
  EXPECT_THAT(made.status().message(), HasSubstr("projector"));
}

// ---- BYOL target network ---------------------------------------------------

TEST(ByolTest, MomentumScheduleRisesOnACosineToOne) {
  EXPECT_DOUBLE_EQ(ByolTargetMomentum(0.996, 0, 100), 0.996);
  EXPECT_DOUBLE_EQ(ByolTargetMomentum(0.996, 50, 100), 0.998);
  EXPECT_DOUBLE_EQ(ByolTargetMomentum(0.996, 100, 100), 1.0);
  EXPECT_DOUBLE_EQ(ByolTargetMomentum(0.996, 150, 100), 1.0);
  EXPECT_NEAR(ByolTargetMomentum(0.9, 25, 100),
              1 - 0.1 * (std::cos(M_PI / 4) + 1) / 2, 1e-15);
}

// The online network's parameters (backbone, then projector) and, at the
// same positions, their copies in BYOL's target network.
struct Pairs {
  std::vector<torch::Tensor> online;
  std::vector<torch::Tensor> target;
};

Pairs ParameterPairs(SslMethod& method, Backbone& backbone) {
  Pairs pairs;
  const auto own = method.named_parameters();
  for (const auto& item : backbone.named_parameters()) {
    pairs.online.push_back(item.value());
    pairs.target.push_back(own["target_backbone." + item.key()]);
  }
  for (const auto& item : own) {
    if (item.key().rfind("projector.", 0) == 0) {
      pairs.online.push_back(item.value());
      pairs.target.push_back(own["target_" + item.key()]);
    }
  }
  return pairs;
}

TEST(ByolTest, TargetStartsAsACopyAndGetsNoGradient) {
  torch::manual_seed(6);
  auto backbone = MakeTinyBackbone();
  // Running statistics that differ from a fresh module's, to see them copied.
  backbone->train();
  backbone->forward(torch::rand({8, 1, 4, 4}));
  auto method = Make(Method("byol"), *backbone);
  ASSERT_NE(method, nullptr);
  auto* byol = dynamic_cast<ByolMethod*>(method.get());
  ASSERT_NE(byol, nullptr);

  const Pairs pairs = ParameterPairs(*method, *backbone);
  // Backbone: Linear and BN weights and biases; projector: Linear-BN, Linear.
  ASSERT_EQ(pairs.online.size(), 4u + 5u);
  for (size_t i = 0; i < pairs.online.size(); ++i) {
    EXPECT_TRUE(torch::equal(pairs.online[i], pairs.target[i])) << i;
    EXPECT_NE(pairs.online[i].data_ptr(), pairs.target[i].data_ptr()) << i;
    EXPECT_FALSE(pairs.target[i].requires_grad()) << i;
  }
  const auto online_buffers = backbone->named_buffers();
  const auto target_buffers = byol->target_backbone().named_buffers();
  ASSERT_EQ(online_buffers.size(), target_buffers.size());
  for (size_t i = 0; i < online_buffers.size(); ++i) {
    EXPECT_TRUE(
        torch::equal(online_buffers[i].value(), target_buffers[i].value()))
        << online_buffers[i].key();
  }

  const std::vector<torch::Tensor> trainable = method->TrainableParameters();
  // Projector (5), predictor: Linear-BN-Linear, all with biases (6).
  EXPECT_EQ(trainable.size(), 5u + 6u);
  for (const torch::Tensor& t : pairs.target) {
    EXPECT_FALSE(Contains(trainable, t));
  }
  for (const auto& item : method->named_parameters()) {
    EXPECT_EQ(Contains(trainable, item.value()),
              item.key().rfind("target_", 0) != 0)
        << item.key();
  }

  method->Loss(*backbone, torch::rand({6, 1, 4, 4}), torch::rand({6, 1, 4, 4}))
      .total.backward();
  for (const torch::Tensor& t : pairs.target) EXPECT_FALSE(t.grad().defined());
  for (const torch::Tensor& t : trainable) EXPECT_TRUE(t.grad().defined());
  for (const torch::Tensor& t : backbone->parameters()) {
    EXPECT_TRUE(t.grad().defined());
  }
}

TEST(ByolTest, AfterStepMovesTheTargetByTheScheduledAmount) {
  torch::manual_seed(7);
  auto backbone = MakeTinyBackbone();
  MethodConfig config = Method("byol");
  config.ema_momentum = 0.9;
  auto method = Make(config, *backbone);
  ASSERT_NE(method, nullptr);
  const Pairs pairs = ParameterPairs(*method, *backbone);
  {
    torch::NoGradGuard no_grad;
    for (const torch::Tensor& p : pairs.online) p.add_(torch::randn_like(p));
  }
  std::vector<torch::Tensor> before;
  for (const torch::Tensor& t : pairs.target) before.push_back(t.clone());

  // Step 0 of 10: tau = 0.9.
  method->AfterStep(*backbone, 0, 10);
  for (size_t i = 0; i < pairs.target.size(); ++i) {
    EXPECT_TRUE(torch::allclose(
        pairs.target[i], 0.9 * before[i] + 0.1 * pairs.online[i], 1e-5, 1e-6))
        << i;
  }
  // Step 10 of 10: tau = 1, the target stays.
  std::vector<torch::Tensor> moved;
  for (const torch::Tensor& t : pairs.target) moved.push_back(t.clone());
  method->AfterStep(*backbone, 10, 10);
  for (size_t i = 0; i < pairs.target.size(); ++i) {
    EXPECT_TRUE(torch::equal(pairs.target[i], moved[i])) << i;
  }
}

}  // namespace
}  // namespace sslsweep
