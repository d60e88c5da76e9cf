#include "analysis/linear_probe.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "analysis/row_chunks.h"

namespace sslsweep {
namespace {

// A feature whose spread is below this fraction of the largest feature's
// root mean square is (numerically) constant: dividing by its own standard
// deviation would blow rounding noise up to unit variance, or divide 0 by 0.
constexpr double kRelativeStdFloor = 1e-8;

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

// A linear classifier on raw features: argmax_c (x W + b)_c.
struct LinearClassifier {
  torch::Tensor weights;  // [D, K] float64
  torch::Tensor bias;     // [K] float64
};

}  // namespace

struct LinearProbe::State {
  LinearProbeOptions options;
  torch::Tensor train;  // the layer's rows, as given
  torch::Tensor test;   // undefined: no test rows
  // Standardisation, from every training row: (x - mean) * inverse_scale.
  torch::Tensor mean;           // [D] float64
  torch::Tensor inverse_scale;  // [D] float64
  // The seeded split that chooses lambda.
  torch::Tensor in_holdout;    // [N] bool
  torch::Tensor holdout_rows;  // int64, ascending
  int64_t fit_count = 0;
  // Of the standardised rows that are not held out: their mean, and the
  // eigendecomposition of their centred X^T X.
  torch::Tensor fit_mean;          // [D]
  torch::Tensor fit_eigenvalues;   // [D], >= 0
  torch::Tensor fit_eigenvectors;  // [D, D]
  // X^T X of every standardised training row (their mean is 0).
  torch::Tensor all_gram;  // [D, D]

  void ComputeSplit();
  void ComputeMoments();

  // The strength of the grid whose classifier, fitted on the fit rows, gets
  // the most held-out rows right (ties: the strongest).
  // fit_sums [C, D]: the standardised class sums of the fit rows.
  double ChooseRidge(const torch::Tensor& fit_sums,
                     const torch::Tensor& fit_counts,
                     const torch::Tensor& labels) const;
  // Sums of (x - mean) * inverse_scale over each class's rows, from the sums
  // of x [C, D] and the counts [C].
  torch::Tensor StandardisedSums(const torch::Tensor& raw_sums,
                                 const torch::Tensor& counts) const {
    return (raw_sums - counts.unsqueeze(1) * mean) * inverse_scale;
  }

