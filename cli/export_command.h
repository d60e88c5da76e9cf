// `sslsweep export ID`: every stored metric row of a sweep (ExportMetrics),
// written as MetricExportWriter renders it, chunk by chunk, so that no
// side ever holds the whole sweep.
//
// Output goes to `out`, or with out_path to that file: written to
// "<out_path>.tmp" and renamed over out_path only once every row arrived,
// so a failure never leaves half a file (the .tmp is removed).
//
// Exit codes (commands.h): 0 written; 2 a bad or unknown sweep id, a glob
// that matches nothing (the coordinator's message names stored metrics),
// a bad --format, or a file that cannot be written (naming it); 3 the
// coordinator cannot be reached; 1 another failure of the coordinator.

#ifndef SSLSWEEP_CLI_EXPORT_COMMAND_H_
#define SSLSWEEP_CLI_EXPORT_COMMAND_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "cli/sweep_client.h"

namespace sslsweep {

struct ExportCommandOptions {
  int64_t sweep_id = 0;
  std::vector<std::string> metric_globs;  // empty: every metric
  std::string format = "csv";             // csv | json
  std::string out_path;                   // empty: `out`
};

int ExportCommand(SweepClient& client, const ExportCommandOptions& options, std::ostream& out,
                  std::ostream& err);

}  // namespace sslsweep

#endif  // SSLSWEEP_CLI_EXPORT_COMMAND_H_
