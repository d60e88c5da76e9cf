// Tests for sweep parsing, validation and expansion (coordinator/sweep_spec.h).

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
#include "worker/trial_config.h"

namespace sslsweep {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

constexpr char kSource[] = "sweep.yaml";

// Test sweeps are raw strings that start on the line after R"( for
// readability; line 1 of the file is the line after that.
std::string Text(absl::string_view yaml) {
  if (!yaml.empty() && yaml.front() == '\n') yaml.remove_prefix(1);
  return std::string(yaml);
}

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

// The message of the InvalidArgument that parsing `yaml` must fail with.
std::string ParseError(absl::string_view yaml) {
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(Text(yaml), kSource);
  EXPECT_FALSE(spec.ok()) << "parsed, but should not have:\n" << yaml;
  if (spec.ok()) return "";
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(spec.status().message());
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
  EXPECT_TRUE(spec.warnings.empty());
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

// --- Errors: each names file:line:col of the offending node -------------------

TEST(SweepErrorTest, MalformedYaml) {
  EXPECT_THAT(ParseError("method: grid\nparameters: [1,\n"),
              HasSubstr("sweep.yaml:3:1: malformed YAML"));
}

TEST(SweepErrorTest, EmptySweep) {
  EXPECT_THAT(ParseError(""), HasSubstr("sweep.yaml:1:1: the sweep is empty"));
  EXPECT_THAT(ParseError("# nothing yet\n"),
              HasSubstr("sweep.yaml:1:1: the sweep is empty"));
}

TEST(SweepErrorTest, ParameterWithoutSpec) {
  EXPECT_THAT(ParseError(R"(
method: grid
parameters:
  optim.lr:
)"),
              HasSubstr("sweep.yaml:3:3: parameter 'optim.lr' has no spec"));
}

TEST(SweepErrorTest, NotAMapping) {
  EXPECT_THAT(ParseError("- method\n"),
              HasSubstr("sweep.yaml:1:1: a sweep must be a mapping"));
}

TEST(SweepErrorTest, UnknownTopLevelKeyListsAcceptedKeys) {
  const std::string message = ParseError(R"(
method: grid
paramters: {}
)");
  EXPECT_THAT(message, HasSubstr("sweep.yaml:2:1: unknown sweep key 'paramters'"));
  EXPECT_THAT(message, HasSubstr("accepted keys: name, description, method"));
}

TEST(SweepErrorTest, DuplicateTopLevelKey) {
  EXPECT_THAT(ParseError("method: grid\nmethod: random\n"),
              HasSubstr("sweep.yaml:2:1: 'method' is given twice"));
}

TEST(SweepErrorTest, MethodMissingUnknownOrBayes) {
  EXPECT_THAT(ParseError("name: x\n"),
              HasSubstr("sweep.yaml:1:1: the sweep has no 'method'"));
  EXPECT_THAT(ParseError("method: hill\n"),
              HasSubstr("sweep.yaml:1:9: unknown method 'hill'; accepted: grid, random"));
  EXPECT_THAT(ParseError("method: bayes\n"),
              HasSubstr("sweep.yaml:1:9: method 'bayes' is not supported yet"));
}

TEST(SweepErrorTest, UnknownPathSuggestsTheNearest) {
  const std::string message = ParseError(R"(
method: grid
parameters:
  optim.learnin_rate: {values: [0.1]}
)");
  EXPECT_THAT(message, HasSubstr("sweep.yaml:3:3: unknown trial configuration "
                                 "path 'optim.learnin_rate'"));
  EXPECT_THAT(message, HasSubstr("valid paths under optim: optim.name, optim.lr"));
  EXPECT_THAT(ParseError(R"(
method: grid
parameters:
  lr: {values: [0.1]}
)"),
              HasSubstr("sweep.yaml:3:3: unknown trial configuration path 'lr'; "
                        "did you mean optim.lr"));
}

TEST(SweepErrorTest, UnknownNestedPath) {
  EXPECT_THAT(ParseError(R"(
method: grid
parameters:
  optim:
    parameters:
      rate: {values: [0.1]}
)"),
              HasSubstr("sweep.yaml:5:7: unknown trial configuration path "
                        "'optim.rate'"));
}

TEST(SweepErrorTest, SectionIsNotAKey) {
  EXPECT_THAT(ParseError(R"(
method: grid
parameters:
  optim: {values: [sgd]}
)"),
              HasSubstr("sweep.yaml:3:3: 'optim' is a section of the trial "
                        "configuration, not a key; sweep its keys instead: "
                        "optim.name, optim.lr"));
}

TEST(SweepErrorTest, KeyIsNotASection) {
  EXPECT_THAT(ParseError(R"(
method: grid
parameters:
  epochs:
    parameters: {x: {value: 1}}
)"),
              HasSubstr("sweep.yaml:3:3: 'epochs' is a key of the trial "
                        "configuration, not a section"));
}

TEST(SweepErrorTest, SamePathTwice) {
  EXPECT_THAT(ParseError(R"(
method: grid
parameters:
  optim.lr: {values: [0.1]}
  optim:
    parameters:
      lr: {value: 0.2}
)"),
              HasSubstr("sweep.yaml:6:7: parameter 'optim.lr' is given twice "
                        "(first at sweep.yaml:3:3)"));
  EXPECT_THAT(ParseError(R"(
method: grid
parameters:
  optim.lr: {values: [0.1]}
  optim.lr: {values: [0.2]}
)"),
              HasSubstr("sweep.yaml:4:3: parameter 'optim.lr' is given twice "
                        "(first at sweep.yaml:3:3)"));
}

TEST(SweepErrorTest, EmptyValuesIsAnEmptyGrid) {
  EXPECT_THAT(ParseError(R"(
method: grid
parameters:
  optim.lr: {values: []}
)"),
              HasSubstr("sweep.yaml:3:22: values of 'optim.lr' is empty, which "
                        "makes an empty grid"));
}

TEST(SweepErrorTest, EachValueIsCheckedAtItsOwnPosition) {
  EXPECT_THAT(ParseError(R"(
method: grid
parameters:
  optim.lr:
    values: [0.1, 0.01, -0.5]
)"),
              HasSubstr("sweep.yaml:4:25: optim.lr: -0.5 is out of range; "
                        "expected a value > 0.0"));
  EXPECT_THAT(ParseError(R"(
method: grid
parameters:
  backbone.depth: {value: 2.5}
)"),
              HasSubstr("sweep.yaml:3:27: backbone.depth: expected an integer"));
  EXPECT_THAT(ParseError(R"(
method: grid
parameters:
  optim.name: {values: [sgd, lamb]}
)"),
              HasSubstr("sweep.yaml:3:30: optim.name: 'lamb' is not one of: sgd, adamw"));
}

TEST(SweepErrorTest, QuotedNumberIsAString) {
  EXPECT_THAT(ParseError(R"(
method: grid
parameters:
  optim.lr: {values: ["1e-3"]}
)"),
              HasSubstr("sweep.yaml:3:23: optim.lr: expected a number"));
}

TEST(SweepErrorTest, NonScalarValues) {
  EXPECT_THAT(ParseError(R"(
method: grid
parameters:
  optim.lr: {values: [[0.1, 0.2]]}
)"),
              HasSubstr("sweep.yaml:3:23: 'optim.lr' takes scalar values, not a list"));
  EXPECT_THAT(ParseError(R"(
method: grid
parameters:
  optim.lr: {value: {a: 1}}
)"),
              HasSubstr("sweep.yaml:3:21: 'optim.lr' takes scalar values, not a "
                        "mapping"));
  EXPECT_THAT(ParseError(R"(
method: grid
parameters:
  optim.lr: {values: 0.1}
)"),
              HasSubstr("sweep.yaml:3:22: values of 'optim.lr' must be a list"));
}

TEST(SweepErrorTest, DistributionBoundsOutsideTheKeyRange) {
  EXPECT_THAT(ParseError(R"(
method: random
run_cap: 5
parameters:
  optim.lr: {distribution: uniform, min: -1, max: 0.1}
)"),
              HasSubstr("sweep.yaml:4:42: uniform min gives -1, which optim.lr "
                        "does not accept: optim.lr: -1.0 is out of range; "
                        "expected a value > 0.0 and <= 100.0"));
  EXPECT_THAT(ParseError(R"(
method: random
run_cap: 5
parameters:
  optim.momentum: {distribution: log_uniform, min: -3, max: 1}
)"),
              HasSubstr("sweep.yaml:4:61: log_uniform max gives 2.718281828459045, "
                        "which optim.momentum does not accept"));
  EXPECT_THAT(ParseError(R"(
method: random
run_cap: 5
parameters:
  backbone.depth: {min: 0, max: 3}
)"),
              HasSubstr("sweep.yaml:4:25: int_uniform min gives 0, which "
                        "backbone.depth does not accept"));
  EXPECT_THAT(ParseError(R"(
method: random
run_cap: 5
parameters:
  optim.lr: {distribution: normal, mu: -0.01, sigma: 0.1}
)"),
              HasSubstr("sweep.yaml:4:40: normal mu gives -0.01, which optim.lr "
                        "does not accept"));
}

TEST(SweepErrorTest, BadDistributionShapes) {
  EXPECT_THAT(ParseError(R"(
method: random
run_cap: 5
parameters:
  optim.lr: {distribution: uniform, min: 0.2, max: 0.1}
)"),
              HasSubstr("sweep.yaml:4:42: optim.lr: uniform min (0.2) is greater "
                        "than max (0.1)"));
  EXPECT_THAT(ParseError(R"(
method: random
run_cap: 5
parameters:
  method.sim_coeff: {distribution: normal, mu: 25, sigma: 0}
)"),
              HasSubstr("sweep.yaml:4:59: method.sim_coeff: normal sigma (the "
                        "standard deviation) must be greater than 0"));
  EXPECT_THAT(ParseError(R"(
method: random
run_cap: 5
parameters:
  method.sim_coeff: {distribution: q_uniform, min: 1, max: 9, q: -1}
)"),
              HasSubstr("sweep.yaml:4:66: method.sim_coeff: q_uniform q (the "
                        "quantization step) must be greater than 0"));
  EXPECT_THAT(ParseError(R"(
method: random
run_cap: 5
parameters:
  optim.lr: {distribution: log_uniform_values, min: 0, max: 0.1}
)"),
              HasSubstr("sweep.yaml:4:53: optim.lr: log_uniform_values spreads "
                        "values on a log scale; min must be greater than 0"));
  EXPECT_THAT(ParseError(R"(
method: random
run_cap: 5
parameters:
  optim.lr: {distribution: beta}
)"),
              HasSubstr("sweep.yaml:4:28: unknown distribution 'beta'; supported: "
                        "constant, categorical, int_uniform"));
  EXPECT_THAT(ParseError(R"(
method: random
run_cap: 5
parameters:
  optim.lr: {distribution: uniform, min: 0.1, max: 0.2, mu: 1}
)"),
              HasSubstr("sweep.yaml:4:57: 'mu' does not apply to the uniform "
                        "distribution of 'optim.lr'; it takes min, max"));
  EXPECT_THAT(ParseError(R"(
method: random
run_cap: 5
parameters:
  backbone.depth: {distribution: int_uniform, min: 1.5, max: 3}
)"),
              HasSubstr("sweep.yaml:4:52: backbone.depth: int_uniform min: "
                        "expected an integer, got '1.5'"));
  EXPECT_THAT(ParseError(R"(
method: random
run_cap: 5
parameters:
  optim.lr: {distribution: uniform, max: 0.2}
)"),
              HasSubstr("sweep.yaml:4:3: parameter 'optim.lr': the uniform "
                        "distribution needs both min and max"));
  EXPECT_THAT(ParseError(R"(
method: random
run_cap: 5
parameters:
  optim.lr: {mu: 0.1}
)"),
              HasSubstr("sweep.yaml:4:3: parameter 'optim.lr' needs one of value, "
                        "values, distribution"));
  EXPECT_THAT(ParseError(R"(
method: grid
parameters:
  optim.lr: {value: 0.1, values: [0.2]}
)"),
              HasSubstr("sweep.yaml:3:34: parameter 'optim.lr' has both value "
                        "and values"));
  EXPECT_THAT(ParseError(R"(
method: grid
parameters:
  optim.lr: {value: 0.1, step: 2}
)"),
              HasSubstr("sweep.yaml:3:26: unknown key 'step' in parameter "
                        "'optim.lr'; accepted: value, values, distribution"));
}

TEST(SweepErrorTest, GridCannotEnumerateContinuousDistributions) {
  EXPECT_THAT(ParseError(R"(
method: grid
parameters:
  optim.lr: {distribution: log_uniform_values, min: 1e-4, max: 1e-2}
)"),
              HasSubstr("sweep.yaml:3:28: grid search cannot enumerate the "
                        "continuous log_uniform_values distribution of 'optim.lr'"));
  // Inferred from real bounds: points at the name.
  EXPECT_THAT(ParseError(R"(
method: grid
parameters:
  optim.lr: {min: 0.01, max: 0.1}
)"),
              HasSubstr("sweep.yaml:3:3: grid search cannot enumerate the "
                        "continuous uniform distribution"));
}

TEST(SweepErrorTest, RandomNeedsRunCap) {
  EXPECT_THAT(ParseError(R"(
method: random
parameters:
  optim.lr: {values: [0.1]}
)"),
              HasSubstr("sweep.yaml:1:9: random search needs run_cap"));
}

TEST(SweepErrorTest, RunCapMustBePositive) {
  EXPECT_THAT(ParseError("method: grid\nrun_cap: 0\n"),
              HasSubstr("sweep.yaml:2:10: run_cap must be a positive integer"));
  EXPECT_THAT(ParseError("method: grid\nrun_cap: -3\n"),
              HasSubstr("sweep.yaml:2:10: run_cap must be a positive integer"));
  EXPECT_THAT(ParseError("method: grid\nrun_cap: lots\n"),
              HasSubstr("sweep.yaml:2:10: run_cap: expected an integer"));
}

TEST(SweepErrorTest, TooManyTrials) {
  const std::string message = ParseError(R"(
method: grid
parameters:
  seed: {min: 1, max: 1000}
  backbone.width: {min: 1, max: 1000}
)");
  EXPECT_THAT(message, HasSubstr("sweep.yaml:2:1: the grid has more than 100000 "
                                 "trials (1000 x 1000 values)"));
  EXPECT_THAT(ParseError(R"(
method: random
run_cap: 100001
parameters:
  optim.lr: {values: [0.1]}
)"),
              HasSubstr("sweep.yaml:2:10: run_cap 100001 is over the limit of "
                        "100000"));
}

TEST(SweepErrorTest, ResourcesOnlyOneRank) {
  EXPECT_THAT(ParseError("method: grid\nresources: {ranks: 2}\n"),
              HasSubstr("sweep.yaml:2:20: resources.ranks: 2 ranks per trial is "
                        "not supported yet; use ranks: 1"));
  EXPECT_THAT(ParseError("method: grid\nresources: {gpus: 2}\n"),
              HasSubstr("sweep.yaml:2:13: unknown resources key 'gpus'; "
                        "accepted: ranks"));
}

TEST(SweepErrorTest, EarlyTerminateShape) {
  EXPECT_THAT(ParseError(R"(
method: grid
metric: {name: loss}
early_terminate: {type: median}
)"),
              HasSubstr("sweep.yaml:3:25: early_terminate needs type: hyperband"));
  EXPECT_THAT(ParseError(R"(
method: grid
metric: {name: loss}
early_terminate: {type: hyperband, max_iter: 27}
)"),
              HasSubstr("sweep.yaml:3:18: early_terminate needs either min_iter, "
                        "or max_iter with s"));
  EXPECT_THAT(ParseError(R"(
method: grid
metric: {name: loss}
early_terminate: {type: hyperband, min_iter: 3, eta: 1}
)"),
              HasSubstr("sweep.yaml:3:54: early_terminate.eta must be greater than 1"));
  EXPECT_THAT(ParseError(R"(
method: grid
early_terminate: {type: hyperband, min_iter: 3}
)"),
              HasSubstr("sweep.yaml:2:1: hyperband early termination ranks trials "
                        "by a metric"));
}

TEST(SweepErrorTest, MetricShape) {
  EXPECT_THAT(ParseError("method: grid\nmetric: {goal: maximize}\n"),
              HasSubstr("sweep.yaml:2:1: metric needs a 'name'"));
  EXPECT_THAT(ParseError("method: grid\nmetric: {name: loss, goal: up}\n"),
              HasSubstr("sweep.yaml:2:28: metric.goal must be minimize or maximize"));
}

TEST(SweepErrorTest, BaseTrialErrorsPointIntoTheSweep) {
  EXPECT_THAT(ParseError(R"(
method: grid
trial:
  optim:
    lr: -1
)"),
              HasSubstr("sweep.yaml:4:9: optim.lr: -1.0 is out of range"));
  EXPECT_THAT(ParseError(R"(
method: grid
trial:
  optimizer: {lr: 0.1}
)"),
              HasSubstr("sweep.yaml:3:3: unknown trial configuration key 'optimizer'"));
}

TEST(SweepErrorTest, InvalidCombinationNamesTheTrial) {
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(Text(R"(
method: grid
trial: {data: {train_samples: 100}, optim: {batch_size: 64}}
parameters:
  optim.batch_size: {values: [64, 256]}
)"),
                                                  kSource);
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<std::vector<ExpandedTrial>> trials = ExpandSweep(*spec);
  ASSERT_FALSE(trials.ok());
  EXPECT_EQ(trials.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(trials.status().message()),
              HasSubstr("sweep.yaml:3:1: trial 1 (optim.batch_size=256) is invalid: "
                        "data.train_samples (100) must be 0 (all) or at least "
                        "optim.batch_size (256)"));
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
