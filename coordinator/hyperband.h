// Hyperband early termination with Weights & Biases' semantics
// (`early_terminate: {type: hyperband, ...}`, docs/sweep-format.md), as
// wandb/sweeps computes them in src/sweeps/hyperband_stopping.py
// (hyperband_stop_runs, the version with `strict`).
//
// Iterations count a trial's values of the sweep's metric: a trial has
// reached band b once it has reported b finite values, and its value at
// band b is the b-th of them, whatever epochs they came at. Non-finite
// values (NaN, ±inf) are left out of a history, as W&B filters them.
//
// The bands are iteration counts (HyperbandBands):
//   - min_iter: min_iter·eta^i for i = 0, 1, ..., each truncated to an
//     integer (W&B takes 100 of them; those past kMaxHyperbandBand, which no
//     trial can reach, are left out);
//   - max_iter and s: max_iter/eta^i for i = 1..s, truncated, stopping at the
//     first below 1; so max_iter itself is never a band.
// The threshold of band b comes from every trial that has reached it,
// whatever its state (running, finished, stopped, failed: W&B passes all of
// a sweep's runs): their values at b, lower is better (negated under
// maximize), sorted ascending; the threshold is the one at index
// floor(n/eta), computed as int((1.0/eta)·n) in doubles like W&B. With n = 9
// and eta = 3 that is the 4th best value.
// Only a running trial stops, and only at its latest band, the largest
// b <= its count of values (none yet: it never stops). It stops when its
// value is strictly worse than that band's threshold (ties survive), its
// value being:
//   - strict (W&B's default, true): its value at that band;
//   - not strict: its best value so far, over its whole history.
//
// HyperbandState holds every trial's history of one sweep in memory. It is
// rebuilt from the store (Store::MetricHistories) after a coordinator
// restart, so the brackets survive it: the decisions depend only on the
// stored values.
//
// Thread contract: a plain value; the caller serialises.

#ifndef SSLSWEEP_COORDINATOR_HYPERBAND_H_
#define SSLSWEEP_COORDINATOR_HYPERBAND_H_

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "coordinator/sweep_spec.h"

namespace sslsweep {

// No band is larger: a trial reports at most one value per epoch, and epochs
// are int32.
inline constexpr int64_t kMaxHyperbandBand = std::numeric_limits<int32_t>::max();

// The bands of `spec`, ascending, each in [1, kMaxHyperbandBand] and distinct
// (W&B may repeat a band when eta is close to 1; a repeat has the same
// threshold, so it changes no decision). May be empty (max_iter < eta): then
// no trial ever stops.
// REQUIRES: spec came from ParseSweepSpec (min_iter, or max_iter and s).
std::vector<int64_t> HyperbandBands(const HyperbandSpec& spec);

// A decision to stop one trial.
struct HyperbandStop {
  int64_t trial_id = 0;
  // e.g. "hyperband: loss 0.62 at iteration 3 is above the threshold 0.52
  // of band 3 (the 4th best of 9 trials there)".
  std::string reason;
};

class HyperbandState {
 public:
  // `goal` is "minimize" or "maximize"; `metric` names the metric in reasons.
  HyperbandState(HyperbandSpec spec, std::string metric, std::string goal);

  // Records the trial's value of the metric at `epoch`. Values must arrive
  // in epoch order per trial; a repeated or earlier epoch (a resumed
  // attempt measuring again) is ignored, as the store keeps the first row.
  // A non-finite value takes its epoch but adds no iteration.
  void Record(int64_t trial_id, int32_t epoch, double value);

  // The trials among `running` that should stop now, by id, in the order of
  // `running` (an id given twice is decided once). A trial with no history,
  // or short of the first band, never stops. Every recorded trial, running
  // or not, sets the thresholds.
  std::vector<HyperbandStop> TrialsToStop(const std::vector<int64_t>& running) const;

  const std::vector<int64_t>& bands() const { return bands_; }

  // The trials Record has been given values of, ascending.
  std::vector<int64_t> TrialIds() const;

 private:
  struct History {
    int32_t last_epoch = -1;
    std::vector<double> values;  // finite only, signed so that lower is better
  };

  // The threshold of bands_[band_index] (signed) and how many trials set it.
  struct Threshold {
    double value = 0;
    size_t rank = 0;  // 0-based index of `value` among the sorted values
    size_t trials = 0;
  };
  Threshold ThresholdAt(size_t band_index) const;

  // The metric value as the user sees it (undoes the sign for maximize).
  double Unsigned(double signed_value) const {
    return maximize_ ? -signed_value : signed_value;
  }

  // Constant after construction.
  const HyperbandSpec spec_;
  const std::string metric_;
  const bool maximize_;
  const std::vector<int64_t> bands_;

  std::map<int64_t, History> histories_;  // by trial id
};

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_HYPERBAND_H_
