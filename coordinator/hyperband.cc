#include "coordinator/hyperband.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace sslsweep {
namespace {

// W&B computes 100 bands from min_iter.
constexpr int kMinIterBandCount = 100;
// Bounds the max_iter loop, which W&B runs up to s times: only an eta within
// about 4e-5 of 1 needs more divisions than this to fall below 1.
constexpr int64_t kMaxIterDivisions = 1000000;

// "1st", "2nd", "3rd", "4th", ... for ranks in reasons.
std::string Ordinal(size_t n) {
  const char* suffix = "th";
  if (n % 100 < 11 || n % 100 > 13) {
    if (n % 10 == 1) suffix = "st";
    if (n % 10 == 2) suffix = "nd";
    if (n % 10 == 3) suffix = "rd";
  }
  return absl::StrCat(n, suffix);
}

}  // namespace

std::vector<int64_t> HyperbandBands(const HyperbandSpec& spec) {
  // Doubles and truncation throughout, as W&B's Python floats and int().
  std::vector<int64_t> bands;
  if (spec.max_iter > 0) {
    double band = static_cast<double>(spec.max_iter);
    const int64_t divisions = std::min(spec.s, kMaxIterDivisions);
    for (int64_t i = 0; i < divisions; ++i) {
      band /= spec.eta;
      if (band < 1) break;
      if (band > static_cast<double>(kMaxHyperbandBand)) continue;
      bands.push_back(static_cast<int64_t>(band));
    }
  } else {
    double band = static_cast<double>(spec.min_iter);
    for (int i = 0; i < kMinIterBandCount; ++i) {
      if (band > static_cast<double>(kMaxHyperbandBand)) break;
      bands.push_back(static_cast<int64_t>(band));
      band *= spec.eta;
    }
  }
  std::sort(bands.begin(), bands.end());
  bands.erase(std::unique(bands.begin(), bands.end()), bands.end());
  return bands;
}

HyperbandState::HyperbandState(HyperbandSpec spec, std::string metric, std::string goal)
    : spec_(spec),
      metric_(std::move(metric)),
      maximize_(goal == "maximize"),
      bands_(HyperbandBands(spec)) {}

std::vector<int64_t> HyperbandState::TrialIds() const {
  std::vector<int64_t> ids;
  ids.reserve(histories_.size());
  for (const auto& entry : histories_) ids.push_back(entry.first);
  return ids;
}

void HyperbandState::Record(int64_t trial_id, int32_t epoch, double value) {
  History& history = histories_[trial_id];
  if (epoch <= history.last_epoch) return;
  history.last_epoch = epoch;
  if (!std::isfinite(value)) return;
  history.values.push_back(maximize_ ? -value : value);
}

HyperbandState::Threshold HyperbandState::ThresholdAt(size_t band_index) const {
  const size_t band = static_cast<size_t>(bands_[band_index]);
  std::vector<double> values;
  for (const auto& [id, history] : histories_) {
    if (history.values.size() >= band) values.push_back(history.values[band - 1]);
  }
  Threshold threshold;
  threshold.trials = values.size();
  // W&B: sorted(values)[int(r * len(values))] with r = 1.0 / eta; r < 1
  // keeps the index in range.
  threshold.rank =
      static_cast<size_t>((1.0 / spec_.eta) * static_cast<double>(values.size()));
  std::nth_element(values.begin(), values.begin() + threshold.rank, values.end());
  threshold.value = values[threshold.rank];
  return threshold;
}

std::vector<HyperbandStop> HyperbandState::TrialsToStop(
    const std::vector<int64_t>& running) const {
  std::vector<HyperbandStop> stops;
  std::set<int64_t> decided;
  // Thresholds by band index, computed only for the bands some running
  // trial stands at.
  std::map<size_t, Threshold> thresholds;
  for (int64_t trial_id : running) {
    if (!decided.insert(trial_id).second) continue;
    auto it = histories_.find(trial_id);
    if (it == histories_.end()) continue;
    const std::vector<double>& values = it->second.values;
    // The latest band reached: the largest b <= values.size().
    auto above = std::upper_bound(bands_.begin(), bands_.end(),
                                  static_cast<int64_t>(values.size()));
    if (above == bands_.begin()) continue;
    const size_t band_index = static_cast<size_t>(above - bands_.begin()) - 1;
    auto cached = thresholds.find(band_index);
    if (cached == thresholds.end()) {
      cached = thresholds.emplace(band_index, ThresholdAt(band_index)).first;
    }
    const Threshold& threshold = cached->second;
    const int64_t band = bands_[band_index];
    const double value =
        spec_.strict ? values[band - 1] : *std::min_element(values.begin(), values.end());
    if (value <= threshold.value) continue;
    const std::string what =
        spec_.strict ? absl::StrCat(metric_, " ", Unsigned(value), " at iteration ", band)
                     : absl::StrCat("best ", metric_, " so far ", Unsigned(value));
    stops.push_back(HyperbandStop{
        trial_id, absl::StrCat("hyperband: ", what, " is ", maximize_ ? "below" : "above",
                               " the threshold ", Unsigned(threshold.value), " of band ",
                               band, " (the ", Ordinal(threshold.rank + 1), " best of ",
                               threshold.trials, " trials there)")});
  }
  return stops;
}

}  // namespace sslsweep
