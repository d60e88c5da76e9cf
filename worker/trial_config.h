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
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace YAML {
class Node;
}

namespace sslsweep {

struct DataConfig {
  std::string dataset = "fashion_mnist";  // fashion_mnist | synthetic
  std::string root = "/usr/share/datasets/fashion-mnist";
  int64_t train_samples = 0;  // 0: the whole training split
  int64_t test_samples = 0;   // 0: the whole test split
  int64_t synthetic_classes = 10;
};

struct BackboneConfig {
  std::string name = "convnet";  // convnet
  int64_t depth = 4;             // convolutional stages
  int64_t width = 32;            // channels of the first stage, doubled per stage
};

struct ProjectorConfig {
  int64_t hidden = 512;  // Linear-BN-ReLU x2 of this width, then Linear
  int64_t out = 512;
};

struct MethodConfig {
  std::string name = "vicreg";  // vicreg
  double sim_coeff = 25.0;      // VICReg invariance coefficient
  double std_coeff = 25.0;      // VICReg variance coefficient
  double cov_coeff = 1.0;       // VICReg covariance coefficient
};

struct OptimConfig {
  std::string name = "adamw";  // sgd | adamw
  double lr = 1e-3;
  double momentum = 0.9;  // sgd only
  double weight_decay = 1e-4;
  int64_t batch_size = 256;
};

struct AnalysisConfig {
  int64_t every = 1;  // measure after every `every` epochs (and the last)
};

struct TrialConfig {
  int64_t seed = 0;
  int64_t epochs = 5;
  int64_t threads = 0;  // LibTorch intra-op threads; 0: one per core
  DataConfig data;
  BackboneConfig backbone;
  ProjectorConfig projector;
  MethodConfig method;
  OptimConfig optim;
  AnalysisConfig analysis;
};

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

// The files a trial reads from disk (empty for synthetic data).
std::vector<std::string> RequiredDataFiles(const TrialConfig& config);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRIAL_CONFIG_H_
