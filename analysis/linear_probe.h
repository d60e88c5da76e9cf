// Linear-probe accuracy: how well a linear classifier on frozen features
// separates a label set.
//
// The classifier is multinomial logistic regression, the probe of the SSL
// literature and scikit-learn's LogisticRegression with its defaults: on
// features standardised with the training rows' mean and standard deviation,
// it minimises the mean cross-entropy plus ||W||^2 / (2 C N), C =
// inverse_regularization (scikit-learn's C, default 1), with an unpenalised
// intercept, and predicts the argmax. The solver is L-BFGS (strong Wolfe line
// search) for at most max_iterations iterations, in a whitened basis: the
// rows are multiplied by V (S/N + lambda)^(-1/2), from the eigendecomposition
// V S V^T of the standardised X^T X, and the penalty rewritten to match, so
// that the problem is well conditioned and a few dozen iterations reach the
// optimum's accuracy (docs/metrics.md has the figures). There is no random
// element: the same features and labels give the same numbers.
//
// Cost: one pass over the rows (X^T X) and one D x D eigendecomposition per
// layer, when the LinearProbe is built; then per label set a few dozen
// passes, each two [N, D] x [D, C] products. The whitened rows are kept in
// bfloat16 where its products are native (fast_products.h) and in the
// features' float type elsewhere, twice (row- and column-major): memory is
// about 2 N D times 2 (bfloat16) or 4 (float32) bytes. Everything runs on
// the features' device.
//
// Thread contract: a LinearProbe is immutable after construction; Fit may be
// called from one thread at a time (it uses LibTorch's intra-op threads).

#ifndef SSLSWEEP_ANALYSIS_LINEAR_PROBE_H_
#define SSLSWEEP_ANALYSIS_LINEAR_PROBE_H_

#include <cstdint>
#include <memory>

#include <torch/torch.h>

namespace sslsweep {

struct LinearProbeOptions {
  double inverse_regularization = 1.0;  // C: the penalty is ||W||^2 / (2 C N)
  int64_t max_iterations = 30;          // L-BFGS iterations per label set
  int64_t chunk_rows = 4096;            // rows per pass when scanning the inputs
};

class LinearProbe {
 public:
  // Prepares the features of one layer: standardisation, whitening and the
  // whitened rows. Throws c10::Error when the preconditions fail.
  // REQUIRES: train [N, D] floating with N >= 2; test [M, D] on the same
  // device, or an undefined tensor; inverse_regularization > 0;
  // max_iterations > 0; chunk_rows > 0.
  LinearProbe(const torch::Tensor& train, const torch::Tensor& test,
              const LinearProbeOptions& options = {});
  ~LinearProbe();
  LinearProbe(LinearProbe&&) noexcept;
  LinearProbe& operator=(LinearProbe&&) noexcept;

  struct Result {
    double train_accuracy = 0;
    double test_accuracy = 0;  // NaN without test rows or test labels
  };
  // Fits and scores one label set.
  // REQUIRES: train_labels int64 [N] with values in [0, num_classes); when
  // defined and test rows exist, test_labels int64 [M] likewise.
  Result Fit(const torch::Tensor& train_labels, const torch::Tensor& test_labels,
             int64_t num_classes) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_ANALYSIS_LINEAR_PROBE_H_
