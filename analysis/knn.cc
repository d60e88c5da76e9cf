#include "analysis/knn.h"

#include <algorithm>

#include "analysis/row_chunks.h"

namespace sslsweep {
namespace {

void CheckMatrix(const torch::Tensor& matrix, const char* name) {
  TORCH_CHECK(
      matrix.defined() && matrix.dim() == 2 && matrix.is_floating_point(), name,
      " must be a floating [rows, D] tensor");
}

void CheckLabels(const torch::Tensor& labels, int64_t rows, const char* name) {
  TORCH_CHECK(labels.defined() && labels.dim() == 1 &&
                  labels.scalar_type() == torch::kInt64,
              name, " must be an int64 [rows] tensor");
  TORCH_CHECK(labels.size(0) == rows, name, " has ", labels.size(0),
              " entries for ", rows, " rows");
}

// Unit rows; a zero row stays zero (normalize divides by max(norm, eps)).
torch::Tensor UnitRows(const torch::Tensor& rows, torch::ScalarType type) {
  return torch::nn::functional::normalize(
      rows.to(type), torch::nn::functional::NormalizeFuncOptions().dim(1));
}

// query_unit [r, D] times train_unit [N, D] transposed: [r, N].
torch::Tensor Similarities(const torch::Tensor& query_unit,
                           const torch::Tensor& train_unit) {
  // LibTorch's CPU mm calls the system BLAS, which may be a generic build
  // (Debian's OpenBLAS 0.3.21 takes a Sapphire Rapids for an SSE3-only
  // Prescott: 30 GFLOP/s on two cores), while oneDNN, which LibTorch
  // carries, generates kernels for the CPU it runs on (200 GFLOP/s there).
  // Both compute the same float32 products.
  if (at::hasMKLDNN() && query_unit.is_cpu() &&
      query_unit.scalar_type() == torch::kFloat32) {
    return at::mkldnn_linear(query_unit.to_mkldnn(), train_unit,
                             /*bias=*/{})
        .to_dense();
  }
  return query_unit.mm(train_unit.t());
}

}  // namespace

NeighborTable FindNearestNeighbors(const torch::Tensor& train,
                                   const torch::Tensor& queries,
                                   const KnnOptions& options) {
  CheckMatrix(train, "train");
  CheckMatrix(queries, "queries");
  TORCH_CHECK(train.size(1) == queries.size(1), "train has ", train.size(1),
              " dimensions but queries have ", queries.size(1));
  TORCH_CHECK(train.device() == queries.device(),
              "train and queries must be on the same device");
  TORCH_CHECK(train.size(0) > 0, "no training rows to search");
  TORCH_CHECK(options.k > 0, "k must be positive, got ", options.k);
  TORCH_CHECK(options.chunk_rows > 0, "chunk_rows must be positive");

  // Cosine similarities of unit vectors lie in [-1, 1], where float32 keeps
  // about seven digits: enough to rank neighbours, at a fraction of the
  // cost of float64, which is kept for callers that chose it.
  const torch::ScalarType search_type =
      train.scalar_type() == torch::kFloat64 ||
              queries.scalar_type() == torch::kFloat64
          ? torch::kFloat64
          : torch::kFloat32;
  const torch::Tensor train_unit = UnitRows(train, search_type).contiguous();
  const int64_t k = std::min(options.k, train.size(0));
  const int64_t rows = queries.size(0);

  NeighborTable table;
  table.indices = torch::empty(
      {rows, k}, torch::TensorOptions(train.device()).dtype(torch::kInt64));
  table.similarities = torch::empty(
      {rows, k}, torch::TensorOptions(train.device()).dtype(search_type));
  ForEachRowChunk(rows, options.chunk_rows, [&](int64_t begin, int64_t end) {
    const torch::Tensor similarities = Similarities(
        UnitRows(queries.slice(0, begin, end), search_type).contiguous(),
        train_unit);
    auto [top_similarities, top_indices] =
        similarities.topk(k, /*dim=*/1, /*largest=*/true, /*sorted=*/true);
    table.similarities.slice(0, begin, end).copy_(top_similarities);
    table.indices.slice(0, begin, end).copy_(top_indices);
  });
  return table;
}

double KnnAccuracy(const NeighborTable& neighbors,
                   const torch::Tensor& train_labels,
                   const torch::Tensor& query_labels, int64_t num_classes,
                   const KnnOptions& options) {
  TORCH_CHECK(neighbors.indices.defined() && neighbors.indices.dim() == 2 &&
                  neighbors.indices.scalar_type() == torch::kInt64 &&
                  neighbors.similarities.defined() &&
                  neighbors.similarities.sizes() == neighbors.indices.sizes(),
              "neighbors must come from FindNearestNeighbors");
  const int64_t rows = neighbors.indices.size(0);
  TORCH_CHECK(rows > 0, "no queries to classify");
  CheckLabels(query_labels, rows, "query_labels");
  TORCH_CHECK(train_labels.defined() && train_labels.dim() == 1 &&
                  train_labels.scalar_type() == torch::kInt64,
              "train_labels must be an int64 [N] tensor");
  TORCH_CHECK(num_classes > 0, "num_classes must be positive, got ",
              num_classes);
  TORCH_CHECK(options.temperature > 0, "temperature must be positive, got ",
              options.temperature);

  const torch::Device device = neighbors.indices.device();
  const torch::Tensor device_train_labels = train_labels.to(device);
  TORCH_CHECK(device_train_labels.min().item<int64_t>() >= 0 &&
                  device_train_labels.max().item<int64_t>() < num_classes,
              "train_labels must lie in [0, ", num_classes, ")");
  TORCH_CHECK(
      neighbors.indices.max().item<int64_t>() < device_train_labels.size(0),
      "neighbors index rows beyond the ", device_train_labels.size(0),
      " training labels");
  const torch::Tensor neighbor_labels =
      device_train_labels.index_select(0, neighbors.indices.flatten())
          .view_as(neighbors.indices);

  // exp((s - s_best) / T) is exp(s / T) scaled by the same factor for every
  // class of a query, so the vote is the same, and no weight overflows when
  // T is small.
  const torch::Tensor similarities = neighbors.similarities.to(torch::kFloat64);
  const torch::Tensor weights =
      ((similarities - similarities.slice(1, 0, 1)) / options.temperature)
          .exp();
  const torch::Tensor votes =
      torch::zeros({rows, num_classes},
                   torch::TensorOptions(device).dtype(torch::kFloat64))
          .scatter_add_(1, neighbor_labels, weights);
  // argmax returns the first maximum: exact ties go to the lowest class.
  const int64_t correct =
      votes.argmax(1).eq(query_labels.to(device)).sum().item<int64_t>();
  return static_cast<double>(correct) / static_cast<double>(rows);
}

}  // namespace sslsweep
