#include "analysis/class_separation.h"

#include <algorithm>
#include <limits>

#include "analysis/row_chunks.h"

namespace sslsweep {
namespace {

constexpr double kUndefined = std::numeric_limits<double>::quiet_NaN();

void CheckInputs(const ClassCenters& centers, const torch::Tensor& features,
                 const torch::Tensor& labels, const NccOptions& options) {
  TORCH_CHECK(
      features.defined() && features.dim() == 2 && features.is_floating_point(),
      "features must be a floating [N, D] tensor");
  TORCH_CHECK(labels.defined() && labels.dim() == 1 &&
                  labels.scalar_type() == torch::kInt64,
              "labels must be an int64 [N] tensor");
  TORCH_CHECK(labels.size(0) == features.size(0), "labels has ", labels.size(0),
              " entries but features has ", features.size(0), " rows");
  TORCH_CHECK(centers.means.defined() && centers.means.dim() == 2 &&
                  centers.counts.defined() && centers.counts.dim() == 1 &&
                  centers.counts.size(0) == centers.means.size(0),
              "centers must come from ComputeClassCenters");
  TORCH_CHECK(centers.means.size(1) == features.size(1), "features have ",
              features.size(1), " dimensions but the centers have ",
              centers.means.size(1));
  TORCH_CHECK(options.chunk_rows > 0, "chunk_rows must be positive");
}

// f_i - mu_{y_i} for row ranges, in float64: the two-pass form, which keeps
// the precision that E||f||^2 - ||mu||^2 would cancel away. Both the
// converted rows and the gathered means live in buffers reused across
// chunks.
class ResidualChunks {
 public:
  ResidualChunks(const torch::Tensor& features, const torch::Tensor& labels,
                 const torch::Tensor& means, int64_t chunk_rows)
      : labels_(labels),
        means_(means),
        rows_(features, chunk_rows),
        gathered_(torch::empty(
            {std::min(chunk_rows, features.size(0)), features.size(1)},
            means.options())) {}

  // Rows [begin, end); valid until the next call.
  torch::Tensor Get(int64_t begin, int64_t end) {
    torch::Tensor means_of_rows = gathered_.slice(0, 0, end - begin);
    torch::index_select_out(means_of_rows, means_, 0,
                            labels_.slice(0, begin, end));
    return rows_.Get(begin, end).sub_(means_of_rows);
  }

