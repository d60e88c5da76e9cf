// Tests for sweep parsing, validation and expansion (coordinator/sweep_spec.h)
// of valid sweeps; the rejected ones are in sweep_spec_errors_test.cc.

#include "coordinator/sweep_spec.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/sweep_spec_test_util.h"
#include "worker/trial_config.h"

namespace sslsweep {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

SweepSpec MustParse(absl::string_view yaml) {
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(Text(yaml), kSource);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? *std::move(spec) : SweepSpec{};
}

std::vector<ExpandedTrial> MustExpand(absl::string_view yaml) {
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(Text(yaml), kSource);
  EXPECT_TRUE(spec.ok()) << spec.status();
  if (!spec.ok()) return {};
  absl::StatusOr<std::vector<ExpandedTrial>> trials = ExpandSweep(*spec);
  EXPECT_TRUE(trials.ok()) << trials.status();
  return trials.ok() ? *std::move(trials) : std::vector<ExpandedTrial>{};
}

std::vector<std::string> ValuesOf(const std::vector<ExpandedTrial>& trials,
                                  size_t param) {
  std::vector<std::string> values;
  for (const ExpandedTrial& trial : trials) values.push_back(trial.params[param].second);
  return values;
}

std::vector<double> NumbersOf(const std::vector<ExpandedTrial>& trials, size_t param) {
  std::vector<double> numbers;
  for (const std::string& text : ValuesOf(trials, param)) {
    double value = 0;
    EXPECT_TRUE(absl::SimpleAtod(text, &value)) << text;
    numbers.push_back(value);
  }
  return numbers;
}

TrialConfig ConfigOf(const ExpandedTrial& trial) {
  absl::StatusOr<TrialConfig> config = ParseTrialConfigText(trial.config_yaml, "config");
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : TrialConfig{};
}

// --- Grid expansion --------------------------------------------------------

TEST(SweepGridTest, OneParameterGivesOneTrialPerValue) {
  std::vector<ExpandedTrial> trials = MustExpand(R"(
method: grid
parameters:
  optim.lr:
    values: [1e-5, 0.001, 0.1]
)");
  ASSERT_EQ(trials.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(trials[i].index, i);
  EXPECT_THAT(trials[0].params, ElementsAre(Pair("optim.lr", "1e-5")));
  EXPECT_THAT(ValuesOf(trials, 0), ElementsAre("1e-5", "0.001", "0.1"));
  EXPECT_DOUBLE_EQ(ConfigOf(trials[0]).optim.lr, 1e-5);
  EXPECT_DOUBLE_EQ(ConfigOf(trials[2]).optim.lr, 0.1);
  EXPECT_EQ(trials[0].epochs, TrialConfig{}.epochs);
}

TEST(SweepGridTest, ProductOfThreeWithFirstDeclaredOutermost) {
  std::vector<ExpandedTrial> trials = MustExpand(R"(
method: grid
parameters:
  optim.weight_decay: {values: [0, 0.1]}
  backbone.depth: {values: [1, 2, 3]}
  optim.name: {values: [sgd, adamw]}
)");
  ASSERT_EQ(trials.size(), 12u);
  // Declaration order, not alphabetical.
  EXPECT_THAT(trials[0].params,
              ElementsAre(Pair("optim.weight_decay", "0"), Pair("backbone.depth", "1"),
                          Pair("optim.name", "sgd")));
  EXPECT_THAT(trials[1].params,
              ElementsAre(Pair("optim.weight_decay", "0"), Pair("backbone.depth", "1"),
                          Pair("optim.name", "adamw")));
  EXPECT_THAT(trials[2].params,
              ElementsAre(Pair("optim.weight_decay", "0"), Pair("backbone.depth", "2"),
                          Pair("optim.name", "sgd")));
  EXPECT_THAT(trials[11].params,
              ElementsAre(Pair("optim.weight_decay", "0.1"), Pair("backbone.depth", "3"),
                          Pair("optim.name", "adamw")));
  const TrialConfig last = ConfigOf(trials[11]);
  EXPECT_DOUBLE_EQ(last.optim.weight_decay, 0.1);
  EXPECT_EQ(last.backbone.depth, 3);
  EXPECT_EQ(last.optim.name, "adamw");
}

TEST(SweepGridTest, MixesValueAndValues) {
  std::vector<ExpandedTrial> trials = MustExpand(R"(
method: grid
parameters:
  epochs: {value: 2}
  backbone.width: {values: [16, 32, 64]}
)");
  ASSERT_EQ(trials.size(), 3u);
  EXPECT_THAT(ValuesOf(trials, 0), ElementsAre("2", "2", "2"));
  EXPECT_THAT(ValuesOf(trials, 1), ElementsAre("16", "32", "64"));
  for (const ExpandedTrial& trial : trials) EXPECT_EQ(trial.epochs, 2);
}

TEST(SweepGridTest, ExplicitConstantAndCategorical) {
  std::vector<ExpandedTrial> trials = MustExpand(R"(
method: grid
parameters:
  epochs: {distribution: constant, value: 4}
  optim.name: {distribution: categorical, values: [sgd, adamw]}
)");
  ASSERT_EQ(trials.size(), 2u);
  EXPECT_THAT(trials[1].params,
              ElementsAre(Pair("epochs", "4"), Pair("optim.name", "adamw")));
}

TEST(SweepGridTest, NoParametersGivesTheBaseTrial) {
  std::vector<ExpandedTrial> trials = MustExpand(R"(
method: grid
trial: {epochs: 3}
)");
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_TRUE(trials[0].params.empty());
  EXPECT_EQ(trials[0].epochs, 3);
}

TEST(SweepGridTest, NestedParametersMatchDottedPaths) {
  std::vector<ExpandedTrial> dotted = MustExpand(R"(
method: grid
parameters:
  optim.lr: {values: [0.1, 0.01]}
  optim.name: {values: [sgd]}
  backbone.depth: {values: [2, 3]}
)");
  std::vector<ExpandedTrial> nested = MustExpand(R"(
method: grid
parameters:
  optim:
    parameters:
      lr: {values: [0.1, 0.01]}
      name: {values: [sgd]}
  backbone.depth: {values: [2, 3]}
)");
  ASSERT_EQ(dotted.size(), 4u);
  ASSERT_EQ(nested.size(), dotted.size());
  for (size_t i = 0; i < dotted.size(); ++i) {
    EXPECT_EQ(nested[i].params, dotted[i].params);
    EXPECT_EQ(nested[i].config_yaml, dotted[i].config_yaml);
  }
}

TEST(SweepGridTest, BaseTrialUnderliesEveryTrial) {
  std::vector<ExpandedTrial> trials = MustExpand(R"(
method: grid
trial:
  epochs: 7
  optim: {name: sgd, momentum: 0.5}
  data: {dataset: synthetic, train_samples: 512}
parameters:
  optim.momentum: {values: [0.8, 0.9]}
)");
  ASSERT_EQ(trials.size(), 2u);
  for (const ExpandedTrial& trial : trials) {
    const TrialConfig config = ConfigOf(trial);
    EXPECT_EQ(trial.epochs, 7);
    EXPECT_EQ(config.optim.name, "sgd");
    EXPECT_EQ(config.data.dataset, "synthetic");
    EXPECT_EQ(config.data.train_samples, 512);
  }
  // Each trial starts from its own copy of the base.
  EXPECT_DOUBLE_EQ(ConfigOf(trials[0]).optim.momentum, 0.8);
  EXPECT_DOUBLE_EQ(ConfigOf(trials[1]).optim.momentum, 0.9);
}

TEST(SweepGridTest, EnumeratesIntUniformAndQUniform) {
  std::vector<ExpandedTrial> trials = MustExpand(R"(
method: grid
parameters:
  backbone.depth: {distribution: int_uniform, min: 1, max: 3}
  method.cov_coeff: {distribution: q_uniform, min: 0.1, max: 0.5, q: 0.1}
)");
  ASSERT_EQ(trials.size(), 15u);
  EXPECT_THAT(ValuesOf(trials, 0), ::testing::IsSupersetOf({"1", "2", "3"}));
  const std::vector<std::string> all_coeffs = ValuesOf(trials, 1);
  const std::vector<std::string> coeffs(all_coeffs.begin(), all_coeffs.begin() + 5);
  EXPECT_THAT(coeffs, ElementsAre("0.1", "0.2", "0.3", "0.4", "0.5"));
}

TEST(SweepGridTest, InfersIntUniformFromIntegerBounds) {
  std::vector<ExpandedTrial> trials = MustExpand(R"(
method: grid
parameters:
  backbone.depth: {min: 2, max: 4}
)");
  EXPECT_THAT(ValuesOf(trials, 0), ElementsAre("2", "3", "4"));
}

TEST(SweepGridTest, RunCapTakesTheFirstTrials) {
  std::vector<ExpandedTrial> trials = MustExpand(R"(
method: grid
run_cap: 5
parameters:
  backbone.depth: {values: [1, 2, 3]}
  backbone.width: {values: [8, 16, 32, 64]}
)");
  ASSERT_EQ(trials.size(), 5u);
  EXPECT_THAT(ValuesOf(trials, 0), ElementsAre("1", "1", "1", "1", "2"));
  EXPECT_THAT(ValuesOf(trials, 1), ElementsAre("8", "16", "32", "64", "8"));
}

TEST(SweepGridTest, RunCapCanCutAGridOverTheLimit) {
  std::vector<ExpandedTrial> trials = MustExpand(R"(
method: grid
run_cap: 3
parameters:
  seed: {distribution: int_uniform, min: 0, max: 1000000}
)");
  EXPECT_THAT(ValuesOf(trials, 0), ElementsAre("0", "1", "2"));
}

// --- Random expansion -------------------------------------------------------

constexpr char kRandomSweep[] = R"(
method: random
run_cap: 50
seed: %SEED%
parameters:
  optim.lr: {distribution: log_uniform_values, min: 1e-5, max: 1e-1}
  backbone.depth: {distribution: int_uniform, min: 1, max: 5}
  optim.name: {values: [sgd, adamw]}
  method.sim_coeff: {distribution: uniform, min: 5, max: 50}
)";

std::string WithSeed(absl::string_view seed) {
  std::string text(kRandomSweep);
  text.replace(text.find("%SEED%"), 6, std::string(seed));
  return text;
}

TEST(SweepRandomTest, SameSeedSameTrialsOtherSeedOtherTrials) {
  std::vector<ExpandedTrial> first = MustExpand(WithSeed("42"));
  std::vector<ExpandedTrial> again = MustExpand(WithSeed("42"));
  std::vector<ExpandedTrial> other = MustExpand(WithSeed("43"));
  ASSERT_EQ(first.size(), 50u);
  ASSERT_EQ(other.size(), 50u);
  for (size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(first[i].params, again[i].params);
    EXPECT_EQ(first[i].config_yaml, again[i].config_yaml);
  }
  EXPECT_NE(ValuesOf(first, 0), ValuesOf(other, 0));
  EXPECT_NE(ValuesOf(first, 3), ValuesOf(other, 3));
}

TEST(SweepRandomTest, RaisingRunCapKeepsEarlierTrials) {
  std::string longer = WithSeed("7");
  longer.replace(longer.find("run_cap: 50"), 11, "run_cap: 80");
  std::vector<ExpandedTrial> fifty = MustExpand(WithSeed("7"));
  std::vector<ExpandedTrial> eighty = MustExpand(longer);
  ASSERT_EQ(eighty.size(), 80u);
  for (size_t i = 0; i < fifty.size(); ++i) {
    EXPECT_EQ(fifty[i].params, eighty[i].params);
  }
}

TEST(SweepRandomTest, SamplesStayInsideTheirBounds) {
  std::vector<ExpandedTrial> trials = MustExpand(WithSeed("1"));
  for (double lr : NumbersOf(trials, 0)) {
    EXPECT_GE(lr, 1e-5);
    EXPECT_LE(lr, 1e-1);
  }
  std::set<std::string> depths;
  for (const std::string& depth : ValuesOf(trials, 1)) {
    int64_t value = 0;
    ASSERT_TRUE(absl::SimpleAtoi(depth, &value)) << depth << " is not an integer";
    EXPECT_GE(value, 1);
    EXPECT_LE(value, 5);
    depths.insert(depth);
  }
  EXPECT_EQ(depths.size(), 5u);  // 50 draws from 5 values
  const std::vector<std::string> drawn_names = ValuesOf(trials, 2);
  const std::set<std::string> names(drawn_names.begin(), drawn_names.end());
  EXPECT_THAT(names, ElementsAre("adamw", "sgd"));
  for (double coeff : NumbersOf(trials, 3)) {
    EXPECT_GE(coeff, 5.0);
    EXPECT_LE(coeff, 50.0);
  }
  // The params and the configuration agree.
  EXPECT_DOUBLE_EQ(ConfigOf(trials[0]).optim.lr, NumbersOf(trials, 0)[0]);
  EXPECT_EQ(ConfigOf(trials[0]).backbone.depth,
            static_cast<int64_t>(NumbersOf(trials, 1)[0]));
}

TEST(SweepRandomTest, LogUniformValuesIsUniformInLogSpace) {
  std::vector<ExpandedTrial> trials = MustExpand(R"(
method: random
run_cap: 400
parameters:
  optim.lr: {distribution: log_uniform_values, min: 1e-5, max: 1e-1}
)");
  // Half of log space lies below 1e-3; uniform sampling would put 1% there.
  const std::vector<double> lrs = NumbersOf(trials, 0);
  const double below =
      std::count_if(lrs.begin(), lrs.end(), [](double lr) { return lr < 1e-3; });
  EXPECT_GT(below / lrs.size(), 0.4);
  EXPECT_LT(below / lrs.size(), 0.6);
}

TEST(SweepRandomTest, LogUniformTakesExponents) {
  std::vector<ExpandedTrial> trials = MustExpand(R"(
method: random
run_cap: 100
parameters:
  optim.lr: {distribution: log_uniform, min: -9.2, max: -2.3}
  optim.weight_decay: {distribution: inv_log_uniform, min: 2.3, max: 9.2}
)");
  for (size_t param : {0, 1}) {
    for (double value : NumbersOf(trials, param)) {
      EXPECT_GE(value, std::exp(-9.2));
      EXPECT_LE(value, std::exp(-2.3));
    }
  }
}

TEST(SweepRandomTest, IntegerKeysGetIntegers) {
  std::vector<ExpandedTrial> trials = MustExpand(R"(
method: random
run_cap: 30
parameters:
  backbone.width: {distribution: log_uniform_values, min: 8, max: 128}
  projector.hidden: {min: 64, max: 512}
)");
  for (size_t param : {0, 1}) {
    for (const std::string& text : ValuesOf(trials, param)) {
      int64_t value = 0;
      EXPECT_TRUE(absl::SimpleAtoi(text, &value)) << text;
    }
  }
  for (double width : NumbersOf(trials, 0)) {
    EXPECT_GE(width, 8);
    EXPECT_LE(width, 128);
  }
}

TEST(SweepRandomTest, QuantizedValuesAreShortMultiples) {
  std::vector<ExpandedTrial> trials = MustExpand(R"(
method: random
run_cap: 40
parameters:
  method.cov_coeff: {distribution: q_uniform, min: 0, max: 2, q: 0.1}
)");
  for (const std::string& text : ValuesOf(trials, 0)) {
    EXPECT_LE(text.size(), 3u) << text;  // "0.3", not "0.30000000000000004"
  }
}

TEST(SweepRandomTest, NormalDrawsAreTruncatedToTheKeyRange) {
  std::vector<ExpandedTrial> trials = MustExpand(R"(
method: random
run_cap: 100
parameters:
  method.std_coeff: {distribution: normal, mu: 0.5, sigma: 1}
  optim.lr: {distribution: log_normal, mu: -6, sigma: 1}
)");
  for (double coeff : NumbersOf(trials, 0)) EXPECT_GE(coeff, 0.0);
  for (double lr : NumbersOf(trials, 1)) EXPECT_GT(lr, 0.0);
}

TEST(SweepRandomTest, HopelessDistributionFailsWithItsLocation) {
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(Text(R"(
method: random
run_cap: 1
parameters:
  backbone.depth: {distribution: q_normal, mu: 3, sigma: 1e9}
)"),
                                                  kSource);
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<std::vector<ExpandedTrial>> trials = ExpandSweep(*spec);
  ASSERT_FALSE(trials.ok());
  const std::string message(trials.status().message());
  EXPECT_THAT(message, HasSubstr("sweep.yaml:4:3: backbone.depth"));
  EXPECT_THAT(message, HasSubstr("draws in a row"));
}

// --- The rest of the sweep --------------------------------------------------

TEST(SweepSpecTest, ReadsEveryTopLevelField) {
  SweepSpec spec = MustParse(R"(
name: depth-sweep
description: how depth changes clustering
method: random
metric: {name: ncc_accuracy, goal: maximize}
run_cap: 10
seed: 18446744073709551615
resources: {ranks: 1}
early_terminate: {type: hyperband, min_iter: 2, eta: 2}
max_attempts: 5
max_concurrent: 4
priority: -20
parameters:
  backbone.depth: {values: [1, 2]}
)");
  EXPECT_EQ(spec.name, "depth-sweep");
  EXPECT_EQ(spec.description, "how depth changes clustering");
  EXPECT_EQ(spec.method, "random");
  EXPECT_EQ(spec.metric.name, "ncc_accuracy");
  EXPECT_EQ(spec.metric.goal, "maximize");
  EXPECT_EQ(spec.run_cap, 10);
  EXPECT_EQ(spec.seed, 18446744073709551615u);
  EXPECT_EQ(spec.ranks, 1);
  ASSERT_TRUE(spec.early_terminate.has_value());
  EXPECT_EQ(spec.early_terminate->min_iter, 2);
  EXPECT_DOUBLE_EQ(spec.early_terminate->eta, 2.0);
  EXPECT_TRUE(spec.early_terminate->strict);
  EXPECT_EQ(spec.max_attempts, 5);
  EXPECT_EQ(spec.max_concurrent, 4);
  EXPECT_EQ(spec.priority, -20);
  EXPECT_TRUE(spec.warnings.empty());
}

TEST(SweepSpecTest, SchedulingKeysDefault) {
  SweepSpec spec = MustParse("method: grid\n");
  EXPECT_EQ(spec.max_attempts, 3);
  EXPECT_EQ(spec.max_concurrent, 0);  // no limit
  EXPECT_EQ(spec.priority, 0);
}

TEST(SweepSpecTest, SchedulingKeysAcceptTheirBounds) {
  SweepSpec low = MustParse(R"(
method: grid
max_attempts: 1
max_concurrent: 0
priority: -1000
)");
  EXPECT_EQ(low.max_attempts, 1);
  EXPECT_EQ(low.max_concurrent, 0);
  EXPECT_EQ(low.priority, -1000);
  SweepSpec high = MustParse(R"(
method: grid
max_attempts: 100
max_concurrent: 100000
priority: 1000
)");
  EXPECT_EQ(high.max_attempts, 100);
  EXPECT_EQ(high.max_concurrent, 100000);
  EXPECT_EQ(high.priority, 1000);
}

TEST(SweepSpecTest, MetricGoalDefaultsToMinimize) {
  SweepSpec spec = MustParse(R"(
method: grid
metric: {name: loss}
)");
  EXPECT_EQ(spec.metric.goal, "minimize");
  EXPECT_TRUE(MustParse("method: grid\n").metric.name.empty());
}

TEST(SweepSpecTest, LauncherKeysAreWarningsInFileOrder) {
  SweepSpec spec = MustParse(R"(
program: train.py
method: grid
command: [python, train.py]
entity: lab
metric: {name: loss, target: 0.1}
)");
  EXPECT_THAT(spec.warnings,
              ElementsAre("sweep.yaml:1:1: 'program' is a W&B launcher key; ignored",
                          "sweep.yaml:3:1: 'command' is a W&B launcher key; ignored",
                          "sweep.yaml:4:1: 'entity' is a W&B launcher key; ignored",
                          HasSubstr("sweep.yaml:5:22: 'metric.target'")));
}

TEST(SweepSpecTest, ReadsHyperbandMaxIterForm) {
  SweepSpec spec = MustParse(R"(
method: grid
metric: {name: loss}
early_terminate: {type: hyperband, max_iter: 27, s: 3, strict: false}
)");
  ASSERT_TRUE(spec.early_terminate.has_value());
  EXPECT_EQ(spec.early_terminate->max_iter, 27);
  EXPECT_EQ(spec.early_terminate->s, 3);
  EXPECT_FALSE(spec.early_terminate->strict);
}

TEST(SweepSpecTest, HyperbandDefaultsAreWandbs) {
  // W&B's sweep schema: eta 3, strict true.
  SweepSpec spec = MustParse(R"(
method: grid
metric: {name: loss}
early_terminate: {type: hyperband, min_iter: 1}
)");
  ASSERT_TRUE(spec.early_terminate.has_value());
  EXPECT_DOUBLE_EQ(spec.early_terminate->eta, 3.0);
  EXPECT_TRUE(spec.early_terminate->strict);
}

// --- The sweeps shipped in sweeps/ ------------------------------------------

TEST(ShippedSweepsTest, EveryExampleParsesAndExpands) {
  const std::filesystem::path folder =
      std::filesystem::path(SSLSWEEP_SOURCE_DIR) / "sweeps";
  if (!std::filesystem::is_directory(folder)) GTEST_SKIP() << "no sweeps/ folder";
  int checked = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(folder)) {
    if (entry.path().extension() != ".yaml") continue;
    std::ifstream file(entry.path());
    std::stringstream text;
    text << file.rdbuf();
    absl::StatusOr<SweepSpec> spec =
        ParseSweepSpec(text.str(), entry.path().filename().string());
    ASSERT_TRUE(spec.ok()) << spec.status();
    absl::StatusOr<std::vector<ExpandedTrial>> trials = ExpandSweep(*spec);
    ASSERT_TRUE(trials.ok()) << trials.status();
    EXPECT_FALSE(trials->empty()) << entry.path();
    ++checked;
  }
  if (checked == 0) GTEST_SKIP() << "no *.yaml under sweeps/";
}

}  // namespace
}  // namespace sslsweep
