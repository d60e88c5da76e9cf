#include "cli/watch_command.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"

namespace sslsweep {

int WatchCommand(SweepClient& client, int64_t sweep_id, const WatchViewOptions& view_options,
                 std::ostream& out, std::ostream& err, absl::Duration reconnect_for) {
  WatchView view(view_options);
  bool received = false;
  std::optional<absl::Time> lost_at;  // while reconnecting
  absl::Duration pause = absl::Milliseconds(250);
  for (;;) {
    const absl::Status status = client.WatchSweep(sweep_id, [&](const v1::SweepEvent& event) {
      if (lost_at.has_value()) {
        err << "sslsweep: reconnected to " << client.address() << "\n";
        lost_at.reset();
        pause = absl::Milliseconds(250);
      }
      received = true;
      out << view.Apply(event);
      out.flush();
      return static_cast<bool>(out);  // stdout closed (a pipe reader left): stop
    });
    if (status.ok()) break;
    // Only a coordinator that went away mid-watch is waited for.
    if (!absl::IsUnavailable(status) || !received || view.ended()) {
      return ReportError(status, err);
    }
    const absl::Time now = absl::Now();
    if (!lost_at.has_value()) {
      lost_at = now;
      err << "sslsweep: lost the coordinator (" << status.message() << "); reconnecting for up to "
          << absl::FormatDuration(reconnect_for) << "\n";
    }
    if (now - *lost_at >= reconnect_for) return ReportError(status, err);
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Seconds(2));
  }
  if (!view.ended()) {
    err << "sslsweep: the coordinator ended the watch of sweep " << sweep_id
        << " before the sweep ended\n";
    return kExitRefused;
  }
  return view.exit_code();
}

}  // namespace sslsweep
