#include "analysis/nearest_class_center.h"

#include <limits>

#include "analysis/row_chunks.h"

namespace sslsweep {
namespace {

void CheckFeatures(const torch::Tensor& features) {
  TORCH_CHECK(features.defined() && features.dim() == 2,
              "features must be a [N, D] tensor, got ",
              features.defined() ? features.sizes() : c10::IntArrayRef{});
  TORCH_CHECK(features.is_floating_point(),
              "features must be floating point, got ", features.scalar_type());
}

void CheckLabels(const torch::Tensor& labels, int64_t rows) {
  TORCH_CHECK(labels.defined() && labels.dim() == 1 &&
                  labels.scalar_type() == torch::kInt64,
              "labels must be an int64 [N] tensor");
  TORCH_CHECK(labels.size(0) == rows, "labels has ", labels.size(0),
              " entries but features has ", rows, " rows");
}

}  // namespace

ClassCenters ComputeClassCenters(const torch::Tensor& features,
                                 const torch::Tensor& labels,
                                 int64_t num_classes,
                                 const NccOptions& options) {
  CheckFeatures(features);
  CheckLabels(labels, features.size(0));
  TORCH_CHECK(num_classes > 0, "num_classes must be positive, got ",
              num_classes);
  TORCH_CHECK(features.size(0) > 0, "no training features");
  TORCH_CHECK(options.chunk_rows > 0, "chunk_rows must be positive");
  // Everything stays on the features' device: copying 60k x 2048 CUDA
  // features to the host would cost more than the arithmetic.
  const torch::Tensor device_labels = labels.to(features.device());
  TORCH_CHECK(device_labels.min().item<int64_t>() >= 0 &&
                  device_labels.max().item<int64_t>() < num_classes,
              "labels must lie in [0, ", num_classes, ")");

  ClassCenters centers;
  centers.counts = torch::bincount(device_labels, /*weights=*/{}, num_classes);
  // Summed in float64 chunk by chunk, so that no float64 copy of the whole
  // feature matrix exists.
  const int64_t rows = features.size(0);
  torch::Tensor sums = torch::zeros(
      {num_classes, features.size(1)},
      torch::TensorOptions(features.device()).dtype(torch::kFloat64));
  Float64RowChunks chunks(features, options.chunk_rows);
  ForEachRowChunk(rows, options.chunk_rows, [&](int64_t begin, int64_t end) {
    sums.index_add_(0, device_labels.slice(0, begin, end),
                    chunks.Get(begin, end));
  });
  // Absent classes divide zero by one and keep a zero row.
  centers.means =
      sums / centers.counts.clamp_min(1).to(torch::kFloat64).unsqueeze(1);
  return centers;
}

torch::Tensor PredictNearestClassCenter(const ClassCenters& centers,
                                        const torch::Tensor& features,
                                        const NccOptions& options) {
  CheckFeatures(features);
  TORCH_CHECK(centers.means.defined() && centers.means.dim() == 2 &&
                  centers.counts.defined() &&
                  centers.counts.size(0) == centers.means.size(0),
              "centers must come from ComputeClassCenters");
  TORCH_CHECK(features.size(1) == centers.means.size(1), "features have ",
              features.size(1), " dimensions but the centers have ",
              centers.means.size(1));
  TORCH_CHECK(options.chunk_rows > 0, "chunk_rows must be positive");
  const torch::Device device = features.device();
  const torch::Tensor present = centers.counts.to(device) > 0;
  TORCH_CHECK(present.any().item<bool>(), "no class has a center");

  // ||x - mu||^2 = ||x||^2 - 2 x.mu + ||mu||^2; the first term is the same for
  // every class, so the argmin needs only the last two.
  const torch::Tensor means = centers.means.to(device, torch::kFloat64);
  const torch::Tensor bias = means.pow(2).sum(1).masked_fill(
      present.logical_not(), std::numeric_limits<double>::infinity());
  const int64_t rows = features.size(0);
  torch::Tensor predictions =
      torch::empty({rows}, torch::TensorOptions(device).dtype(torch::kInt64));
  Float64RowChunks chunks(features, options.chunk_rows);
  ForEachRowChunk(rows, options.chunk_rows, [&](int64_t begin, int64_t end) {
    const torch::Tensor scores =
        torch::addmm(bias, chunks.Get(begin, end), means.t(), /*beta=*/1,
                     /*alpha=*/-2);
    predictions.slice(0, begin, end).copy_(scores.argmin(1));
  });
  return predictions;
}

double NearestClassCenterAccuracy(const ClassCenters& centers,
                                  const torch::Tensor& features,
                                  const torch::Tensor& labels,
                                  const NccOptions& options) {
  CheckFeatures(features);
  CheckLabels(labels, features.size(0));
  TORCH_CHECK(features.size(0) > 0, "no features to classify");
  const torch::Tensor predictions =
      PredictNearestClassCenter(centers, features, options);
  const int64_t correct =
      predictions.eq(labels.to(predictions.device())).sum().item<int64_t>();
  return static_cast<double>(correct) / static_cast<double>(features.size(0));
}

}  // namespace sslsweep
