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

// ---- The analysis keys ------------------------------------------------------

TEST(TrialConfigAnalysisTest, DefaultsMeasureEverything) {
  auto config = ParseTrialConfigText("", "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->analysis.layers, "all");
  EXPECT_EQ(config->analysis.targets, "all");
  EXPECT_EQ(config->analysis.metrics, "all");
  EXPECT_EQ(config->analysis.max_samples, 10000);
  EXPECT_EQ(config->analysis.knn_k, 20);
  EXPECT_DOUBLE_EQ(config->analysis.knn_temperature, 0.07);
  EXPECT_EQ(config->analysis.sample_images, 256);
  EXPECT_EQ(config->analysis.sample_views, 8);
  EXPECT_EQ(config->analysis.label_files, "");
  EXPECT_THAT(*ResolveAnalysisTargets(config->analysis),
              ::testing::ElementsAre("sample", "fine", "coarse", "random"));
}

TEST(TrialConfigAnalysisTest, AcceptsEveryKeyAndRoundTrips) {
  auto config = ParseTrialConfigText(
      "analysis:\n"
      "  layers: stage1, embedding,projector2\n"
      "  targets: fine,shapes,random\n"
      "  metrics: ncc,knn,linear\n"
      "  max_samples: 0\n"
      "  knn_k: 1\n"
      "  knn_temperature: 0.5\n"
      "  sample_images: 2\n"
      "  sample_views: 1\n"
      "  label_files: shapes=/l/shapes.train.npy:/l/shapes.test.npy,size_2=/l/size.npy\n",
      "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  const AnalysisConfig& a = config->analysis;
  EXPECT_EQ(a.layers, "stage1, embedding,projector2");
  EXPECT_EQ(a.metrics, "ncc,knn,linear");
  EXPECT_EQ(a.max_samples, 0);
  EXPECT_EQ(a.knn_k, 1);
  EXPECT_DOUBLE_EQ(a.knn_temperature, 0.5);
  EXPECT_EQ(a.sample_images, 2);
  EXPECT_EQ(a.sample_views, 1);
  EXPECT_THAT(*ResolveAnalysisTargets(a), ::testing::ElementsAre("fine", "shapes", "random"));
  auto files = ParseLabelFiles(a.label_files);
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].name, "shapes");
  EXPECT_EQ((*files)[0].train_path, "/l/shapes.train.npy");
  EXPECT_EQ((*files)[0].test_path, "/l/shapes.test.npy");
  EXPECT_EQ((*files)[1].name, "size_2");
  EXPECT_EQ((*files)[1].train_path, "/l/size.npy");
  EXPECT_EQ((*files)[1].test_path, "");

  const std::string yaml = TrialConfigToYaml(*config);
  auto back = ParseTrialConfigText(yaml, "round-trip");
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << yaml;
  EXPECT_EQ(TrialConfigToYaml(*back), yaml);
  EXPECT_EQ(back->analysis.label_files, a.label_files);
  EXPECT_EQ(back->analysis.layers, a.layers);
}

TEST(TrialConfigAnalysisTest, EmptyLabelFilesIsAllowedAndRoundTrips) {
  TrialConfig config;
  const std::string yaml = TrialConfigToYaml(config);
  EXPECT_THAT(yaml, HasSubstr("  label_files: \"\"\n"));
  auto back = ParseTrialConfigText(yaml, "round-trip");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->analysis.label_files, "");
  auto null = ParseTrialConfigText("analysis:\n  label_files:\n", "t.yaml");
  ASSERT_TRUE(null.ok()) << null.status();
  EXPECT_EQ(null->analysis.label_files, "");
  EXPECT_TRUE(ValidateTrialValue("analysis.label_files", YAML::Node(std::string())).ok());
  // Other string keys still need a value.
  EXPECT_FALSE(ValidateTrialValue("analysis.metrics", YAML::Node(std::string())).ok());
}

TEST(TrialConfigAnalysisTest, AllExpandsToBuiltinsThenLabelFiles) {
  AnalysisConfig a;
  a.label_files = "b=/b.npy,a=/a.npy";
  EXPECT_THAT(*ResolveAnalysisTargets(a),
              ::testing::ElementsAre("sample", "fine", "coarse", "random", "b", "a"));
  a.targets = "coarse,fine,coarse";
  EXPECT_THAT(*ResolveAnalysisTargets(a), ::testing::ElementsAre("coarse", "fine"));
  EXPECT_THAT(SplitAnalysisList(" a, b ,a,"), ::testing::ElementsAre("a", "b", ""));
}

// The message of parsing `yaml`, which must fail with InvalidArgument.
std::string Rejection(const std::string& yaml) {
  auto config = ParseTrialConfigText(yaml, "t.yaml");
  EXPECT_FALSE(config.ok()) << yaml;
  if (config.ok()) return "";
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(config.status().message());
}

