// `sslsweep analyze`: the trainer's clustering measurements (analysis/
// metric_suite.h) on embeddings exported from any model, read from numpy
// .npy files, printed as a table or as one JSON object.
//
// This header is LibTorch-free so that a test or a composition root can hold
// the options without parsing torch/torch.h; the implementation links
// sslsweep_analysis. `sslsweep analyze ARGS` execs the separate binary
// `sslsweep-analyze ARGS`, because the `sslsweep` CLI never links LibTorch.
//
// Thread contract: RunAnalyze may be called from one thread at a time (it
// sets LibTorch's global intra-op thread count when options.threads > 0).

#ifndef SSLSWEEP_CLI_ANALYZE_COMMAND_H_
#define SSLSWEEP_CLI_ANALYZE_COMMAND_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace sslsweep {

inline constexpr int kAnalyzeOk = 0;
inline constexpr int kAnalyzeInternalError = 1;
inline constexpr int kAnalyzeBadInput = 2;

struct AnalyzeOptions {
  std::string features_path;       // [N, D] float32 or float64
  std::string labels_path;         // [N] integer class indices: the "fine" target
  std::string test_features_path;  // [M, D]; empty: train metrics only
  std::string test_labels_path;    // [M]; given exactly when test_features_path is
  // Extra targets, each "NAME=TRAIN.npy" or "NAME=TRAIN.npy:TEST.npy" (split
  // at the last ':'). A set without TEST.npy gets only the train metrics.
  std::vector<std::string> label_sets;
  // Comma-separated target names ("fine", "random", or a label set's NAME),
  // in reporting order, or "all": fine, random, then every label set.
  std::string targets = "all";
  std::string metrics = "all";  // metric groups, as ParseMetricSelection
  int64_t knn_k = 20;
  double knn_temperature = 0.07;
  // The random partition (train: seed, test: seed + 1).
  uint64_t seed = 0;
  std::string layer = "features";  // the <layer> part of each metric name
  int threads = 0;                 // LibTorch intra-op threads; 0: its default (every core)
  std::string format = "table";    // "table" or "json"
};

// Reads the files, measures every selected metric for every target and
// prints the result to `out`. Returns kAnalyzeOk; kAnalyzeBadInput for a bad
// option or input file (the message, on `err`, names the file and what is
// wrong; nothing is written to `out`); kAnalyzeInternalError when the
// measurement itself fails.
int RunAnalyze(const AnalyzeOptions& options, std::ostream& out, std::ostream& err);

}  // namespace sslsweep

#endif  // SSLSWEEP_CLI_ANALYZE_COMMAND_H_
