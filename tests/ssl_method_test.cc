// Tests of the SSL methods (worker/trainer/ssl_method.h): each loss against
// its published formula worked out with loops over plain numbers, the
// projector's layers and taps, BYOL's target network and EMA, and every
// method training a tiny backbone through the one interface.

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
using Matrix = std::vector<std::vector<double>>;

torch::Tensor ToTensor(const Matrix& m) {
  torch::Tensor t = torch::empty(
      {static_cast<int64_t>(m.size()), static_cast<int64_t>(m[0].size())},
      torch::kFloat64);
  for (size_t i = 0; i < m.size(); ++i) {
    for (size_t j = 0; j < m[i].size(); ++j) t[i][j] = m[i][j];
  }
  return t;
}

Matrix Centred(const Matrix& m) {
  Matrix c = m;
  for (size_t j = 0; j < m[0].size(); ++j) {
    double mean = 0;
    for (const auto& row : m) mean += row[j];
    mean /= m.size();
    for (auto& row : c) row[j] -= mean;
  }
  return c;
}

double Dot(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += a[i] * b[i];
  return sum;
}

double Cosine(const std::vector<double>& a, const std::vector<double>& b) {
  return Dot(a, b) / std::sqrt(Dot(a, a) * Dot(b, b));
}

// Two views of four samples in three dimensions, used by every loss.
const Matrix kX = {
    {0.1, 2.0, -1.0}, {0.3, -1.5, 0.5}, {-0.2, 0.7, 1.5}, {0.4, -0.9, -0.3}};
const Matrix kY = {
    {0.0, 1.0, 0.2}, {0.5, -2.5, 0.1}, {-0.1, 1.7, 0.9}, {0.2, 0.3, -0.6}};

// ---- VICReg ----------------------------------------------------------------

double HingeOnStdByLoops(const Matrix& m) {
  const Matrix c = Centred(m);
  const size_t n = m.size(), d = m[0].size();
  double sum = 0;
  for (size_t j = 0; j < d; ++j) {
    double var = 0;
    for (size_t i = 0; i < n; ++i) var += c[i][j] * c[i][j];
    var /= (n - 1);
    sum += std::max(0.0, 1.0 - std::sqrt(var + 1e-4));
  }
  return sum / d;
}

double OffDiagonalByLoops(const Matrix& m) {
  const Matrix c = Centred(m);
  const size_t n = m.size(), d = m[0].size();
  double sum = 0;
  for (size_t j = 0; j < d; ++j) {
    for (size_t k = 0; k < d; ++k) {
      if (j == k) continue;
      double cov = 0;
      for (size_t i = 0; i < n; ++i) cov += c[i][j] * c[i][k];
      cov /= (n - 1);
      sum += cov * cov;
    }
  }
  return sum / d;
}

TEST(VicregLossTest, MatchesLoopsTermByTerm) {
  // Column 0 varies little (std < 1, the hinge is active), column 1 a lot
  // (std > 1, the hinge is zero).
  const Matrix& x = kX;
  const Matrix& y = kY;
  double mse = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    for (size_t j = 0; j < x[0].size(); ++j) {
      mse += (x[i][j] - y[i][j]) * (x[i][j] - y[i][j]);
    }
  }
  mse /= x.size() * x[0].size();
  const double variance = HingeOnStdByLoops(x) / 2 + HingeOnStdByLoops(y) / 2;
  const double covariance = OffDiagonalByLoops(x) + OffDiagonalByLoops(y);
  ASSERT_GT(variance, 0.1);  // the case exercises the hinge
  ASSERT_GT(covariance, 0.1);

  const VicregLossOptions options{2.0, 3.0, 5.0};
  const VicregLossTerms terms = VicregLoss(ToTensor(x), ToTensor(y), options);
  EXPECT_NEAR(terms.invariance.item<double>(), mse, 1e-12);
  EXPECT_NEAR(terms.variance.item<double>(), variance, 1e-12);
  EXPECT_NEAR(terms.covariance.item<double>(), covariance, 1e-12);
  EXPECT_NEAR(terms.total.item<double>(),
              2.0 * mse + 3.0 * variance + 5.0 * covariance, 1e-11);
}

