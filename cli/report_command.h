// `sslsweep report`: a Markdown page of a sweep's clustering results,
// DIR/report.md, with the figures it embeds as DIR/<view>.svg and
// DIR/<view>.png (the page links the PNGs, which every Markdown viewer
// shows, and each SVG next to its PNG). What the page holds:
// report_markdown.h.
//
// Thread contract: one call at a time per SweepClient.

#ifndef SSLSWEEP_CLI_REPORT_COMMAND_H_
#define SSLSWEEP_CLI_REPORT_COMMAND_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/report_markdown.h"
#include "cli/sweep_client.h"

namespace sslsweep {

struct ReportOptions {
  int64_t sweep_id = 0;
  std::string out_dir;                // created if missing; files in it are overwritten
  std::vector<std::string> group_by;  // swept parameter paths; empty: one group
  std::vector<std::string> where;     // PATH=VALUE filters on swept parameters, ANDed
};

// The coordinator's answers the page is built from (ReportInputs): the
// sweep's status, every metric at the last epoch, then only the queries
// whose metrics the sweep has. Errors as the coordinator gives them, and
// InvalidArgument "no metrics yet for sweep N" when it has none.
absl::StatusOr<ReportInputs> QueryReportInputs(SweepClient& client, const ReportOptions& options);

// Writes the page and its figures (each through NAME.tmp and a rename;
// report.md last), then prints the path of report.md on `out`. Exit codes
// (commands.h): 2 for an unknown sweep or group-by path, a sweep without
// metrics, or a DIR that cannot be created or written (naming it); 1 when
// the coordinator refuses; 3 when it cannot be reached.
int ReportCommand(SweepClient& client, const ReportOptions& options, std::ostream& out,
                  std::ostream& err);

// Writes `report` into `dir` (created if missing): its figures as SVG and
// PNG, then report.md. PermissionDenied naming the path that failed.
absl::Status WriteReport(const Report& report, const std::string& dir);

}  // namespace sslsweep

#endif  // SSLSWEEP_CLI_REPORT_COMMAND_H_
