// Tests for hyperband early termination (coordinator/hyperband.h) against
// Weights & Biases' semantics: bands, thresholds worked out by hand, strict
// and non-strict, maximize and minimize, and replay after a restart.

#include "coordinator/hyperband.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sslsweep {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

HyperbandSpec MinIter(int64_t min_iter, double eta = 3.0, bool strict = true) {
  HyperbandSpec spec;
  spec.min_iter = min_iter;
  spec.eta = eta;
  spec.strict = strict;
  return spec;
}

HyperbandSpec MaxIter(int64_t max_iter, int64_t s, double eta = 3.0, bool strict = true) {
  HyperbandSpec spec;
  spec.max_iter = max_iter;
  spec.s = s;
  spec.eta = eta;
  spec.strict = strict;
  return spec;
}

// Records `values` as the trial's epochs 0, 1, ...
void RecordHistory(HyperbandState& state, int64_t trial_id,
                   const std::vector<double>& values) {
  for (size_t epoch = 0; epoch < values.size(); ++epoch) {
    state.Record(trial_id, static_cast<int32_t>(epoch), values[epoch]);
  }
}

std::vector<int64_t> StoppedIds(const HyperbandState& state,
                                const std::vector<int64_t>& running) {
  std::vector<int64_t> ids;
  for (const HyperbandStop& stop : state.TrialsToStop(running))
    ids.push_back(stop.trial_id);
  return ids;
}

std::vector<int64_t> Range(int64_t first, int64_t last) {
  std::vector<int64_t> ids;
  for (int64_t id = first; id <= last; ++id) ids.push_back(id);
  return ids;
}

// --- Bands -----------------------------------------------------------------

TEST(HyperbandBandsTest, MinIterMultipliesByEta) {
  std::vector<int64_t> bands = HyperbandBands(MinIter(3));
  ASSERT_GE(bands.size(), 4u);
  EXPECT_THAT(std::vector<int64_t>(bands.begin(), bands.begin() + 4),
              ElementsAre(3, 9, 27, 81));
  // 3^1 .. 3^19; 3^20 is past any trial's reach.
  EXPECT_EQ(bands.size(), 19u);
  EXPECT_EQ(bands.back(), 1162261467);
}

TEST(HyperbandBandsTest, MinIterTruncatesEachProduct) {
  // 2, 3, 4.5, 6.75, 10.125, 15.1875: truncated, not rounded.
  std::vector<int64_t> bands = HyperbandBands(MinIter(2, 1.5));
  EXPECT_THAT(std::vector<int64_t>(bands.begin(), bands.begin() + 6),
              ElementsAre(2, 3, 4, 6, 10, 15));
}

TEST(HyperbandBandsTest, MinIterStopsAtTheLargestReachableBand) {
  std::vector<int64_t> bands = HyperbandBands(MinIter(1, 2.0));
  ASSERT_EQ(bands.size(), 31u);  // 2^0 .. 2^30
  EXPECT_EQ(bands.front(), 1);
  EXPECT_EQ(bands.back(), int64_t{1} << 30);
  EXPECT_LE(bands.back(), kMaxHyperbandBand);
}

TEST(HyperbandBandsTest, MinIterRepeatsCollapse) {
  // 1, 1.2, 1.44, 1.728 all truncate to 1; 2.0736 to 2.
  std::vector<int64_t> bands = HyperbandBands(MinIter(1, 1.2));
  EXPECT_THAT(std::vector<int64_t>(bands.begin(), bands.begin() + 3),
              ElementsAre(1, 2, 3));
}

TEST(HyperbandBandsTest, MaxIterDividesSTimesAndLeavesMaxIterOut) {
  EXPECT_THAT(HyperbandBands(MaxIter(81, 3)), ElementsAre(3, 9, 27));
  EXPECT_THAT(HyperbandBands(MaxIter(18, 2)), ElementsAre(2, 6));
  EXPECT_THAT(HyperbandBands(MaxIter(9, 2)), ElementsAre(1, 3));
  // 2.5 and 1.25, truncated.
  EXPECT_THAT(HyperbandBands(MaxIter(5, 2, 2.0)), ElementsAre(1, 2));
}