TEST(VicregLossTest, DefaultsAreTheOfficialCoefficients) {
  const VicregLossOptions options;
  EXPECT_EQ(options.sim_coeff, 25.0);
  EXPECT_EQ(options.std_coeff, 25.0);
  EXPECT_EQ(options.cov_coeff, 1.0);
  EXPECT_EQ(options.std_epsilon, 1e-4);
}

TEST(VicregLossTest, RejectsMismatchedShapes) {
  EXPECT_THROW(VicregLoss(torch::zeros({4, 3}), torch::zeros({4, 2})),
               c10::Error);
  EXPECT_THROW(VicregLoss(torch::zeros({1, 3}), torch::zeros({1, 3})),
               c10::Error);
}

// ---- SimCLR NT-Xent --------------------------------------------------------

double NtXentByLoops(const Matrix& z1, const Matrix& z2, double temperature) {
  Matrix u = z1;
  u.insert(u.end(), z2.begin(), z2.end());
  const size_t n = z1.size(), two_n = u.size();
  double sum = 0;
  for (size_t i = 0; i < two_n; ++i) {
    const size_t positive = i < n ? i + n : i - n;
    double partition = 0;
    for (size_t k = 0; k < two_n; ++k) {
      if (k != i) partition += std::exp(Cosine(u[i], u[k]) / temperature);
    }
    sum += -Cosine(u[i], u[positive]) / temperature + std::log(partition);
  }
  return sum / two_n;
}

TEST(NtXentLossTest, TwoPairsByHand) {
  // Samples a, b and their second views a' = a, b' = b, with a . b = 0. For
  // each of the four, the logits over the other three are 0, 1/T, 0 with
  // the positive at 1/T = 2: loss = -2 + log(1 + e^2 + 1).
  const Matrix z = {{1.0, 0.0}, {0.0, 1.0}};
  EXPECT_NEAR(NtXentLoss(ToTensor(z), ToTensor(z), 0.5).item<double>(),
              std::log(2.0 + std::exp(2.0)) - 2.0, 1e-12);
  EXPECT_NEAR(std::log(2.0 + std::exp(2.0)) - 2.0, 0.2395447, 1e-6);
}

TEST(NtXentLossTest, MatchesLoops) {
  for (const double temperature : {0.5, 0.1, 2.0}) {
    SCOPED_TRACE(temperature);
    EXPECT_NEAR(
        NtXentLoss(ToTensor(kX), ToTensor(kY), temperature).item<double>(),
        NtXentByLoops(kX, kY, temperature), 1e-12);
  }
}

TEST(NtXentLossTest, IgnoresTheNorm) {
  EXPECT_NEAR(NtXentLoss(ToTensor(kX) * 7.0, ToTensor(kY), 0.5).item<double>(),
              NtXentByLoops(kX, kY, 0.5), 1e-12);
}

TEST(NtXentLossTest, RejectsBadArguments) {
  EXPECT_THROW(NtXentLoss(torch::ones({4, 3}), torch::ones({4, 2}), 0.5),
               c10::Error);
  EXPECT_THROW(NtXentLoss(torch::ones({4, 3}), torch::ones({4, 3}), 0.0),
               c10::Error);
}

// ---- Barlow Twins ----------------------------------------------------------

// Standardised per column with the biased variance, as BatchNorm1d.
Matrix StandardisedByLoops(const Matrix& m) {
  Matrix s = Centred(m);
  for (size_t j = 0; j < m[0].size(); ++j) {
    double var = 0;
    for (const auto& row : s) var += row[j] * row[j];
    var /= m.size();
    for (auto& row : s) row[j] /= std::sqrt(var + 1e-5);
  }
  return s;
}

TEST(BarlowTwinsLossTest, MatchesLoops) {
  const Matrix a = StandardisedByLoops(kX);
  const Matrix b = StandardisedByLoops(kY);
  const size_t n = a.size(), d = a[0].size();
  double on_diagonal = 0, off_diagonal = 0;
  for (size_t i = 0; i < d; ++i) {
    for (size_t j = 0; j < d; ++j) {
      double c = 0;
      for (size_t k = 0; k < n; ++k) c += a[k][i] * b[k][j];
      c /= n;
      if (i == j) {
        on_diagonal += (1 - c) * (1 - c);
      } else {
        off_diagonal += c * c;
      }
    }
  }
  ASSERT_GT(on_diagonal, 0.1);
  ASSERT_GT(off_diagonal, 0.1);

  BarlowTwinsLossOptions options;
  options.lambda = 0.25;
  const BarlowTwinsLossTerms terms =
      BarlowTwinsLoss(ToTensor(kX), ToTensor(kY), options);
  EXPECT_NEAR(terms.on_diagonal.item<double>(), on_diagonal, 1e-12);
  EXPECT_NEAR(terms.off_diagonal.item<double>(), off_diagonal, 1e-12);
  EXPECT_NEAR(terms.total.item<double>(), on_diagonal + 0.25 * off_diagonal,
              1e-12);
  EXPECT_EQ(BarlowTwinsLossOptions().lambda, 5e-3);
}

