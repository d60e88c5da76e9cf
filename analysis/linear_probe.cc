#include "analysis/linear_probe.h"

#include <cmath>
#include <limits>

#include "analysis/fast_products.h"
#include "analysis/row_chunks.h"

namespace sslsweep {
namespace {

// A feature whose spread is below this fraction of the largest feature's
// root mean square is (numerically) constant: dividing by its own standard
// deviation would blow rounding noise up to unit variance, or divide 0 by 0.
constexpr double kRelativeStdFloor = 1e-8;
constexpr int64_t kHistory = 10;  // L-BFGS curvature pairs
constexpr double kGradientTolerance = 1e-5;

torch::TensorOptions Float64On(const torch::Device& device) {
  return torch::TensorOptions(device).dtype(torch::kFloat64);
}

void CheckLabels(const torch::Tensor& labels, int64_t rows, int64_t num_classes,
                 const char* name) {
  TORCH_CHECK(labels.defined() && labels.dim() == 1 &&
                  labels.scalar_type() == torch::kInt64,
              name, " must be an int64 [rows] tensor");
  TORCH_CHECK(labels.size(0) == rows, name, " has ", labels.size(0),
              " entries for ", rows, " rows");
  TORCH_CHECK(rows == 0 || (labels.min().item<int64_t>() >= 0 &&
                            labels.max().item<int64_t>() < num_classes),
              name, " must lie in [0, ", num_classes, ")");
}

}  // namespace

struct LinearProbe::State {
  LinearProbeOptions options;
  torch::Tensor train;  // the layer's rows, as given
  torch::Tensor test;   // undefined: no test rows
  double penalty = 0;   // lambda = 1 / (C N)
  // Standardisation, from every training row: (x - mean) * inverse_scale.
  torch::Tensor mean;           // [D] float64
  torch::Tensor inverse_scale;  // [D] float64
  // Whitening of the standardised rows, V (S/N + lambda)^(-1/2), and the
  // penalty's weights in that basis: ||W||^2 = sum_j weight_j ||U_j||^2.
  torch::Tensor whitening;        // [D, D] float64
  torch::Tensor penalty_weights;  // [D], parameter type
  // The whitened training rows, in the product type, both layouts.
  torch::Tensor rows;     // [N, D]
  torch::Tensor columns;  // [D, N]
  torch::ScalarType parameter_type = torch::kFloat32;

