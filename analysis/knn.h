// Weighted k-nearest-neighbour classification with cosine similarity, the
// kNN monitor of self-supervised learning (Wu et al., CVPR 2018; Caron et
// al., DINO, 2021): features are L2-normalised, each query's k most similar
// training samples vote for their label with weight exp(sim / T), and the
// class with the largest total wins (exact ties: the lowest class index).
//
// The search is separate from the vote so that one search serves every
// label set (target): the neighbours depend on the features alone. The
// search runs on the features' device in float32 (cosine similarity of
// normalised vectors; float64 inputs are searched in float64), in chunks of
// query rows, so memory beyond the inputs is about 2 * chunk_rows * N_train
// floats, a normalised copy of the training rows, and the [Q, k] result.
// Where bfloat16 products are native (fast_products.h: CUDA, or a CPU with
// AVX512-BF16), the 2k + 16 best candidates are found in bfloat16, twice as
// fast, and re-ranked with float32 similarities: the result is the float32
// search's unless more than k + 16 rows lie within bfloat16's rounding
// (< 4e-3 in similarity) of the k-th neighbour.
//
// Thread contract: the functions are pure and may be called concurrently.
// Preconditions are checked with TORCH_CHECK (throws c10::Error).

#ifndef SSLSWEEP_ANALYSIS_KNN_H_
#define SSLSWEEP_ANALYSIS_KNN_H_

#include <cstdint>

#include <torch/torch.h>

namespace sslsweep {

struct KnnOptions {
  int64_t k = 20;             // neighbours; capped at the number of training rows
  double temperature = 0.07;  // vote weight exp(similarity / temperature)
  int64_t chunk_rows = 1024;  // query rows compared with the training set at once
};

// The k most similar training rows of each query row, most similar first.
struct NeighborTable {
  torch::Tensor indices;       // int64 [Q, k'] rows of the training set
  torch::Tensor similarities;  // [Q, k'] cosine similarities, descending
};

// Finds the min(k, N_train) nearest training rows of every query row. Rows
// of zero norm are compared as zero vectors (similarity 0 to everything).
// REQUIRES: train [N, D] and queries [Q, D] floating, same D and device,
// N > 0, options.k > 0, options.chunk_rows > 0.
NeighborTable FindNearestNeighbors(const torch::Tensor& train,
                                   const torch::Tensor& queries,
                                   const KnnOptions& options = {});

// The fraction of queries whose weighted vote is their label, in [0, 1].
// REQUIRES: neighbors from FindNearestNeighbors; train_labels int64 [N] and
// query_labels int64 [Q] in [0, num_classes); options.temperature > 0.
double KnnAccuracy(const NeighborTable& neighbors,
                   const torch::Tensor& train_labels,
                   const torch::Tensor& query_labels, int64_t num_classes,
                   const KnnOptions& options = {});

}  // namespace sslsweep

#endif  // SSLSWEEP_ANALYSIS_KNN_H_