TEST(HyperbandBandsTest, MaxIterStopsBelowOne) {
  // 9, 3, 1, then 1/3 < 1 ends it although s allows five.
  EXPECT_THAT(HyperbandBands(MaxIter(27, 5)), ElementsAre(1, 3, 9));
  // 2/3 < 1 at once: no band, so nothing ever stops.
  EXPECT_THAT(HyperbandBands(MaxIter(2, 1)), IsEmpty());
  HyperbandState state(MaxIter(2, 1), "loss", "minimize");
  RecordHistory(state, 1, {0.1, 0.1});
  RecordHistory(state, 2, {9.0, 9.0});
  EXPECT_THAT(StoppedIds(state, {1, 2}), IsEmpty());
}

// --- Thresholds: 9 trials, eta 3 ------------------------------------------

// Bands 1, 3, 9, ...: trial k (1..9) reports loss 1, 1, k/10. At band 1 all
// tie at 1 (threshold 1, nothing stops); at band 3 the values sorted are
// 0.1 .. 0.9 and the threshold is the one at index int(9/3) = 3: 0.4.
// Under maximize, accuracy 0, 0, 1 - k/10: the threshold is 0.6.
HyperbandState NineTrials(bool strict, const std::string& goal = "minimize") {
  const bool minimize = goal == "minimize";
  HyperbandState state(MinIter(1, 3.0, strict), minimize ? "loss" : "acc", goal);
  const double worst = minimize ? 1.0 : 0.0;
  for (int k = 1; k <= 9; ++k) {
    RecordHistory(state, k, {worst, worst, minimize ? k / 10.0 : 1.0 - k / 10.0});
  }
  return state;
}

TEST(HyperbandThresholdTest, NineTrialsKeepTheBestFourAndTies) {
  HyperbandState state = NineTrials(/*strict=*/true);
  // 0.5 .. 0.9 are above 0.4; 0.4 itself ties the threshold and survives.
  EXPECT_THAT(StoppedIds(state, Range(1, 9)), ElementsAre(5, 6, 7, 8, 9));
}

TEST(HyperbandThresholdTest, ReasonNamesValueBandAndThreshold) {
  HyperbandState state = NineTrials(/*strict=*/true);
  std::vector<HyperbandStop> stops = state.TrialsToStop({5});
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0].reason,
            "hyperband: loss 0.5 at iteration 3 is above the threshold 0.4 of band 3 "
            "(the 4th best of 9 trials there)");
}

TEST(HyperbandThresholdTest, EndedTrialsSetThresholdsButNeverStop) {
  HyperbandState state = NineTrials(/*strict=*/true);
  // Trials 6..9 have ended: they are not stopped, but their values still
  // count. From the running five alone (0.1 .. 0.5) the threshold would be
  // 0.2 and 3, 4, 5 would stop.
  EXPECT_THAT(StoppedIds(state, {1, 2, 3, 4, 5}), ElementsAre(5));
  EXPECT_THAT(StoppedIds(state, {7, 3, 5}), ElementsAre(7, 5));
}

TEST(HyperbandThresholdTest, EachBandCountsOnlyTheTrialsThatReachedIt) {
  HyperbandState state = NineTrials(/*strict=*/true);
  // A tenth trial at 2 values stands at band 1, where all ten tie at 1.
  RecordHistory(state, 10, {1.0, 5.0});
  EXPECT_THAT(StoppedIds(state, {10}), IsEmpty());
  // Its 2nd value is in no band's set: band 3 still has 9 trials, 0.4.
  EXPECT_EQ(state.TrialsToStop({5})[0].reason,
            "hyperband: loss 0.5 at iteration 3 is above the threshold 0.4 of band 3 "
            "(the 4th best of 9 trials there)");
  // At 3 values it joins band 3: 10 trials, index int(10/3) = 3, still 0.4.
  state.Record(10, 2, 0.45);
  EXPECT_THAT(StoppedIds(state, {4, 10}), ElementsAre(10));
}

