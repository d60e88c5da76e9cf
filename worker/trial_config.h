// TrialConfig: the configuration of one trial, and its schema.
//
// This is the contract between the coordinator, which validates sweeps against
// the schema before any trial exists, and `sslsweep-train`, which reads one
// trial's YAML. It has no LibTorch, gRPC or SQLite in it so that both sides
// can link it cheaply. Every key has a dotted path (`optim.lr`), a type, a
// default and a range; docs/trial-config.md lists them.
//
// Thread contract: the functions are pure and may be called from any thread.

#ifndef SSLSWEEP_WORKER_TRIAL_CONFIG_H_
#define SSLSWEEP_WORKER_TRIAL_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/analysis_config.h"
#include "absl/strings/string_view.h"

namespace YAML {
class Node;
struct Mark;
}

namespace sslsweep {

struct DataConfig {
  std::string dataset = "fashion_mnist";  // fashion_mnist | cifar10 | cifar100 | synthetic
  std::string root = "/usr/share/datasets/fashion-mnist";
  int64_t train_samples = 0;  // 0: the whole training split
  int64_t test_samples = 0;   // 0: the whole test split
  int64_t synthetic_classes = 10;      // fine classes of the synthetic data
  int64_t synthetic_superclasses = 5;  // coarse classes; divides synthetic_classes
};

struct BackboneConfig {
  std::string name = "convnet";  // convnet | mlp | resnet18 | resnet34
  int64_t depth = 4;             // convnet: stages; mlp: hidden layers
  int64_t width = 32;            // convnet: first stage's channels; mlp: units
  double width_multiplier = 1.0;  // resnet: channels 64/128/256/512 times this
};

struct ProjectorConfig {
  int64_t layers = 3;    // Linear layers; all but the last followed by BN-ReLU
  int64_t hidden = 512;  // width of the hidden layers
  int64_t out = 512;     // width of the last layer
};

struct MethodConfig {
  std::string name = "vicreg";  // vicreg | simclr | byol | barlow_twins
  double sim_coeff = 25.0;      // VICReg invariance coefficient
  double std_coeff = 25.0;      // VICReg variance coefficient
  double cov_coeff = 1.0;       // VICReg covariance coefficient
  double temperature = 0.5;     // SimCLR NT-Xent temperature
  double barlow_lambda = 5e-3;  // Barlow Twins off-diagonal weight (key: lambda)
  double ema_momentum = 0.996;  // BYOL target EMA, raised to 1 on a cosine
  int64_t predictor_hidden = 512;  // BYOL predictor hidden width
};

// Augmentation probabilities and strengths. Keys a trial does not set take
// the method's recipe (ApplyMethodRecipe); the defaults here are VICReg's.
struct AugmentConfig {
  double crop_scale_min = 0.2;  // random resized crop: area fraction range
  double crop_scale_max = 1.0;
  double flip_prob = 0.5;
  double jitter_prob = 0.8;  // colour jitter
  double brightness = 0.4;
  double contrast = 0.4;
  double saturation = 0.2;
  double hue = 0.1;
  double grayscale_prob = 0.2;
  double blur_prob_view1 = 1.0;  // Gaussian blur, per view (asymmetric recipes)
  double blur_prob_view2 = 0.1;
  double solarize_prob_view1 = 0.0;
  double solarize_prob_view2 = 0.2;
};

struct OptimConfig {
  std::string name = "adamw";  // sgd | lars | adamw
  double lr = 1e-3;            // peak learning rate
  double momentum = 0.9;       // sgd and lars
  double weight_decay = 1e-4;
  int64_t batch_size = 256;
  int64_t warmup_epochs = 0;  // linear warm-up, then cosine decay to 0
  double lars_eta = 1e-3;     // LARS trust coefficient
};

struct TrialConfig {
  int64_t seed = 0;
  int64_t epochs = 5;
  int64_t threads = 0;  // LibTorch intra-op threads; 0: one per core
  std::string device = "cpu";      // cpu | cuda
  std::string precision = "auto";  // auto (bf16 on cuda, fp32 on cpu) | fp32 | bf16
  DataConfig data;
  BackboneConfig backbone;
  ProjectorConfig projector;
  MethodConfig method;
  AugmentConfig augment;
  OptimConfig optim;
  AnalysisConfig analysis;
};

// "<source>:<line>:<column>" (1-based), or just `source` for a node that has
// no position (one built in code rather than parsed). Every YAML error of the
// project is located this way.
std::string YamlLocation(absl::string_view source, const YAML::Mark& mark);

// True for an unquoted scalar: `1e-5` may be a number, `"1e-5"` never is.
bool IsPlainScalar(const YAML::Node& node);

// Every leaf path of the schema, in documentation order.
const std::vector<std::string>& TrialConfigPaths();

// True if `path` names a leaf of the schema (`optim.lr`) or a section
// (`optim`).
bool IsTrialConfigPath(absl::string_view path);
bool IsTrialConfigLeaf(absl::string_view path);

// The type of a leaf's values; nullopt for a path that is not a leaf.
enum class TrialValueType { kInteger, kReal, kString };
std::optional<TrialValueType> TrialValueTypeOf(absl::string_view path);

// Checks that `value` is acceptable for the leaf at `path`. On failure returns
// InvalidArgument with a message that names the path and what is accepted,
// without a location: the caller knows where the value came from.
absl::Status ValidateTrialValue(absl::string_view path, const YAML::Node& value);

// Builds a TrialConfig from a nested YAML mapping: missing keys keep their
// defaults, unknown keys and bad values are errors. Messages start with
// "<source>:<line>:<column>: ". Cross-field rules (e.g. subset sizes against
// the batch size) are checked too.
absl::StatusOr<TrialConfig> ParseTrialConfig(const YAML::Node& root,
                                             absl::string_view source);
absl::StatusOr<TrialConfig> ParseTrialConfigText(absl::string_view yaml,
                                                 absl::string_view source);
absl::StatusOr<TrialConfig> LoadTrialConfigFile(const std::string& path);

// The full configuration as nested YAML (every key, defaults included), such
// that ParseTrialConfigText(TrialConfigToYaml(c)) == c.
std::string TrialConfigToYaml(const TrialConfig& config);

// Sets the augmentation keys that are not in `explicitly_set` (dotted paths)
// to the recipe of config.method.name: VICReg, BYOL and Barlow Twins share
// BYOL's asymmetric recipe (blur 1.0/0.1, solarize 0/0.2, jitter 0.4/0.4/0.2/
// 0.1); SimCLR uses its own (jitter 0.8/0.8/0.8/0.2, blur 0.5/0.5, no
// solarize). ParseTrialConfig calls it.
void ApplyMethodRecipe(TrialConfig& config, const std::vector<std::string>& explicitly_set);

// The files a trial reads from disk: the dataset's (none for synthetic
// data) and the label files of analysis.label_files.
std::vector<std::string> RequiredDataFiles(const TrialConfig& config);

// ---- The analysis keys' lists ----------------------------------------------
//
// Checks every analysis key of `analysis` as ParseTrialConfig does (ranges,
// list syntax, targets against label_files), for callers that fill the
// struct in code. InvalidArgument whose message starts with the key.
absl::Status ValidateAnalysisConfig(const AnalysisConfig& analysis);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRIAL_CONFIG_H_
