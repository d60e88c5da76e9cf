// WatchView: the exact text of `sslsweep watch` for given events: plain
// lines (no escape codes) and terminal frames (the progress block, erased
// and redrawn at every event).

#include <cmath>
#include <string>

#include "cli/watch_view.h"
#include "gtest/gtest.h"

namespace sslsweep {
namespace {

constexpr int64_t kTime = 1'795'714'802'000;  // 2026-11-26T17:40:02Z

v1::TrialStatus TrialOf(int64_t id, v1::TrialState state, int32_t epoch, double value,
                        const std::string& lr) {
  v1::TrialStatus t;
  t.set_trial_id(id);
  t.set_index(static_cast<int32_t>(id - 1));
  t.set_state(state);
  t.set_attempt(state == v1::TRIAL_PENDING ? 0 : 1);
  if (state == v1::TRIAL_RUNNING) t.set_worker_id("w-1");
  t.set_epoch(epoch);
  t.set_epochs_total(15);
  t.set_metric_value(value);
  t.set_eta_seconds(-1);
  v1::Param* p = t.add_params();
  p->set_path("optim.lr");
  p->set_value(lr);
  p = t.add_params();
  p->set_path("seed");
  p->set_value("1");
  return t;
}

v1::SweepEvent Snapshot() {
  v1::SweepEvent event;
  event.set_time_ms(kTime);
  v1::SweepSummary* sweep = event.mutable_snapshot()->mutable_sweep();
  sweep->set_sweep_id(3);
  sweep->set_name("lr");
  sweep->set_state(v1::SWEEP_RUNNING);
  sweep->set_metric_name("ncc_test_acc/fine/embedding");
  sweep->set_trials_total(2);
  *event.mutable_snapshot()->add_trials() = TrialOf(1, v1::TRIAL_RUNNING, 7, 0.70126, "0.01");
  *event.mutable_snapshot()->add_trials() = TrialOf(2, v1::TRIAL_PENDING, -1, NAN, "0.1");
  return event;
}

v1::SweepEvent Epoch(int64_t trial, int32_t epoch, double value, double eta) {
  v1::SweepEvent event;
  event.set_time_ms(kTime + 1000);
  v1::EpochReported* e = event.mutable_epoch_reported();
  e->set_trial_id(trial);
  e->set_epoch(epoch);
  e->set_epochs_total(15);
  e->set_metric_value(value);
  e->set_eta_seconds(eta);
  return event;
}

v1::SweepEvent Started(int64_t trial) {
  v1::SweepEvent event;
  event.set_time_ms(kTime + 2000);
  v1::TrialStarted* e = event.mutable_trial_started();
  e->set_trial_id(trial);
  e->set_attempt(2);
  e->add_worker_ids("w-2");
  e->add_worker_ids("w-5");
  e->set_resume_epoch(4);
  return event;
}

v1::SweepEvent Requeued(int64_t trial) {
  v1::SweepEvent event;
  event.set_time_ms(kTime + 2000);
  v1::AttemptRequeued* e = event.mutable_attempt_requeued();
  e->set_trial_id(trial);
  e->set_attempt(1);
  e->set_outcome("lost");
  e->set_reason("lost worker w-1; failed 1 of 3 attempts");
  e->set_failures(1);
  e->set_max_attempts(3);
  return event;
}

v1::SweepEvent Ended(int64_t trial, v1::TrialState state, const std::string& reason) {
  v1::SweepEvent event;
  event.set_time_ms(kTime + 3000);
  v1::TrialEnded* e = event.mutable_trial_ended();
  e->set_trial_id(trial);
  e->set_state(state);
  e->set_epoch(15);
  e->set_metric_value(0.75);
  e->set_reason(reason);
  return event;
}

v1::SweepEvent SweepEnd(int failed) {
  v1::SweepEvent event;
  event.set_time_ms(kTime + 4000);
  v1::SweepSummary* sweep = event.mutable_sweep_ended()->mutable_sweep();
  sweep->set_sweep_id(3);
  sweep->set_state(v1::SWEEP_FINISHED);
  sweep->set_trials_total(2);
  sweep->set_trials_succeeded(2 - failed);
  sweep->set_trials_failed(failed);
  return event;
}

TEST(WatchViewTest, PlainLinesOnePerEventWithoutEscapeCodes) {
  WatchView view({});
  EXPECT_EQ(view.Apply(Snapshot()),
            "2026-11-26T17:40:02Z sweep 3 'lr': 1 running, 1 pending, 0 of 2 ended; metric "
            "ncc_test_acc/fine/embedding\n"
            "2026-11-26T17:40:02Z trial 1 [lr=0.01 seed=1] running attempt 1 on w-1 epoch 7/15 "
            "ncc_test_acc/fine/embedding=0.7013\n");
  EXPECT_EQ(view.Apply(Epoch(1, 8, 0.7312, 80)),
            "2026-11-26T17:40:03Z trial 1 epoch 8/15 ncc_test_acc/fine/embedding=0.7312\n");
  EXPECT_EQ(view.Apply(Epoch(1, 9, NAN, -1)), "2026-11-26T17:40:03Z trial 1 epoch 9/15\n");
  EXPECT_EQ(view.Apply(Requeued(1)),
            "2026-11-26T17:40:04Z trial 1 attempt 1 lost: lost worker w-1; failed 1 of 3 "
            "attempts; requeued (1 of 3 failed attempts)\n");
  EXPECT_EQ(view.Apply(Started(2)),
            "2026-11-26T17:40:04Z trial 2 [lr=0.1 seed=1] started attempt 2 on w-2,w-5, "
            "resuming from epoch 4\n");
  EXPECT_EQ(view.Apply(Ended(2, v1::TRIAL_PRUNED, "hyperband: below the band's median")),
            "2026-11-26T17:40:05Z trial 2 pruned at epoch 15/15 "
            "ncc_test_acc/fine/embedding=0.7500: hyperband: below the band's median\n");
  EXPECT_FALSE(view.ended());
  EXPECT_EQ(view.Apply(SweepEnd(0)),
            "2026-11-26T17:40:06Z sweep 3 finished: 2 trials: 2 succeeded, 0 failed, 0 pruned, "
            "0 cancelled\n");
  EXPECT_TRUE(view.ended());
  EXPECT_EQ(view.exit_code(), 0);
}

TEST(WatchViewTest, TerminalRedrawsTheProgressBlockBelowTheEvents) {
  WatchViewOptions options;
  options.terminal = true;
  options.format_time = [](int64_t ms) { return std::to_string((ms - kTime) / 1000); };
  WatchView view(options);
  const std::string bar1 =
      "trial 1 [lr=0.01 seed=1]  #########-----------  7/15  ncc_test_acc/fine/embedding 0.7013";
  EXPECT_EQ(view.Apply(Snapshot()),
            "0 sweep 3 'lr': 1 running, 1 pending, 0 of 2 ended; metric "
            "ncc_test_acc/fine/embedding\n"
            "0 trial 1 [lr=0.01 seed=1] running attempt 1 on w-1 epoch 7/15 "
            "ncc_test_acc/fine/embedding=0.7013\n" +
                bar1 + "\n" + "sweep 3 'lr': 1 running, 1 pending, 0 of 2 ended\n");
  const std::string erase2 = "\x1b[1A\x1b[2K\x1b[1A\x1b[2K";
  EXPECT_EQ(view.Apply(Epoch(1, 8, 0.7312, 80)),
            erase2 + "1 trial 1 epoch 8/15 ncc_test_acc/fine/embedding=0.7312\n" +
                "trial 1 [lr=0.01 seed=1]  ##########----------  8/15  "
                "ncc_test_acc/fine/embedding 0.7312  ETA 1m20s\n"
                "sweep 3 'lr': 1 running, 1 pending, 0 of 2 ended\n");
  // A second running trial: two bars, by index.
  EXPECT_EQ(view.Apply(Started(2)),
            erase2 + "2 trial 2 [lr=0.1 seed=1] started attempt 2 on w-2,w-5, resuming from "
                     "epoch 4\n" +
                "trial 1 [lr=0.01 seed=1]  ##########----------  8/15  "
                "ncc_test_acc/fine/embedding 0.7312  ETA 1m20s\n"
                "trial 2 [lr=0.1 seed=1]  --------------------  0/15\n"
                "sweep 3 'lr': 2 running, 0 pending, 0 of 2 ended\n");
  ASSERT_EQ(view.Block().size(), 3u);
  EXPECT_EQ(view.Apply(Ended(1, v1::TRIAL_FAILED, "CUDA error: out of memory")),
            erase2 + "\x1b[1A\x1b[2K" +
                "3 trial 1 failed at epoch 15/15 ncc_test_acc/fine/embedding=0.7500: CUDA "
                "error: out of memory\n"
                "trial 2 [lr=0.1 seed=1]  --------------------  0/15\n"
                "sweep 3 'lr': 1 running, 0 pending, 1 of 2 ended\n");
  // The end erases the block and leaves only the summary.
  EXPECT_EQ(view.Apply(SweepEnd(1)),
            erase2 + "4 sweep 3 finished: 2 trials: 1 succeeded, 1 failed, 0 pruned, "
                     "0 cancelled\n");
  EXPECT_TRUE(view.Block().empty());
  EXPECT_EQ(view.exit_code(), 1);
}

TEST(WatchViewTest, BlockLinesAreCutToTheTerminalWidth) {
  WatchViewOptions options;
  options.terminal = true;
  options.width = 30;
  options.bar_width = 10;
  WatchView view(options);
  const std::string text = view.Apply(Snapshot());
  EXPECT_NE(text.find("\ntrial 1 [lr=0.01 seed=1]  ####\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nsweep 3 'lr': 1 running, 1 pen\n"), std::string::npos) << text;
}

TEST(WatchViewTest, ACancelledSweepExitsOne) {
  WatchView view({});
  view.Apply(Snapshot());
  v1::SweepEvent end = SweepEnd(0);
  end.mutable_sweep_ended()->mutable_sweep()->set_state(v1::SWEEP_CANCELLED);
  end.mutable_sweep_ended()->mutable_sweep()->set_trials_succeeded(0);
  end.mutable_sweep_ended()->mutable_sweep()->set_trials_cancelled(2);
  EXPECT_EQ(view.Apply(end),
            "2026-11-26T17:40:06Z sweep 3 cancelled: 2 trials: 0 succeeded, 0 failed, 0 pruned, "
            "2 cancelled\n");
  EXPECT_EQ(view.exit_code(), 1);
}

TEST(WatchViewTest, DurationsAndTimes) {
  EXPECT_EQ(FormatDuration(44.6), "45s");
  EXPECT_EQ(FormatDuration(80), "1m20s");
  EXPECT_EQ(FormatDuration(7380), "2h03m");
  EXPECT_EQ(FormatUtcTime(kTime), "2026-11-26T17:40:02Z");
}

}  // namespace
}  // namespace sslsweep