TEST(HyperbandThresholdTest, IndexIsTheFloorOfCountOverEta) {
  // Three trials at band 1: index int(3/3) = 1, the 2nd best, so only the
  // worst stops; two trials: index 0, the best, so the other stops.
  HyperbandState three(MinIter(1), "loss", "minimize");
  RecordHistory(three, 1, {1.0});
  RecordHistory(three, 2, {2.0});
  RecordHistory(three, 3, {3.0});
  EXPECT_THAT(StoppedIds(three, {1, 2, 3}), ElementsAre(3));

  HyperbandState two(MinIter(1), "loss", "minimize");
  RecordHistory(two, 1, {1.0});
  RecordHistory(two, 2, {2.0});
  EXPECT_THAT(StoppedIds(two, {1, 2}), ElementsAre(2));
}

TEST(HyperbandThresholdTest, ALoneTrialNeverStops) {
  HyperbandState state(MaxIter(18, 2), "loss", "minimize");
  std::vector<double> values;
  for (int i = 0; i < 10; ++i) values.push_back(10.0 - i);
  RecordHistory(state, 1, values);
  EXPECT_THAT(StoppedIds(state, {1}), IsEmpty());
}

TEST(HyperbandThresholdTest, JudgedAtTheLatestBandOnly) {
  // Bands 1, 3: trial 1 was the worst at band 1 but is the best at band 3.
  HyperbandState state(MaxIter(9, 2), "loss", "minimize");
  RecordHistory(state, 1, {9.0, 9.0, 0.1});
  RecordHistory(state, 2, {1.0, 1.0, 0.5});
  RecordHistory(state, 3, {1.0, 1.0, 0.6});
  RecordHistory(state, 4, {1.0});
  // Band 3: 0.1, 0.5, 0.6 -> index 1, 0.5; trial 3 stops, trial 1 does not.
  // Band 1: 1, 1, 1, 9 -> index 1, 1; trial 4 (at band 1) survives.
  EXPECT_THAT(StoppedIds(state, {1, 2, 3, 4}), ElementsAre(3));
}

// W&B's own example (hyperband_stop_runs' docstring): max_iter 5, eta 2,
// s 2, bands 1 and 2. Band 2's values 9, 10, 8, 7, 6 give index
// int(5/2) = 2, threshold 8: b (10) stops, c (8) ties and runs on.
TEST(HyperbandThresholdTest, WandbDocstringExample) {
  for (bool strict : {true, false}) {
    HyperbandState state(MaxIter(5, 2, 2.0, strict), "loss", "minimize");
    RecordHistory(state, 1, {10, 9});     // a, finished
    RecordHistory(state, 2, {10, 10});    // b
    RecordHistory(state, 3, {10, 8, 8});  // c
    RecordHistory(state, 4, {10, 7, 7});  // d
    RecordHistory(state, 5, {10, 6, 6});  // e, finished
    EXPECT_THAT(StoppedIds(state, {2, 3, 4}), ElementsAre(2)) << "strict " << strict;
  }
}

// --- Strict ----------------------------------------------------------------

TEST(HyperbandStrictTest, StrictJudgesTheValueAtTheBand) {
  for (bool strict : {true, false}) {
    HyperbandState state = NineTrials(strict);
    // Band 3 gets 0.9 from both: 11 values, index int(11/3) = 3, still 0.4.
    RecordHistory(state, 10, {1.0, 0.05, 0.9});      // best before the band
    RecordHistory(state, 11, {1.0, 1.0, 0.9, 0.1});  // best after it
    if (strict) {
      EXPECT_THAT(StoppedIds(state, {4, 5, 10, 11}), ElementsAre(5, 10, 11));
    } else {
      // Best so far: 0.05 and 0.1 beat 0.4; trial 5's best is its 0.5.
      EXPECT_THAT(StoppedIds(state, {4, 5, 10, 11}), ElementsAre(5));
    }
  }
}