  void ComputeWhitening();
  void WhitenRows();
  double Accuracy(const torch::Tensor& weights, const torch::Tensor& bias,
                  const torch::Tensor& features, const torch::Tensor& labels) const;
};

void LinearProbe::State::ComputeWhitening() {
  const int64_t count = train.size(0);
  const int64_t dims = train.size(1);
  const torch::Device device = train.device();
  // Sums of products of rows shifted by a rough mean (the first chunk's):
  // centring them afterwards, sum u u^T - n m m^T, then cancels only the
  // small remainder m, where unshifted rows far from the origin would lose
  // every digit of their variance. Each chunk's products are float32 for
  // float32 rows (oneDNN, fast_products.h), summed over chunks in float64.
  const torch::Tensor shift =
      train.slice(0, 0, options.chunk_rows).to(torch::kFloat64).mean(0);
  const torch::ScalarType product_type =
      train.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  const torch::Tensor product_shift = shift.to(product_type);
  torch::Tensor gram = torch::zeros({dims, dims}, Float64On(device));
  torch::Tensor sum = torch::zeros({dims}, Float64On(device));
  ForEachRowChunk(count, options.chunk_rows, [&](int64_t begin, int64_t end) {
    const torch::Tensor u = train.slice(0, begin, end).to(product_type).sub(product_shift);
    gram += Gram(u).to(torch::kFloat64);
    sum += u.sum(0, /*keepdim=*/false, torch::kFloat64);
  });
  const torch::Tensor shifted_mean = sum / count;
  const torch::Tensor centred_gram = gram - count * torch::outer(shifted_mean, shifted_mean);
  const torch::Tensor std = (centred_gram.diagonal() / count).clamp_min(0).sqrt();
  mean = shift + shifted_mean;
  const double largest_rms = (std.pow(2) + mean.pow(2)).sqrt().max().item<double>();
  // All-zero features: any positive floor leaves them zero.
  const double floor = largest_rms > 0 ? kRelativeStdFloor * largest_rms
                                       : std::numeric_limits<double>::min();
  inverse_scale = std.clamp_min(floor).reciprocal();
  const torch::Tensor covariance =
      centred_gram * torch::outer(inverse_scale, inverse_scale) / count;
  auto [eigenvalues, eigenvectors] = torch::linalg_eigh(covariance);
  // The loss's curvature along eigenvector j is about s_j (times the
  // softmax's), the penalty's lambda: scaling by (s_j + lambda)^(-1/2) gives
  // every direction about the same, which is what L-BFGS converges fastest
  // on. Rounding may leave tiny negative eigenvalues of a PSD matrix.
  const torch::Tensor shifted = eigenvalues.clamp_min(0) + penalty;
  whitening = eigenvectors * shifted.rsqrt().unsqueeze(0);
  penalty_weights = shifted.reciprocal().to(parameter_type);
}

void LinearProbe::State::WhitenRows() {
  const bool bfloat16 = parameter_type == torch::kFloat32 &&
                        HasFastBfloat16Products(train.device());
  const torch::ScalarType storage = bfloat16 ? torch::kBFloat16 : parameter_type;
  const torch::Tensor centre = mean.to(parameter_type);
  const torch::Tensor scale = inverse_scale.to(parameter_type);
  const torch::Tensor whitening_t = whitening.t().contiguous().to(parameter_type);
  rows = torch::empty({train.size(0), train.size(1)},
                      torch::TensorOptions(train.device()).dtype(storage));
  ForEachRowChunk(train.size(0), options.chunk_rows, [&](int64_t begin, int64_t end) {
    const torch::Tensor standardised =
        (train.slice(0, begin, end).to(parameter_type) - centre) * scale;
    rows.slice(0, begin, end).copy_(ProductWithTransposed(standardised, whitening_t));
  });
  columns = rows.t().contiguous();
}

double LinearProbe::State::Accuracy(const torch::Tensor& weights, const torch::Tensor& bias,
                                    const torch::Tensor& features,
                                    const torch::Tensor& labels) const {
  torch::Tensor correct =
      torch::zeros({}, torch::TensorOptions(features.device()).dtype(torch::kInt64));
  Float64RowChunks chunks(features, options.chunk_rows);
  ForEachRowChunk(features.size(0), options.chunk_rows, [&](int64_t begin, int64_t end) {
    const torch::Tensor scores = torch::addmm(bias, chunks.Get(begin, end), weights);
    correct += scores.argmax(1).eq(labels.slice(0, begin, end)).sum();
  });
  return static_cast<double>(correct.item<int64_t>()) /
         static_cast<double>(features.size(0));
}

LinearProbe::LinearProbe(const torch::Tensor& train, const torch::Tensor& test,
                         const LinearProbeOptions& options)
    : state_(std::make_unique<State>()) {
  TORCH_CHECK(train.defined() && train.dim() == 2 && train.is_floating_point(),
              "train must be a floating [N, D] tensor");
  TORCH_CHECK(train.size(0) >= 2, "the linear probe needs at least 2 rows, got ",
              train.size(0));
  if (test.defined()) {
    TORCH_CHECK(test.dim() == 2 && test.is_floating_point() &&
                    test.size(1) == train.size(1),
                "test must be a floating [M, ", train.size(1), "] tensor");
    TORCH_CHECK(test.device() == train.device(), "test and train must be on the same device");
  }
  TORCH_CHECK(options.inverse_regularization > 0,
              "inverse_regularization must be positive, got ", options.inverse_regularization);
  TORCH_CHECK(options.max_iterations > 0, "max_iterations must be positive, got ",
              options.max_iterations);
  TORCH_CHECK(options.chunk_rows > 0, "chunk_rows must be positive");

  State& s = *state_;
  s.options = options;
  s.train = train;
  if (test.defined() && test.size(0) > 0) s.test = test;
  s.parameter_type =
      train.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  s.penalty = 1.0 / (options.inverse_regularization * static_cast<double>(train.size(0)));
  s.ComputeWhitening();
  s.WhitenRows();
}

LinearProbe::~LinearProbe() = default;
LinearProbe::LinearProbe(LinearProbe&&) noexcept = default;
LinearProbe& LinearProbe::operator=(LinearProbe&&) noexcept = default;

LinearProbe::Result LinearProbe::Fit(const torch::Tensor& train_labels,
                                     const torch::Tensor& test_labels,
                                     int64_t num_classes) const {
  const State& s = *state_;
  TORCH_CHECK(num_classes > 0, "num_classes must be positive, got ", num_classes);
  const torch::Device device = s.train.device();
  const torch::Tensor labels = train_labels.to(device);
  const int64_t count = s.train.size(0);
  CheckLabels(labels, count, num_classes, "train_labels");

  const torch::TensorOptions parameter_options =
      torch::TensorOptions(device).dtype(s.parameter_type);
  torch::Tensor weights =
      torch::zeros({s.train.size(1), num_classes}, parameter_options).requires_grad_();
  torch::Tensor bias = torch::zeros({num_classes}, parameter_options).requires_grad_();
  const torch::Tensor label_column = labels.unsqueeze(1);
  const torch::Tensor minus_one_over_n =
      torch::full({count, 1}, -1.0 / static_cast<double>(count), parameter_options);
  const torch::Tensor penalty_weights = s.penalty_weights.unsqueeze(1);

  // The mean cross-entropy plus the penalty, with its gradient written into
  // the parameters' .grad for L-BFGS: softmax - one-hot, back through the
  // whitened rows.
  auto loss_and_gradient = [&]() -> torch::Tensor {
    torch::NoGradGuard no_grad;
    const torch::Tensor logits =
        s.rows.mm(weights.to(s.rows.scalar_type())).to(s.parameter_type) + bias;
    const torch::Tensor log_probabilities = torch::log_softmax(logits, 1);
    const torch::Tensor penalty_term =
        (penalty_weights * weights.square()).sum() * (0.5 * s.penalty);
    const torch::Tensor loss =
        -log_probabilities.gather(1, label_column).mean() + penalty_term;
    const torch::Tensor residual = log_probabilities.exp()
                                       .div_(static_cast<double>(count))
                                       .scatter_add_(1, label_column, minus_one_over_n);
    weights.mutable_grad() =
        s.columns.mm(residual.to(s.columns.scalar_type())).to(s.parameter_type) +
        penalty_weights * weights * s.penalty;
    bias.mutable_grad() = residual.sum(0);
    return loss;
  };
  torch::optim::LBFGS solver(
      {weights, bias}, torch::optim::LBFGSOptions(1.0)
                           .max_iter(s.options.max_iterations)
                           .history_size(kHistory)
                           .tolerance_grad(kGradientTolerance)
                           .tolerance_change(1e-9)
                           .line_search_fn("strong_wolfe"));
  solver.step(loss_and_gradient);

  // The classifier on raw features: W_raw = diag(inverse_scale) P U and the
  // bias minus mean^T W_raw, so that scoring never standardises a row.
  torch::NoGradGuard no_grad;
  const torch::Tensor standardised_weights =
      s.whitening.mm(weights.detach().to(torch::kFloat64));
  const torch::Tensor raw_weights = s.inverse_scale.unsqueeze(1) * standardised_weights;
  const torch::Tensor raw_bias =
      bias.detach().to(torch::kFloat64) - s.mean.matmul(raw_weights);

  Result result;
  result.train_accuracy = s.Accuracy(raw_weights, raw_bias, s.train, labels);
  result.test_accuracy = std::numeric_limits<double>::quiet_NaN();
  if (s.test.defined() && test_labels.defined()) {
    const torch::Tensor device_test_labels = test_labels.to(device);
    CheckLabels(device_test_labels, s.test.size(0), num_classes, "test_labels");
    result.test_accuracy = s.Accuracy(raw_weights, raw_bias, s.test, device_test_labels);
  }
  return result;
}

}  // namespace sslsweep
