#include "analysis/knn.h"

#include <algorithm>
#include <tuple>

#include "analysis/fast_products.h"
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

// Candidates kept from the bfloat16 ranking for the exact float32 re-rank.
// bfloat16 keeps 8 significant bits of each coordinate, so a similarity of
// unit vectors moves by at most 4e-3 (Cauchy-Schwarz), typically 1e-4;
// 2k + 16 candidates hold the k true neighbours unless more than k + 16
// rows crowd within that distance of the k-th one.
int64_t CandidateCount(int64_t k, int64_t rows) { return std::min(rows, 2 * k + 16); }

// The k most similar rows of train_unit for each row of query_unit, most
// similar first: (similarities, indices).
std::tuple<torch::Tensor, torch::Tensor> TopNeighbors(const torch::Tensor& query_unit,
                                                      const torch::Tensor& train_unit,
                                                      const torch::Tensor& train_bf16,
                                                      int64_t k) {
  if (!train_bf16.defined()) {
    return ProductWithTransposed(query_unit, train_unit)
        .topk(k, /*dim=*/1, /*largest=*/true, /*sorted=*/true);
  }
  const int64_t rows = query_unit.size(0);
  const int64_t count = CandidateCount(k, train_unit.size(0));
  const torch::Tensor candidates =
      std::get<1>(ProductWithTransposed(query_unit.to(torch::kBFloat16), train_bf16)
                      .topk(count, /*dim=*/1, /*largest=*/true, /*sorted=*/false));
  // The candidates' similarities again, in float32: the neighbours and their
  // vote weights are those of a float32 search.
  const torch::Tensor exact =
      torch::bmm(train_unit.index_select(0, candidates.flatten())
                     .view({rows, count, train_unit.size(1)}),
                 query_unit.unsqueeze(2))
          .squeeze(2);
  auto [similarities, positions] =
      exact.topk(k, /*dim=*/1, /*largest=*/true, /*sorted=*/true);
  return {similarities, candidates.gather(1, positions)};
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
  // float64 inputs get a float64 search; float32 ones a bfloat16 ranking
  // re-ranked in float32 where bfloat16 products are native.
  torch::Tensor train_bf16;
  if (search_type == torch::kFloat32 && HasFastBfloat16Products(train.device()) &&
      CandidateCount(k, train.size(0)) < train.size(0)) {
    train_bf16 = train_unit.to(torch::kBFloat16);
  }
  ForEachRowChunk(rows, options.chunk_rows, [&](int64_t begin, int64_t end) {
    auto [top_similarities, top_indices] = TopNeighbors(
        UnitRows(queries.slice(0, begin, end), search_type).contiguous(), train_unit,
        train_bf16, k);
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
