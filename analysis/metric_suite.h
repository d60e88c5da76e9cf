// The measurement suite of one layer: every selected metric for every label
// set (target), named `<metric>/<target>/<layer>` as the brief defines.
//
// Metrics (docs/metrics.md has the formulas and sources):
//   ncc_train_acc, ncc_test_acc   nearest class center accuracy
//   cdnv                          class-distance normalised variance (train)
//   nc1                           Tr(Sigma_W Sigma_B^+) / C (train)
//   knn_test_acc                  weighted cosine kNN accuracy
//   linear_train_acc, linear_test_acc
//                                 logistic-regression linear probe accuracy
// selected in groups by name: "ncc", "cdnv", "nc1", "knn", "linear". Test
// metrics need test rows and test labels: a target without them gets only
// the train metrics. The expensive parts that do not depend on labels (the
// kNN search, the probe's decomposition) run once per layer and serve every
// target.
//
// Thread contract: MeasureLayer is pure and may be called concurrently, but
// each call uses LibTorch's intra-op threads. Throws c10::Error on a broken
// precondition.

#ifndef SSLSWEEP_ANALYSIS_METRIC_SUITE_H_
#define SSLSWEEP_ANALYSIS_METRIC_SUITE_H_

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "analysis/knn.h"
#include "analysis/linear_probe.h"
#include "analysis/nearest_class_center.h"

namespace sslsweep {

// The metric groups, in reporting order.
inline constexpr const char* kMetricGroups[] = {"ncc", "cdnv", "nc1", "knn", "linear"};

struct MetricSelection {
  bool ncc = true;
  bool cdnv = true;
  bool nc1 = true;
  bool knn = true;
  bool linear = true;
};

// Parses "ncc,cdnv" (comma-separated group names, or "all"). On a bad name
// returns false and sets *error to a message naming it and the valid names.
bool ParseMetricSelection(const std::string& text, MetricSelection* selection,
                          std::string* error);

// One label set over the rows of a layer's features.
struct Target {
  std::string name;          // "fine", "coarse", "random", "sample", or a user's
  torch::Tensor train_labels;  // int64 [N] on the CPU or the features' device
  torch::Tensor test_labels;   // int64 [M], or undefined: no test metrics
  int64_t num_classes = 0;     // labels are in [0, num_classes)
};

struct SuiteOptions {
  MetricSelection metrics;
  KnnOptions knn;
  LinearProbeOptions probe;
  NccOptions ncc;
};

struct MetricValue {
  std::string name;  // "<metric>/<target>/<layer>"
  double value = 0;
};

// Measures `layer` (its training rows `train` [N, D], test rows `test`
// [M, D] or undefined) for each target, in target order and, within a
// target, in the order of the list above. Values that are not defined (a
// CDNV whose class means all coincide) are left out rather than reported as
// NaN.
// REQUIRES: every target's train_labels has N rows (and test_labels M rows
// when defined), num_classes > 0; train N >= 2.
std::vector<MetricValue> MeasureLayer(const std::string& layer,
                                      const torch::Tensor& train,
                                      const torch::Tensor& test,
                                      const std::vector<Target>& targets,
                                      const SuiteOptions& options = {});

// A seeded random partition of `rows` samples into `num_classes` classes of
// equal size (up to one): a random permutation of (0, 1, ..., C-1, 0, 1, ...).
// The same (rows, num_classes, seed) always gives the same labels, on any
// machine (it uses its own CPU generator, not the global one).
// REQUIRES: rows > 0, num_classes > 0.
torch::Tensor RandomPartitionLabels(int64_t rows, int64_t num_classes,
                                    uint64_t seed);

}  // namespace sslsweep

#endif  // SSLSWEEP_ANALYSIS_METRIC_SUITE_H_
