// Linear-probe accuracy: how well a linear classifier on frozen features
// separates a label set.
//
// The solver is closed-form ridge regression onto one-hot targets (a
// "ridge classifier"), on features standardised with the training rows'
// mean and standard deviation, with an intercept, predicting the argmax.
// The ridge strength is chosen on held-out data: a seeded split holds out
// `holdout_fraction` of the training rows, each strength of `ridge_grid`
// (lambda, relative to the number of rows: the system is
// (X^T X + lambda N I) W = X^T Y) is fitted on the rest and scored on the
// held-out rows, and the best (ties: the strongest) is refitted on every
// training row. All strengths share one eigendecomposition of X^T X, so a
// fit costs O(N D^2 + D^3) once per layer, and each label set then costs
// O(N D C + D^2 C): one LinearProbe serves every target of a layer.
// docs/metrics.md says why this solver and how it compares with logistic
// regression.
//
// Runs in float64 on the features' device, in chunks of rows (memory beyond
// the inputs is O(chunk_rows * D + D^2)).
//
// Thread contract: a LinearProbe is immutable after construction; its const
// methods may be called concurrently.

#ifndef SSLSWEEP_ANALYSIS_LINEAR_PROBE_H_
#define SSLSWEEP_ANALYSIS_LINEAR_PROBE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include <torch/torch.h>

namespace sslsweep {

struct LinearProbeOptions {
  std::vector<double> ridge_grid = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0};
  double holdout_fraction = 0.1;  // of the training rows, for choosing lambda
  uint64_t seed = 0;              // the holdout split
  int64_t chunk_rows = 4096;
};

class LinearProbe {
 public:
  // Prepares the features of one layer: standardisation, the split, and the
  // decompositions. Throws c10::Error when the preconditions fail.
  // REQUIRES: train [N, D] floating with N >= 2; test [M, D] on the same
  // device, or an undefined tensor; options.ridge_grid non-empty and
  // positive; 0 < holdout_fraction < 1.
  LinearProbe(const torch::Tensor& train, const torch::Tensor& test,
              const LinearProbeOptions& options = {});
  ~LinearProbe();
  LinearProbe(LinearProbe&&) noexcept;
  LinearProbe& operator=(LinearProbe&&) noexcept;

  struct Result {
    double train_accuracy = 0;  // refitted classifier on the training rows
    double test_accuracy = 0;   // NaN without test rows or labels
    double ridge = 0;           // the chosen lambda
  };
  // Fits and scores one label set; test_accuracy is NaN without test rows
  // or test labels.
  // REQUIRES: train_labels int64 [N] and test_labels int64 [M] or undefined,
  // values in [0, num_classes).
  Result Fit(const torch::Tensor& train_labels, const torch::Tensor& test_labels,
             int64_t num_classes) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_ANALYSIS_LINEAR_PROBE_H_