 private:
  const torch::Tensor labels_;
  const torch::Tensor means_;
  Float64RowChunks rows_;
  torch::Tensor gathered_;
};

torch::Tensor PresentClasses(const ClassCenters& centers,
                             const torch::Device& device) {
  return centers.counts.to(device).gt(0).nonzero().squeeze(1);
}

}  // namespace

torch::Tensor WithinClassVariances(const ClassCenters& centers,
                                   const torch::Tensor& features,
                                   const torch::Tensor& labels,
                                   const NccOptions& options) {
  CheckInputs(centers, features, labels, options);
  const torch::Device device = features.device();
  const torch::Tensor means = centers.means.to(device, torch::kFloat64);
  const torch::Tensor device_labels = labels.to(device);
  const int64_t num_classes = means.size(0);
  torch::Tensor squared_sums = torch::zeros(
      {num_classes}, torch::TensorOptions(device).dtype(torch::kFloat64));
  ResidualChunks residuals(features, device_labels, means, options.chunk_rows);
  ForEachRowChunk(
      features.size(0), options.chunk_rows, [&](int64_t begin, int64_t end) {
        squared_sums.index_add_(0, device_labels.slice(0, begin, end),
                                residuals.Get(begin, end).pow_(2).sum(1));
      });
  // Absent classes divide zero by one and stay 0.
  return squared_sums /
         centers.counts.to(device).clamp_min(1).to(torch::kFloat64);
}

double ClassDistanceNormalizedVariance(const ClassCenters& centers,
                                       const torch::Tensor& features,
                                       const torch::Tensor& labels,
                                       const NccOptions& options) {
  const torch::Tensor variances =
      WithinClassVariances(centers, features, labels, options);
  const torch::Device device = features.device();
  const torch::Tensor present = PresentClasses(centers, device);
  const int64_t classes = present.size(0);
  if (classes < 2) return kUndefined;
  const torch::Tensor means =
      centers.means.to(device, torch::kFloat64).index_select(0, present);
  const torch::Tensor variance = variances.index_select(0, present);
  // compute_mode 2 subtracts coordinates instead of expanding
  // ||a||^2 + ||b||^2 - 2ab, so that coinciding means give exactly 0 and
  // close ones keep their digits.
  const torch::Tensor squared_distances =
      torch::cdist(means, means, /*p=*/2, /*compute_mode=*/2).pow(2);
  const torch::Tensor counted_pairs =
      torch::ones({classes, classes},
                  torch::TensorOptions(device).dtype(torch::kBool))
          .triu(1)
          .logical_and(squared_distances.gt(0));
  const torch::Tensor ratios =
      (variance.unsqueeze(1) + variance.unsqueeze(0)) / (2 * squared_distances);
  const torch::Tensor counted = ratios.masked_select(counted_pairs);
  if (counted.numel() == 0) return kUndefined;
  return counted.mean().item<double>();
}

double WithinClassVariabilityCollapse(const ClassCenters& centers,
                                      const torch::Tensor& features,
                                      const torch::Tensor& labels,
                                      const NccOptions& options) {
  CheckInputs(centers, features, labels, options);
  const torch::Device device = features.device();
  const torch::Tensor present = PresentClasses(centers, device);
  const int64_t classes = present.size(0);
  if (classes < 2) return kUndefined;

  const torch::Tensor all_means = centers.means.to(device, torch::kFloat64);
  const torch::Tensor counts =
      centers.counts.to(device).to(torch::kFloat64).index_select(0, present);
  const torch::Tensor means = all_means.index_select(0, present);
  const torch::Tensor global_mean =
      (counts.unsqueeze(1) * means).sum(0) / counts.sum();
  const torch::Tensor centred_means = means - global_mean;  // M [C, D]

  // With M = U S V^T: Sigma_B^+ = C (M^T M)^+ = C M^T (G^+)^2 M for the
  // Gram matrix G = M M^T, so Tr(Sigma_W Sigma_B^+) / C = Tr(G^+ G^+ K)
  // with K = M Sigma_W M^T = Z^T Z / N, Z = (F - mu_y) M^T. Every matrix
  // here is C x C or N x C, never D x D.
  const torch::Tensor device_labels = labels.to(device);
  torch::Tensor projected_scatter = torch::zeros(
      {classes, classes}, torch::TensorOptions(device).dtype(torch::kFloat64));
  ResidualChunks residuals(features, device_labels, all_means,
                           options.chunk_rows);
  ForEachRowChunk(
      features.size(0), options.chunk_rows, [&](int64_t begin, int64_t end) {
        const torch::Tensor z = residuals.Get(begin, end).mm(centred_means.t());
        projected_scatter.addmm_(z.t(), z);
      });
  const torch::Tensor within = projected_scatter / features.size(0);  // K

  const torch::Tensor gram = centred_means.mm(centred_means.t());  // G
  auto [eigenvalues, eigenvectors] = torch::linalg_eigh(gram);
  const double largest = eigenvalues.max().item<double>();
  if (!(largest > 0)) return kUndefined;
  const torch::Tensor kept = eigenvalues.gt(kNc1RelativeTolerance * largest);
  const torch::Tensor inverse_eigenvalues = torch::where(
      kept, eigenvalues.reciprocal(), torch::zeros_like(eigenvalues));
  const torch::Tensor gram_pinv =
      eigenvectors.mm(inverse_eigenvalues.unsqueeze(1) * eigenvectors.t());
  return gram_pinv.mm(gram_pinv).mul(within).sum().item<double>();
}

}  // namespace sslsweep
