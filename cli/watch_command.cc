#include "cli/watch_command.h"

#include "cli/commands.h"

namespace sslsweep {

int WatchCommand(SweepClient& client, int64_t sweep_id, const WatchViewOptions& view_options,
                 std::ostream& out, std::ostream& err) {
  WatchView view(view_options);
  const absl::Status status = client.WatchSweep(sweep_id, [&](const v1::SweepEvent& event) {
    out << view.Apply(event);
    out.flush();
    return static_cast<bool>(out);  // stdout closed (a pipe reader left): stop
  });
  if (!status.ok()) return ReportError(status, err);
  if (!view.ended()) {
    err << "sslsweep: the coordinator ended the watch of sweep " << sweep_id
        << " before the sweep ended\n";
    return kExitRefused;
  }
  return view.exit_code();
}

}  // namespace sslsweep