TEST(HyperbandStrictTest, NonStrictReasonNamesTheBestSoFar) {
  HyperbandState state = NineTrials(/*strict=*/false);
  std::vector<HyperbandStop> stops = state.TrialsToStop({6});
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0].reason,
            "hyperband: best loss so far 0.6 is above the threshold 0.4 of band 3 "
            "(the 4th best of 9 trials there)");
}

// --- Goal ------------------------------------------------------------------

TEST(HyperbandGoalTest, MaximizeKeepsTheHighest) {
  // Accuracy 1 - k/10: 0.9 .. 0.1; the 4th best is 0.6.
  HyperbandState state = NineTrials(/*strict=*/true, "maximize");
  EXPECT_THAT(StoppedIds(state, Range(1, 9)), ElementsAre(5, 6, 7, 8, 9));
  EXPECT_EQ(state.TrialsToStop({9})[0].reason,
            "hyperband: acc 0.1 at iteration 3 is below the threshold 0.6 of band 3 "
            "(the 4th best of 9 trials there)");
}

TEST(HyperbandGoalTest, MaximizeNonStrictUsesTheHighestSoFar) {
  HyperbandState state = NineTrials(/*strict=*/false, "maximize");
  RecordHistory(state, 10, {0.95, 0.0, 0.0});
  // Band 3 now has 10 values; index 3 is still 0.6. Trial 10's best, 0.95,
  // is above it.
  EXPECT_THAT(StoppedIds(state, {10, 5}), ElementsAre(5));
}

TEST(HyperbandGoalTest, SameHistoriesOppositeGoalsStopOppositeTrials) {
  HyperbandState minimize(MinIter(1), "m", "minimize");
  HyperbandState maximize(MinIter(1), "m", "maximize");
  for (int k = 1; k <= 3; ++k) {
    RecordHistory(minimize, k, {static_cast<double>(k)});
    RecordHistory(maximize, k, {static_cast<double>(k)});
  }
  EXPECT_THAT(StoppedIds(minimize, {1, 2, 3}), ElementsAre(3));
  EXPECT_THAT(StoppedIds(maximize, {1, 2, 3}), ElementsAre(1));
}

// --- Histories -------------------------------------------------------------

TEST(HyperbandHistoryTest, ShortOfTheFirstBandNeverStops) {
  HyperbandState state(MinIter(3), "loss", "minimize");
  for (int k = 1; k <= 5; ++k) RecordHistory(state, k, {0.1, 0.1, 0.1});
  RecordHistory(state, 6, {100.0, 100.0});
  EXPECT_THAT(StoppedIds(state, {6, 7}), IsEmpty());  // 7: no history at all
  state.Record(6, 2, 100.0);
  EXPECT_THAT(StoppedIds(state, {6, 7}), ElementsAre(6));
}

TEST(HyperbandHistoryTest, RepeatedAndEarlierEpochsAreIgnored) {
  HyperbandState state(MinIter(3), "loss", "minimize");
  for (int k = 1; k <= 5; ++k) RecordHistory(state, k, {0.1, 0.1, 0.1});
  // A resumed attempt measures epochs 1 and 0 again: still two iterations.
  state.Record(6, 0, 100.0);
  state.Record(6, 1, 100.0);
  state.Record(6, 1, 0.01);
  state.Record(6, 0, 0.01);
  EXPECT_THAT(StoppedIds(state, {6}), IsEmpty());
  // Its third epoch makes three: the first rows count, not the repeats.
  state.Record(6, 2, 100.0);
  EXPECT_THAT(StoppedIds(state, {6}), ElementsAre(6));
}

