// Nearest class center (NCC) classification of feature vectors.
//
// The paper's central measurement: class means mu_c are computed from the
// training features, and a sample x is predicted as argmin_c ||f(x) - mu_c||.
// High NCC accuracy means the representation clusters samples by class.
// Classes with no training sample have no center and are never predicted.
// Distances are computed in chunks of rows so that memory stays bounded for
// large feature matrices (60k x 2048 and beyond), in double precision so that
// near-ties are decided as an exact computation would decide them; exact ties
// go to the lowest class index.
//
// Thread contract: the functions are pure (no global state besides LibTorch's
// intra-op thread pool) and may be called concurrently from several threads.
// Preconditions are checked with TORCH_CHECK, which throws c10::Error.

#ifndef SSLSWEEP_ANALYSIS_NEAREST_CLASS_CENTER_H_
#define SSLSWEEP_ANALYSIS_NEAREST_CLASS_CENTER_H_

#include <cstdint>

#include <torch/torch.h>

namespace sslsweep {

// The class means of a training set, on the training features' device.
struct ClassCenters {
  torch::Tensor means;   // [C, D] float64; rows of absent classes are zero
  torch::Tensor counts;  // [C] int64 training samples per class
};

struct NccOptions {
  // Rows of `features` processed at once (summed into the class means, or
  // compared with every center); memory beyond the inputs is about
  // chunk_rows * (D + C) * 8 bytes.
  int64_t chunk_rows = 2048;
};

// Computes the mean feature of each class.
// REQUIRES: features is a floating [N, D] tensor, labels an int64 [N] tensor
// with values in [0, num_classes), num_classes > 0, N > 0,
// options.chunk_rows > 0.
ClassCenters ComputeClassCenters(const torch::Tensor& features,
                                 const torch::Tensor& labels,
                                 int64_t num_classes,
                                 const NccOptions& options = {});

// Returns argmin_c ||features[i] - means[c]|| for each row i as an int64 [N]
// tensor, over the classes with counts[c] > 0.
// REQUIRES: features is a floating [N, D] tensor with D equal to the centers'
// dimension, at least one class has a center, options.chunk_rows > 0.
torch::Tensor PredictNearestClassCenter(const ClassCenters& centers,
                                        const torch::Tensor& features,
                                        const NccOptions& options = {});

// The fraction of rows whose nearest class center is their label, in [0, 1].
// REQUIRES: as PredictNearestClassCenter, plus labels an int64 [N] tensor and
// N > 0.
double NearestClassCenterAccuracy(const ClassCenters& centers,
                                  const torch::Tensor& features,
                                  const torch::Tensor& labels,
                                  const NccOptions& options = {});

}  // namespace sslsweep

#endif  // SSLSWEEP_ANALYSIS_NEAREST_CLASS_CENTER_H_