TEST(TrialConfigAnalysisTest, RejectsBadValuesNamingTheKey) {
  EXPECT_EQ(Rejection("analysis:\n  targets: fine,shapes\n"),
            "t.yaml:2:12: analysis.targets: 'shapes' is not a target; expected sample, "
            "fine, coarse, random, all (a label file's name must be declared in "
            "analysis.label_files)");
  EXPECT_EQ(Rejection("analysis: {targets: \"fine,Big\"}\n"),
            "t.yaml:1:21: analysis.targets: 'Big' in 'fine,Big' is not a target name; "
            "expected sample, fine, coarse, random, all or a name declared in "
            "analysis.label_files");
  EXPECT_EQ(Rejection("analysis: {metrics: \"ncc,svm\"}\n"),
            "t.yaml:1:21: analysis.metrics: 'svm' in 'ncc,svm' is not one of: ncc, cdnv, "
            "nc1, knn, linear, all");
  EXPECT_EQ(Rejection("analysis: {metrics: \"ncc,\"}\n"),
            "t.yaml:1:21: analysis.metrics: '' in 'ncc,' is not one of: ncc, cdnv, nc1, "
            "knn, linear, all");
  EXPECT_EQ(Rejection("analysis: {layers: \"stage1,Stage-2\"}\n"),
            "t.yaml:1:20: analysis.layers: 'Stage-2' in 'stage1,Stage-2' is not a tap "
            "name; expected comma-separated names of [a-z0-9_] (stage1, embedding, "
            "projector1, ...) or all");
  EXPECT_THAT(Rejection("analysis: {layers: \"\"}\n"),
              HasSubstr("analysis.layers: expected a non-empty string"));
  EXPECT_THAT(Rejection("analysis: {label_files: shapes}\n"),
              HasSubstr("analysis.label_files: 'shapes' has no '='; expected "
                        "comma-separated name=train.npy[:test.npy] with names of "
                        "[a-z0-9_]"));
  EXPECT_THAT(Rejection("analysis: {label_files: \"Shapes=/s.npy\"}\n"),
              HasSubstr("analysis.label_files: 'Shapes=/s.npy' does not start with a "
                        "name of [a-z0-9_]"));
  EXPECT_THAT(Rejection("analysis: {label_files: \"fine=/s.npy\"}\n"),
              HasSubstr("analysis.label_files: 'fine=/s.npy' uses the name of a builtin "
                        "target (sample, fine, coarse, random, all)"));
  EXPECT_THAT(Rejection("analysis: {label_files: \"a=/a.npy,a=/b.npy\"}\n"),
              HasSubstr("analysis.label_files: 'a=/b.npy' declares its name a second "
                        "time"));
  EXPECT_THAT(Rejection("analysis: {label_files: \"a=:/t.npy\"}\n"),
              HasSubstr("analysis.label_files: 'a=:/t.npy' has no training label file"));
  EXPECT_THAT(Rejection("analysis: {label_files: \"a=/a.npy:\"}\n"),
              HasSubstr("analysis.label_files: 'a=/a.npy:' has an empty test label file"));
  EXPECT_THAT(Rejection("analysis: {knn_k: 0}\n"),
              HasSubstr("analysis.knn_k: 0.0 is out of range; expected a value >= 1.0"));
  EXPECT_THAT(Rejection("analysis: {knn_temperature: 0}\n"),
              HasSubstr("analysis.knn_temperature: 0.0 is out of range; expected a value "
                        "> 0.0"));
  EXPECT_THAT(Rejection("analysis: {max_samples: -1}\n"),
              HasSubstr("analysis.max_samples: -1.0 is out of range; expected a value "
                        ">= 0.0"));
  EXPECT_EQ(Rejection("analysis: {max_samples: 1}\n"),
            "t.yaml:1:25: analysis.max_samples must be 0 (all rows) or at least 2, not 1");
  EXPECT_THAT(Rejection("analysis: {sample_images: 1}\n"),
              HasSubstr("analysis.sample_images: 1.0 is out of range; expected a value "
                        ">= 2.0"));
  EXPECT_THAT(Rejection("analysis: {sample_views: 0}\n"),
              HasSubstr("analysis.sample_views: 0.0 is out of range; expected a value "
                        ">= 1.0"));
}

TEST(TrialConfigAnalysisTest, SweptValuesAreCheckedForSyntaxAlone) {
  // A sweep's value of analysis.targets cannot see label_files: the name is
  // checked when the whole trial is parsed.
  EXPECT_TRUE(ValidateTrialValue("analysis.targets", YAML::Node("mine,fine")).ok());
  EXPECT_FALSE(ValidateTrialValue("analysis.targets", YAML::Node("mine!")).ok());
  EXPECT_TRUE(ValidateTrialValue("analysis.metrics", YAML::Node("all")).ok());
  EXPECT_TRUE(ValidateTrialValue("analysis.layers", YAML::Node("stage3")).ok());
  EXPECT_EQ(TrialValueTypeOf("analysis.label_files"), TrialValueType::kString);
}

TEST(TrialConfigAnalysisTest, ValidateAnalysisConfigChecksStructsBuiltInCode) {
  AnalysisConfig a;
  EXPECT_TRUE(ValidateAnalysisConfig(a).ok());
  a.knn_k = 0;
  EXPECT_THAT(ValidateAnalysisConfig(a).message(), HasSubstr("analysis.knn_k"));
  a = AnalysisConfig();
  a.targets = "fine,mine";
  EXPECT_THAT(ValidateAnalysisConfig(a).message(),
              HasSubstr("analysis.targets: 'mine' is not a target"));
  a.label_files = "mine=/m.npy";
  EXPECT_TRUE(ValidateAnalysisConfig(a).ok());
  a.metrics = "ncc;knn";
  EXPECT_THAT(ValidateAnalysisConfig(a).message(), HasSubstr("analysis.metrics"));
}

TEST(TrialConfigAnalysisTest, LabelFilesAreRequiredDataFiles) {
  TrialConfig config;
  config.data.dataset = "synthetic";
  config.analysis.label_files = "a=/l/a.npy:/l/a_test.npy,b=/l/b.npy";
  EXPECT_THAT(RequiredDataFiles(config),
              ::testing::ElementsAre("/l/a.npy", "/l/a_test.npy", "/l/b.npy"));
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