TEST(HyperbandHistoryTest, IterationsCountValuesNotEpochs) {
  HyperbandState state(MinIter(3), "loss", "minimize");
  for (int k = 1; k <= 5; ++k) RecordHistory(state, k, {0.1, 0.1, 0.1});
  // Measured every 5th epoch: epochs 4, 9, 14 are iterations 1, 2, 3.
  state.Record(6, 4, 100.0);
  state.Record(6, 9, 100.0);
  EXPECT_THAT(StoppedIds(state, {6}), IsEmpty());
  state.Record(6, 14, 100.0);
  EXPECT_THAT(StoppedIds(state, {6}), ElementsAre(6));
}

TEST(HyperbandHistoryTest, NonFiniteValuesAreNoIterations) {
  HyperbandState state(MinIter(3), "loss", "minimize");
  for (int k = 1; k <= 5; ++k) RecordHistory(state, k, {0.1, 0.1, 0.1});
  RecordHistory(state, 6,
                {100.0, std::nan(""), std::numeric_limits<double>::infinity(), 100.0});
  EXPECT_THAT(StoppedIds(state, {6}), IsEmpty());
  state.Record(6, 4, 100.0);
  EXPECT_THAT(StoppedIds(state, {6}), ElementsAre(6));
}

TEST(HyperbandHistoryTest, EachRunningIdIsDecidedOnceInOrder) {
  HyperbandState state = NineTrials(/*strict=*/true);
  EXPECT_THAT(StoppedIds(state, {9, 5, 9, 1, 5}), ElementsAre(9, 5));
}

// --- Restart ---------------------------------------------------------------

TEST(HyperbandReplayTest, ReplayingTheStoredRecordsDecidesTheSame) {
  struct Row {
    int64_t trial_id;
    int32_t epoch;
    double value;
  };
  std::mt19937 generator(42);
  std::uniform_real_distribution<double> loss(0.0, 1.0);
  std::uniform_int_distribution<int> epochs(0, 12);

  // Live: trials report interleaved, some attempts measure epochs again.
  std::vector<Row> live;
  const int64_t kTrials = 30;
  std::vector<int> length(kTrials + 1);
  for (int64_t id = 1; id <= kTrials; ++id) length[id] = epochs(generator);
  for (int32_t epoch = 0; epoch < 12; ++epoch) {
    for (int64_t id = 1; id <= kTrials; ++id) {
      if (epoch >= length[id]) continue;
      live.push_back({id, epoch, loss(generator)});
      if (id % 7 == 0 && epoch > 0) live.push_back({id, epoch - 1, loss(generator)});
    }
  }
  for (bool strict : {true, false}) {
    HyperbandState before(MinIter(2, 2.0, strict), "loss", "minimize");
    for (const Row& row : live) before.Record(row.trial_id, row.epoch, row.value);

    // The store keeps each (trial, epoch) once, the first row, and hands the
    // histories back by trial and epoch.
    std::map<int64_t, std::map<int32_t, double>> stored;
    for (const Row& row : live) stored[row.trial_id].emplace(row.epoch, row.value);
    HyperbandState after(MinIter(2, 2.0, strict), "loss", "minimize");
    for (const auto& [id, history] : stored) {
      for (const auto& [epoch, value] : history) after.Record(id, epoch, value);
    }

    const std::vector<int64_t> running = Range(1, kTrials);
    std::vector<HyperbandStop> expected = before.TrialsToStop(running);
    std::vector<HyperbandStop> actual = after.TrialsToStop(running);
    EXPECT_FALSE(expected.empty());
    ASSERT_EQ(actual.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(actual[i].trial_id, expected[i].trial_id);
      EXPECT_EQ(actual[i].reason, expected[i].reason);
    }
  }
}

}  // namespace
}  // namespace sslsweep
