// Tests for the sweeps that sweep_spec.h rejects: each error names
// file:line:col of the offending node and says what is wrong.

#include <string>
#include <vector>

#include "coordinator/sweep_spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/sweep_spec_test_util.h"

namespace sslsweep {
namespace {

using ::testing::HasSubstr;

// The message of the InvalidArgument that parsing `yaml` must fail with.
std::string ParseError(absl::string_view yaml) {
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(Text(yaml), kSource);
  EXPECT_FALSE(spec.ok()) << "parsed, but should not have:\n" << yaml;
  if (spec.ok()) return "";
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(spec.status().message());
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
              HasSubstr("sweep.yaml:3:30: optim.name: 'lamb' is not one of: sgd, lars, adamw"));
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

TEST(SweepErrorTest, ResourcesRanksInRange) {
  EXPECT_THAT(ParseError("method: grid\nresources: {ranks: 0}\n"),
              HasSubstr("sweep.yaml:2:20: resources.ranks: expected 1 to 1024 (one worker "
                        "per rank), got 0"));
  EXPECT_THAT(ParseError("method: grid\nresources: {ranks: 1025}\n"),
              HasSubstr("sweep.yaml:2:20: resources.ranks: expected 1 to 1024"));
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

TEST(SweepErrorTest, SchedulingKeysOutOfRange) {
  EXPECT_THAT(ParseError("method: grid\nmax_attempts: 0\n"),
              HasSubstr("sweep.yaml:2:15: max_attempts must be an integer from 1 to 100, "
                        "got 0 (failed attempts"));
  EXPECT_THAT(ParseError("method: grid\nmax_attempts: 101\n"),
              HasSubstr("sweep.yaml:2:15: max_attempts must be an integer from 1 to 100, "
                        "got 101"));
  EXPECT_THAT(ParseError("method: grid\nmax_concurrent: -1\n"),
              HasSubstr("sweep.yaml:2:17: max_concurrent must be an integer from 0 to "
                        "2147483647, got -1 (trials of this sweep running at once; 0 "
                        "(the default) for no limit)"));
  EXPECT_THAT(ParseError("method: grid\nmax_concurrent: 3000000000\n"),
              HasSubstr("sweep.yaml:2:17: max_concurrent must be an integer from 0"));
  EXPECT_THAT(ParseError("method: grid\npriority: 1001\n"),
              HasSubstr("sweep.yaml:2:11: priority must be an integer from -1000 to "
                        "1000, got 1001 (higher sweeps lease first"));
  EXPECT_THAT(ParseError("method: grid\npriority: -1001\n"),
              HasSubstr("sweep.yaml:2:11: priority must be an integer from -1000 to 1000"));
}

TEST(SweepErrorTest, SchedulingKeysMustBeIntegers) {
  EXPECT_THAT(ParseError("method: grid\nmax_attempts: 2.5\n"),
              HasSubstr("sweep.yaml:2:15: max_attempts: expected an integer, got '2.5'"));
  EXPECT_THAT(ParseError("method: grid\nmax_concurrent: \"4\"\n"),
              HasSubstr("sweep.yaml:2:17: max_concurrent: expected an integer"));
  EXPECT_THAT(ParseError("method: grid\npriority: [1]\n"),
              HasSubstr("sweep.yaml:2:11: priority: expected an integer, got a non-scalar"));
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

TEST(SweepErrorTest, RanksMustDivideEveryTrialsBatch) {
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(Text(R"(
method: grid
resources: {ranks: 4}
parameters:
  optim.batch_size: {values: [64, 90]}
)"),
                                                  kSource);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->ranks, 4);
  absl::StatusOr<std::vector<ExpandedTrial>> trials = ExpandSweep(*spec);
  ASSERT_FALSE(trials.ok());
  EXPECT_EQ(trials.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(trials.status().message()),
              HasSubstr("sweep.yaml:2:20: trial 1 (optim.batch_size=90) has optim.batch_size "
                        "90, which resources.ranks 4 does not divide"));
}

}  // namespace
}  // namespace sslsweep
