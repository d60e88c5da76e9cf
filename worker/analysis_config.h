// AnalysisConfig: what the trainer measures after an epoch, and the syntax
// of its list-valued keys.
//
// Part of the trial configuration (worker/trial_config.h holds the schema
// and includes this header); apart so that each file has one job. No
// LibTorch, gRPC or SQLite: the coordinator validates sweeps with it too.
//
// Thread contract: the functions are pure and may be called from any thread.

#ifndef SSLSWEEP_WORKER_ANALYSIS_CONFIG_H_
#define SSLSWEEP_WORKER_ANALYSIS_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sslsweep {

// What the trainer measures after an epoch (analysis/metric_suite.h). The
// list-valued keys are comma-separated strings so that a sweep can vary them
// like any other key.
struct AnalysisConfig {
  int64_t every = 1;  // measure after every `every` epochs (and the last)
  // Tap names (backbone stages, "embedding", "projector1".."projectorK"), or
  // "all"; the trainer checks the names against the network it builds.
  std::string layers = "all";
  // sample | fine | coarse | random | a name from label_files, or "all".
  std::string targets = "all";
  std::string metrics = "all";  // ncc | cdnv | nc1 | knn | linear, or "all"
  int64_t max_samples = 10000;  // train and test rows measured (first N); 0: all
  int64_t knn_k = 20;
  double knn_temperature = 0.07;
  int64_t sample_images = 256;  // the `sample` target: training images used
  int64_t sample_views = 8;     // augmented views of each, per split
  // User label sets: "name=train.npy[:test.npy][,name2=...]". Each file
  // holds one integer label per sample of the dataset's full split, in file
  // order; without a test file the target gets train metrics only.
  std::string label_files = "";
};

// analysis.layers, .targets and .metrics are comma-separated names (spaces
// around a name are ignored; a name given twice counts once), or "all".

// The targets every trial has, in measurement order; analysis.label_files
// adds the user's after them.
inline constexpr const char* kBuiltinTargets[] = {"sample", "fine", "coarse", "random"};

// One entry of analysis.label_files, "name=train.npy[:test.npy]".
struct LabelFileSpec {
  std::string name;
  std::string train_path;
  std::string test_path;  // empty: the target gets train metrics only
};

// The names of a comma-separated list, trimmed, duplicates dropped, in their
// first order. Empty names are kept (as "") so that callers can refuse them.
std::vector<std::string> SplitAnalysisList(absl::string_view text);

// Parses analysis.label_files ("" is no files). InvalidArgument, naming the
// key and the entry, for an entry without '=', a name not [a-z0-9_]+ or that
// of a builtin target (or "all"), a name declared twice, an empty path.
absl::StatusOr<std::vector<LabelFileSpec>> ParseLabelFiles(absl::string_view text);

// analysis.targets resolved: the target names in measurement order, "all"
// expanded to kBuiltinTargets then the label files in their order.
// InvalidArgument naming analysis.targets for a name that is neither builtin
// nor declared in analysis.label_files (or when label_files is malformed).
absl::StatusOr<std::vector<std::string>> ResolveAnalysisTargets(
    const AnalysisConfig& analysis);

// Syntax checks of the list keys, for the schema: InvalidArgument naming the
// key and the offending name. Targets are checked for syntax only; whether
// a name is declared in analysis.label_files is ResolveAnalysisTargets'
// cross-field rule.
absl::Status CheckAnalysisLayers(const std::string& text);
absl::Status CheckAnalysisTargets(const std::string& text);
absl::Status CheckAnalysisMetrics(const std::string& text);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_ANALYSIS_CONFIG_H_