TEST(BarlowTwinsLossTest, IdenticalDecorrelatedViewsCostNothing) {
  // Columns of zero mean, equal variance and zero covariance: c = I.
  const Matrix z = {{1, 1}, {1, -1}, {-1, 1}, {-1, -1}};
  const BarlowTwinsLossTerms terms = BarlowTwinsLoss(ToTensor(z), ToTensor(z));
  EXPECT_NEAR(terms.off_diagonal.item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(terms.on_diagonal.item<double>(), 0.0, 1e-9);  // eps 1e-5
}

TEST(BarlowTwinsLossTest, RejectsBadShapes) {
  EXPECT_THROW(BarlowTwinsLoss(torch::ones({4, 3}), torch::ones({3, 3})),
               c10::Error);
  EXPECT_THROW(BarlowTwinsLoss(torch::ones({1, 3}), torch::ones({1, 3})),
               c10::Error);
}

// ---- BYOL regression -------------------------------------------------------

TEST(ByolRegressionLossTest, MatchesLoops) {
  double sum = 0;
  for (size_t i = 0; i < kX.size(); ++i) sum += 2 - 2 * Cosine(kX[i], kY[i]);
  EXPECT_NEAR(ByolRegressionLoss(ToTensor(kX), ToTensor(kY)).item<double>(),
              sum / kX.size(), 1e-12);
}

TEST(ByolRegressionLossTest, IdenticalIsZeroOppositeIsFourPerDirection) {
  const torch::Tensor p = ToTensor(kX);
  EXPECT_NEAR(ByolRegressionLoss(p, 3.0 * p).item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(ByolRegressionLoss(p, -p).item<double>(), 4.0, 1e-12);
  // Symmetrised as the method does: two directions, 8 at the worst.
  EXPECT_NEAR(
      (ByolRegressionLoss(p, -p) + ByolRegressionLoss(-p, p)).item<double>(),
      8.0, 1e-12);
}

// ---- Projector -------------------------------------------------------------

TEST(ProjectorTest, LayersShapesAndTaps) {
  const torch::Tensor embedding = torch::rand({5, 16});
  // Per layer count: parameters (Linear weights and biases, BN weights and
  // biases; the last Linear has no bias).
  const std::vector<size_t> parameter_counts = {1, 5, 9};
  for (int64_t layers = 1; layers <= 3; ++layers) {
    SCOPED_TRACE(layers);
    Projector projector(ProjectorOptions{16, 32, 8, layers});
    EXPECT_EQ(projector->parameters().size(), parameter_counts[layers - 1]);
    projector->eval();
    const auto taps = projector->ForwardTaps(embedding);
    ASSERT_EQ(taps.size(), static_cast<size_t>(layers));
    std::vector<std::string> names;
    for (int64_t i = 0; i < layers; ++i) {
      names.push_back(taps[i].key());
      EXPECT_EQ(taps[i].key(), "projector" + std::to_string(i + 1));
      const int64_t width = i + 1 == layers ? 8 : 32;
      EXPECT_EQ(taps[i].value().sizes(), (std::vector<int64_t>{5, width}));
      if (i + 1 < layers) {
        EXPECT_GE(taps[i].value().min().item<float>(), 0);  // after ReLU
      }
    }
    EXPECT_EQ(names, projector->tap_names());
    EXPECT_TRUE(
        torch::equal(taps[layers - 1].value(), projector->forward(embedding)));
  }
}

TEST(ProjectorTest, RejectsZeroLayers) {
  EXPECT_THROW(Projector(ProjectorOptions{16, 32, 8, 0}), c10::Error);
}

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
