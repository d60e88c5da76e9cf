// The trial configuration schema: defaults, round trip, and errors that say
// where and what is accepted.

#include "worker/trial_config.h"

#include <fstream>
#include <iterator>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace sslsweep {
namespace {

using ::testing::HasSubstr;

TEST(TrialConfigTest, EmptyDocumentGivesDefaults) {
  auto config = ParseTrialConfigText("", "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->method.name, "vicreg");
  EXPECT_DOUBLE_EQ(config->method.sim_coeff, 25.0);
  EXPECT_DOUBLE_EQ(config->method.std_coeff, 25.0);
  EXPECT_DOUBLE_EQ(config->method.cov_coeff, 1.0);
  EXPECT_EQ(config->data.dataset, "fashion_mnist");
}

TEST(TrialConfigTest, ReadsNestedValuesAndScientificNotation) {
  auto config = ParseTrialConfigText(
      "optim:\n  lr: 1e-5\n  batch_size: 64\nbackbone: {depth: 2, width: 8}\nseed: 7\n",
      "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_DOUBLE_EQ(config->optim.lr, 1e-5);
  EXPECT_EQ(config->optim.batch_size, 64);
  EXPECT_EQ(config->backbone.depth, 2);
  EXPECT_EQ(config->backbone.width, 8);
  EXPECT_EQ(config->seed, 7);
}

TEST(TrialConfigTest, YamlRoundTripIsExact) {
  TrialConfig config;
  config.optim.lr = 0.1 + 0.2;  // not representable in few digits
  config.data.root = "/tmp/with: colon, \"quote\" and \\ and\nnewline";
  config.epochs = 3;
  auto back = ParseTrialConfigText(TrialConfigToYaml(config), "round-trip");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->optim.lr, config.optim.lr);
  EXPECT_EQ(back->data.root, config.data.root);
  EXPECT_EQ(back->epochs, 3);
  EXPECT_EQ(TrialConfigToYaml(*back), TrialConfigToYaml(config));
}

TEST(TrialConfigTest, UnknownKeyNamesPathAndPosition) {
  auto config = ParseTrialConfigText("optim:\n  lrr: 0.1\n", "t.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("t.yaml:2:3"));
  EXPECT_THAT(config.status().message(), HasSubstr("optim.lrr"));
  EXPECT_THAT(config.status().message(), HasSubstr("lr"));
}

TEST(TrialConfigTest, NegativeLearningRateIsRejectedWithRange) {
  auto config = ParseTrialConfigText("optim:\n  lr: -0.01\n", "t.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("t.yaml:2:7"));
  EXPECT_THAT(config.status().message(), HasSubstr("optim.lr"));
  EXPECT_THAT(config.status().message(), HasSubstr("> 0"));
}

TEST(TrialConfigTest, TypeErrors) {
  EXPECT_THAT(ParseTrialConfigText("epochs: 2.5\n", "t").status().message(),
              HasSubstr("expected an integer"));
  EXPECT_THAT(ParseTrialConfigText("optim: {lr: \"0.1\"}\n", "t").status().message(),
              HasSubstr("expected a number"));
  EXPECT_THAT(ParseTrialConfigText("optim: 3\n", "t").status().message(),
              HasSubstr("expected a mapping"));
  EXPECT_THAT(ParseTrialConfigText("optim: {name: lbfgs}\n", "t").status().message(),
              HasSubstr("not one of: sgd, lars, adamw"));
  EXPECT_THAT(ParseTrialConfigText("optim: {lr: nan}\n", "t").status().message(),
              HasSubstr("out of range"));
}

TEST(TrialConfigTest, MalformedYamlHasPosition) {
  auto config = ParseTrialConfigText("optim: {lr: 0.1\n", "bad.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("bad.yaml:"));
  EXPECT_THAT(config.status().message(), HasSubstr("malformed YAML"));
}

TEST(TrialConfigTest, CrossFieldSubsetSmallerThanBatch) {
  auto config =
      ParseTrialConfigText("data: {train_samples: 10}\noptim: {batch_size: 64}\n", "t.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("t.yaml:1:23"));
  EXPECT_THAT(config.status().message(), HasSubstr("optim.batch_size"));
}

TEST(TrialConfigTest, PathQueries) {
  EXPECT_TRUE(IsTrialConfigLeaf("optim.lr"));
  EXPECT_FALSE(IsTrialConfigLeaf("optim"));
  EXPECT_TRUE(IsTrialConfigPath("optim"));
  EXPECT_FALSE(IsTrialConfigPath("optimizer"));
  EXPECT_FALSE(IsTrialConfigPath("optim.l"));
  EXPECT_TRUE(ValidateTrialValue("backbone.depth", YAML::Load("3")).ok());
  EXPECT_FALSE(ValidateTrialValue("backbone.depth", YAML::Load("0")).ok());
  EXPECT_FALSE(ValidateTrialValue("no.such", YAML::Load("0")).ok());
}

TEST(TrialConfigTest, RequiredDataFiles) {
  TrialConfig config;
  config.data.root = "/data";
  EXPECT_THAT(RequiredDataFiles(config),
              ::testing::Contains("/data/train-images-idx3-ubyte.gz"));
  config.data.dataset = "synthetic";
  EXPECT_TRUE(RequiredDataFiles(config).empty());
}

TEST(TrialConfigTest, MissingFileIsNotFound) {
  auto config = LoadTrialConfigFile("/nonexistent/trial.yaml");
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(config.status().message(), HasSubstr("/nonexistent/trial.yaml"));
}

}  // namespace
}  // namespace sslsweep

namespace sslsweep {
namespace {

// docs/trial-config.md must list every key of the schema.
TEST(TrialConfigDocsTest, EveryKeyIsDocumented) {
  std::ifstream in(std::string(SSLSWEEP_SOURCE_DIR) + "/docs/trial-config.md");
  ASSERT_TRUE(in) << "docs/trial-config.md is missing";
  const std::string docs((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const std::string& path : TrialConfigPaths()) {
    EXPECT_THAT(docs, HasSubstr("| `" + path + "` |")) << path << " is not documented";
  }
}

}  // namespace
}  // namespace sslsweep