  // A classifier on standardised features, (x - mean) * inverse_scale W + b,
  // rewritten to act on raw features, so that no pass over the rows needs
  // to standardise them.
  LinearClassifier OnRawFeatures(const torch::Tensor& weights,
                                 const torch::Tensor& bias) const;
  // [2C, D]: the feature sums of each class's fit rows (first C rows) and
  // held-out rows (last C), in one pass over the training rows.
  torch::Tensor ClassSums(const torch::Tensor& labels,
                          int64_t num_classes) const;
  // The held-out rows that each of the K / C classifiers, side by side in
  // `classifiers`, gets right.
  torch::Tensor HoldoutCorrect(const LinearClassifier& classifiers,
                               const torch::Tensor& labels,
                               int64_t num_classes) const;
  double Accuracy(const LinearClassifier& classifier, const torch::Tensor& rows,
                  const torch::Tensor& labels) const;
};

void LinearProbe::State::ComputeSplit() {
  const int64_t rows = train.size(0);
  const int64_t holdout_count = std::clamp<int64_t>(
      std::llround(options.holdout_fraction * static_cast<double>(rows)), 1,
      rows - 1);
  fit_count = rows - holdout_count;
  // A generator of our own: the split depends on options.seed alone, not on
  // whatever else has drawn from the global generator.
  at::Generator generator =
      at::make_generator<at::CPUGeneratorImpl>(options.seed);
  const torch::Tensor permutation =
      torch::randperm(rows, generator, torch::kInt64);
  // Ascending, so that gathering the held-out rows reads memory in order.
  holdout_rows = std::get<0>(permutation.slice(0, 0, holdout_count).sort())
                     .to(train.device());
  in_holdout = torch::zeros(
      {rows}, torch::TensorOptions(train.device()).dtype(torch::kBool));
  in_holdout.index_fill_(0, holdout_rows, true);
}

void LinearProbe::State::ComputeMoments() {
  const int64_t rows = train.size(0);
  const int64_t dims = train.size(1);
  const torch::Device device = train.device();
  // Sums of products of rows shifted by a rough mean (the first chunk's):
  // centring them afterwards, sum u u^T - n m m^T, then cancels only the
  // small remainder m, where unshifted rows far from the origin would lose
  // every digit of their variance.
  const torch::Tensor shift =
      train.slice(0, 0, options.chunk_rows).to(torch::kFloat64).mean(0);
  torch::Tensor gram = torch::zeros({dims, dims}, Float64On(device));
  torch::Tensor holdout_gram = torch::zeros_like(gram);
  torch::Tensor sum = torch::zeros({dims}, Float64On(device));
  torch::Tensor holdout_sum = torch::zeros_like(sum);
  Float64RowChunks chunks(train, options.chunk_rows);
  ForEachRowChunk(rows, options.chunk_rows, [&](int64_t begin, int64_t end) {
    const torch::Tensor u = chunks.Get(begin, end).sub_(shift);
    const torch::Tensor held =
        u.index_select(0, in_holdout.slice(0, begin, end).nonzero().squeeze(1));
    gram.addmm_(u.t(), u);
    holdout_gram.addmm_(held.t(), held);
    sum += u.sum(0);
    holdout_sum += held.sum(0);
  });

  const torch::Tensor shifted_mean = sum / rows;
  const torch::Tensor centred_gram =
      gram - rows * torch::outer(shifted_mean, shifted_mean);
  const torch::Tensor std =
      (centred_gram.diagonal() / rows).clamp_min(0).sqrt();
  mean = shift + shifted_mean;
  const double largest_rms =
      (std.pow(2) + mean.pow(2)).sqrt().max().item<double>();
  // All-zero features: any positive floor leaves them zero.
  const double floor = largest_rms > 0 ? kRelativeStdFloor * largest_rms
                                       : std::numeric_limits<double>::min();
  inverse_scale = std.clamp_min(floor).reciprocal();
  const torch::Tensor rescale = torch::outer(inverse_scale, inverse_scale);
  all_gram = centred_gram * rescale;

  const torch::Tensor fit_shifted_mean = (sum - holdout_sum) / fit_count;
  const torch::Tensor fit_gram =
      (gram - holdout_gram -
       fit_count * torch::outer(fit_shifted_mean, fit_shifted_mean)) *
      rescale;
  fit_mean = (fit_shifted_mean - shifted_mean) * inverse_scale;
  auto [eigenvalues, eigenvectors] = torch::linalg_eigh(fit_gram);
  // X^T X is positive semi-definite; rounding may leave tiny negatives.
  fit_eigenvalues = eigenvalues.clamp_min(0);
  fit_eigenvectors = eigenvectors;
}

double LinearProbe::State::ChooseRidge(const torch::Tensor& fit_sums,
                                       const torch::Tensor& fit_counts,
                                       const torch::Tensor& labels) const {
  const int64_t num_classes = fit_sums.size(0);
  const std::vector<double>& grid = options.ridge_grid;
  const int64_t strengths = static_cast<int64_t>(grid.size());
  // Every strength at once through the fit rows' eigenbasis V, e:
  // W = V diag(1 / (e + lambda n)) V^T Xc^T Yc, where
  // Xc^T Yc = X^T Y - m counts^T (the columns of X^T Y are class sums).
  const torch::Tensor targets =
      (fit_sums - fit_counts.unsqueeze(1) * fit_mean).t();
  const torch::Tensor rotated = fit_eigenvectors.t().mm(targets);  // [D, C]
  const torch::Tensor ridges = torch::tensor(grid, Float64On(train.device()));
  const torch::Tensor shrink =
      (fit_eigenvalues.unsqueeze(1) + ridges.unsqueeze(0) * fit_count)
          .reciprocal();  // [D, L]
  // [D, L, C] -> [D, L * C]: classifier l owns columns l*C .. l*C + C - 1.
  const torch::Tensor weights =
      fit_eigenvectors.mm((shrink.unsqueeze(2) * rotated.unsqueeze(1))
                              .view({-1, strengths * num_classes}));
  // The intercept that centring removed: b = ybar - m^T W.
  const torch::Tensor bias =
      (fit_counts / fit_count).repeat({strengths}) - fit_mean.matmul(weights);
  const torch::Tensor correct =
      HoldoutCorrect(OnRawFeatures(weights, bias), labels, num_classes).cpu();
  const auto correct_of = correct.accessor<int64_t, 1>();
  int64_t best = 0;
  for (int64_t l = 1; l < strengths; ++l) {
    // Ties go to the stronger ridge, the simpler classifier.
    if (correct_of[l] > correct_of[best] ||
        (correct_of[l] == correct_of[best] && grid[l] > grid[best])) {
      best = l;
    }
  }
  return grid[best];
}

LinearClassifier LinearProbe::State::OnRawFeatures(
    const torch::Tensor& weights, const torch::Tensor& bias) const {
  return {inverse_scale.unsqueeze(1) * weights,
          bias - (mean * inverse_scale).matmul(weights)};
}

torch::Tensor LinearProbe::State::ClassSums(const torch::Tensor& labels,
                                            int64_t num_classes) const {
  torch::Tensor sums =
      torch::zeros({2 * num_classes, train.size(1)}, Float64On(train.device()));
  const torch::Tensor slots =
      labels + in_holdout.to(torch::kInt64) * num_classes;
  Float64RowChunks chunks(train, options.chunk_rows);
  ForEachRowChunk(
      train.size(0), options.chunk_rows, [&](int64_t begin, int64_t end) {
        sums.index_add_(0, slots.slice(0, begin, end), chunks.Get(begin, end));
      });
  return sums;
}

torch::Tensor LinearProbe::State::HoldoutCorrect(
    const LinearClassifier& classifiers, const torch::Tensor& labels,
    int64_t num_classes) const {
  const int64_t count = classifiers.weights.size(1) / num_classes;
  torch::Tensor correct = torch::zeros(
      {count}, torch::TensorOptions(train.device()).dtype(torch::kInt64));
  ForEachRowChunk(
      holdout_rows.size(0), options.chunk_rows,
      [&](int64_t begin, int64_t end) {
        const torch::Tensor rows = holdout_rows.slice(0, begin, end);
        const torch::Tensor scores =
            torch::addmm(classifiers.bias,
                         train.index_select(0, rows).to(torch::kFloat64),
                         classifiers.weights)
                .view({end - begin, count, num_classes});
        correct += scores.argmax(2)
                       .eq(labels.index_select(0, rows).unsqueeze(1))
                       .sum(0);
      });
  return correct;
}

double LinearProbe::State::Accuracy(const LinearClassifier& classifier,
                                    const torch::Tensor& rows,
                                    const torch::Tensor& labels) const {
  torch::Tensor correct = torch::zeros(
      {}, torch::TensorOptions(rows.device()).dtype(torch::kInt64));
  Float64RowChunks chunks(rows, options.chunk_rows);
  ForEachRowChunk(
      rows.size(0), options.chunk_rows, [&](int64_t begin, int64_t end) {
        const torch::Tensor scores = torch::addmm(
            classifier.bias, chunks.Get(begin, end), classifier.weights);
        correct += scores.argmax(1).eq(labels.slice(0, begin, end)).sum();
      });
  return static_cast<double>(correct.item<int64_t>()) /
         static_cast<double>(rows.size(0));
}

LinearProbe::LinearProbe(const torch::Tensor& train, const torch::Tensor& test,
                         const LinearProbeOptions& options)
    : state_(std::make_unique<State>()) {
  TORCH_CHECK(train.defined() && train.dim() == 2 && train.is_floating_point(),
              "train must be a floating [N, D] tensor");
  TORCH_CHECK(train.size(0) >= 2,
              "the linear probe needs at least 2 rows, got ", train.size(0));
  if (test.defined()) {
    TORCH_CHECK(test.dim() == 2 && test.is_floating_point() &&
                    test.size(1) == train.size(1),
                "test must be a floating [M, ", train.size(1), "] tensor");
    TORCH_CHECK(test.device() == train.device(),
                "test and train must be on the same device");
  }
  TORCH_CHECK(!options.ridge_grid.empty(), "ridge_grid is empty");
  for (double ridge : options.ridge_grid) {
    TORCH_CHECK(ridge > 0, "ridge_grid values must be positive, got ", ridge);
  }
  TORCH_CHECK(options.holdout_fraction > 0 && options.holdout_fraction < 1,
              "holdout_fraction must lie in (0, 1), got ",
              options.holdout_fraction);
  TORCH_CHECK(options.chunk_rows > 0, "chunk_rows must be positive");

  state_->options = options;
  state_->train = train;
  if (test.defined() && test.size(0) > 0) state_->test = test;
  state_->ComputeSplit();
  state_->ComputeMoments();
}

LinearProbe::~LinearProbe() = default;
LinearProbe::LinearProbe(LinearProbe&&) noexcept = default;
LinearProbe& LinearProbe::operator=(LinearProbe&&) noexcept = default;

LinearProbe::Result LinearProbe::Fit(const torch::Tensor& train_labels,
                                     const torch::Tensor& test_labels,
                                     int64_t num_classes) const {
  const State& s = *state_;
  TORCH_CHECK(num_classes > 0, "num_classes must be positive, got ",
              num_classes);
  const torch::Device device = s.train.device();
  const torch::Tensor labels = train_labels.to(device);
  const int64_t rows = s.train.size(0);
  CheckLabels(labels, rows, num_classes, "train_labels");

  const torch::Tensor all_counts =
      torch::bincount(labels, {}, num_classes).to(torch::kFloat64);
  const torch::Tensor fit_counts =
      all_counts -
      torch::bincount(labels.index_select(0, s.holdout_rows), {}, num_classes)
          .to(torch::kFloat64);
  const torch::Tensor raw_sums = s.ClassSums(labels, num_classes);
  const torch::Tensor fit_raw_sums = raw_sums.slice(0, 0, num_classes);
  const torch::Tensor all_raw_sums =
      fit_raw_sums + raw_sums.slice(0, num_classes);

  const double ridge = s.ChooseRidge(
      s.StandardisedSums(fit_raw_sums, fit_counts), fit_counts, labels);
  // Refitted on every row. Their standardised mean is 0, so Xc^T Yc is
  // X^T Y, the standardised class sums, and the intercept is ybar.
  const torch::Tensor regularised =
      s.all_gram +
      ridge * rows * torch::eye(s.all_gram.size(0), Float64On(device));
  const torch::Tensor weights =
      torch::cholesky_solve(s.StandardisedSums(all_raw_sums, all_counts).t(),
                            torch::linalg_cholesky(regularised));
  const LinearClassifier classifier =
      s.OnRawFeatures(weights, all_counts / rows);

  Result result;
  result.ridge = ridge;
  result.train_accuracy = s.Accuracy(classifier, s.train, labels);
  result.test_accuracy = std::numeric_limits<double>::quiet_NaN();
  if (s.test.defined() && test_labels.defined()) {
    const torch::Tensor device_test_labels = test_labels.to(device);
    CheckLabels(device_test_labels, s.test.size(0), num_classes, "test_labels");
    result.test_accuracy = s.Accuracy(classifier, s.test, device_test_labels);
  }
  return result;
}

}  // namespace sslsweep
