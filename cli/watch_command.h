// `sslsweep watch ID`: follows a sweep live (WatchSweep) until it ends,
// printing each event as WatchView renders it and flushing `out` after
// each, so that a pipe reader sees every line as it happens.
//
// A coordinator that goes away mid-watch (restarted, say) is reconnected
// to for up to `reconnect_for`, with a line on `err`; the new stream's
// snapshot redraws the view. A coordinator never reached is not waited for.
//
// Exit codes (commands.h): 0 the sweep ended with no failed trial; 1 a
// trial failed, the sweep was cancelled, or the stream ended early; 2 a bad
// or unknown sweep id (the coordinator's message); 3 the coordinator cannot
// be reached, or stayed away longer than `reconnect_for`.

#ifndef SSLSWEEP_CLI_WATCH_COMMAND_H_
#define SSLSWEEP_CLI_WATCH_COMMAND_H_

#include <cstdint>
#include <ostream>

#include "absl/time/time.h"
#include "cli/sweep_client.h"
#include "cli/watch_view.h"

namespace sslsweep {

int WatchCommand(SweepClient& client, int64_t sweep_id, const WatchViewOptions& view,
                 std::ostream& out, std::ostream& err,
                 absl::Duration reconnect_for = absl::Minutes(2));

}  // namespace sslsweep

#endif  // SSLSWEEP_CLI_WATCH_COMMAND_H_
