// WatchView: what `sslsweep watch` prints for each event of a WatchSweep
// stream (proto SweepEvent), as text: events in, lines (and frames) out,
// with no terminal, clock or stream of its own, so tests give it events and
// read exact text.
//
// Plain (stdout is not a terminal): one line per event, e.g.
//   2026-11-26T17:40:02Z trial 3 epoch 8/15 ncc_test_acc/fine/embedding=0.7312
// and nothing else: no escape codes. A snapshot is a line for the sweep and
// one per trial that is not pending.
//
// Terminal: the same event lines, and below them a block redrawn at every
// event: one progress bar per running trial and a line for the sweep, e.g.
//   trial 3 [lr=0.01 seed=1]  ########------------  8/15  ncc_test_acc/fine/embedding 0.7312  ETA 1m20s
//   sweep 3 'quickstart': 2 running, 1 pending, 1 of 4 ended
// Each event's text first erases the previous block (cursor up, erase line
// for each of its lines), then prints the event's lines and the new block.
// Block lines are cut to the terminal's width so that none wraps (a wrapped
// line would break the count of lines to erase). After sweep_ended no block
// remains.
//
// Thread contract: confined to one thread.

#ifndef SSLSWEEP_CLI_WATCH_VIEW_H_
#define SSLSWEEP_CLI_WATCH_VIEW_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "proto/sslsweep.pb.h"

namespace sslsweep {

struct WatchViewOptions {
  bool terminal = false;  // draw the progress block with ANSI escape codes
  int width = 0;          // terminal columns: block lines are cut to this; 0 no limit
  int bar_width = 20;     // characters of a progress bar
  // Formats an event's time (ms since the Unix epoch); empty: UTC ISO 8601,
  // "2026-11-26T17:40:02Z" (FormatUtcTime).
  std::function<std::string(int64_t)> format_time;
};

// "2026-11-26T17:40:02Z".
std::string FormatUtcTime(int64_t ms);
// "45s", "1m20s", "2h03m".
std::string FormatDuration(double seconds);

class WatchView {
 public:
  explicit WatchView(WatchViewOptions options);

  // The text to write for `event` (see above), ending with a newline.
  std::string Apply(const v1::SweepEvent& event);

  // The block as it would be drawn now, without escape codes: a line per
  // running trial by index, then the sweep's line. Empty once ended.
  std::vector<std::string> Block() const;

  // Whether sweep_ended was applied.
  bool ended() const { return ended_; }
  // After sweep_ended: 0 when no trial failed and the sweep was not
  // cancelled, 1 otherwise.
  int exit_code() const { return failed_ ? 1 : 0; }

 private:
  struct Trial {
    int32_t index = 0;
    std::string label;  // "trial 3 [lr=0.01 seed=1]"
    v1::TrialState state = v1::TRIAL_PENDING;
    int32_t attempt = 0;
    std::vector<std::string> workers;
    int32_t epoch = -1;
    int32_t epochs_total = 0;
    double metric_value = 0;  // NaN if none
    double eta_seconds = -1;
    std::string reason;  // why it failed or was pruned
  };

  std::vector<std::string> EventLines(const v1::SweepEvent& event);
  std::string TrialLine(const Trial& trial) const;
  std::string ProgressLine(const Trial& trial) const;
  std::string SweepLine() const;
  std::string Metric(double value, const char* separator) const;
  void Count(v1::TrialState from, v1::TrialState to);

  const WatchViewOptions options_;
  int64_t sweep_id_ = 0;
  std::string sweep_name_;
  std::string metric_name_;
  std::map<int64_t, Trial> trials_;  // by trial id
  std::map<int, int> counts_;        // trials per v1::TrialState
  int block_lines_ = 0;              // lines of the block drawn last
  bool ended_ = false;
  bool failed_ = false;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_CLI_WATCH_VIEW_H_
