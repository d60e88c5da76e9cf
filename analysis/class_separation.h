// How tightly classes cluster relative to how far apart they are: the class-
// distance normalised variance (CDNV, Galanti et al., ICLR 2022) and the
// neural-collapse statistic NC1 (Papyan, Han and Donoho, PNAS 2020).
//
// Both are computed from training features and labels alone, in float64 on
// the features' device, in chunks of rows so that memory beyond the inputs
// is O(chunk_rows * (D + C) + C * D + C * C): 60k x 2048 features never need
// an N x N or D x D matrix. Both are invariant to a permutation of the
// samples and to scaling every feature by the same positive factor; smaller
// means tighter clusters. docs/metrics.md gives the formulas.
//
// Classes with no sample are left out (they have no mean). Results that are
// not defined (every class mean equal to every other) come back as NaN; the
// caller decides whether to report them.
//
// Thread contract: the functions are pure and may be called concurrently.
// Preconditions are checked with TORCH_CHECK (throws c10::Error).

#ifndef SSLSWEEP_ANALYSIS_CLASS_SEPARATION_H_
#define SSLSWEEP_ANALYSIS_CLASS_SEPARATION_H_

#include "analysis/nearest_class_center.h"

namespace sslsweep {

// The mean squared distance of each class's samples to its mean,
// Var_c = (1/N_c) sum_{i: y_i = c} ||f_i - mu_c||^2, as float64 [C] (0 for
// absent classes). Computed as distances to the centers (two-pass), not as
// E||f||^2 - ||mu||^2, which cancels catastrophically.
// REQUIRES: centers = ComputeClassCenters(features, labels, C) for the same
// features and labels; shapes as ComputeClassCenters.
torch::Tensor WithinClassVariances(const ClassCenters& centers,
                                   const torch::Tensor& features,
                                   const torch::Tensor& labels,
                                   const NccOptions& options = {});

// CDNV: the mean over unordered pairs {i, j}, i != j, of present classes of
//   (Var_i + Var_j) / (2 ||mu_i - mu_j||^2).
// Pairs whose means coincide are skipped; NaN when every pair is skipped or
// fewer than two classes are present.
// REQUIRES: as WithinClassVariances.
double ClassDistanceNormalizedVariance(const ClassCenters& centers,
                                       const torch::Tensor& features,
                                       const torch::Tensor& labels,
                                       const NccOptions& options = {});

// NC1 = Tr(Sigma_W Sigma_B^+) / C over the C present classes, where
//   Sigma_W = (1/N) sum_i (f_i - mu_{y_i})(f_i - mu_{y_i})^T,
//   Sigma_B = (1/C) sum_c (mu_c - mu_G)(mu_c - mu_G)^T,
//   mu_G = (1/N) sum_i f_i (the global mean),
// and ^+ is the Moore-Penrose pseudo-inverse, with eigenvalues below
// kNc1RelativeTolerance times the largest treated as zero. Computed through
// the C x C Gram matrix of the centred means, never a D x D matrix. NaN when
// fewer than two classes are present or all means coincide.
// REQUIRES: as WithinClassVariances.
inline constexpr double kNc1RelativeTolerance = 1e-10;
double WithinClassVariabilityCollapse(const ClassCenters& centers,
                                      const torch::Tensor& features,
                                      const torch::Tensor& labels,
                                      const NccOptions& options = {});

}  // namespace sslsweep

#endif  // SSLSWEEP_ANALYSIS_CLASS_SEPARATION_H_
