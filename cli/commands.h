// The `sslsweep` subcommands that talk to a running coordinator. Each returns
// the process exit code and prints results to `out`, errors to `err`.
//
// Exit codes: 0 success; 1 the coordinator refused or failed the request;
// 2 bad input (unreadable file, bad flag); 3 coordinator unreachable.

#ifndef SSLSWEEP_CLI_COMMANDS_H_
#define SSLSWEEP_CLI_COMMANDS_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/output_table.h"
#include "cli/results_view.h"
#include "cli/sweep_client.h"

namespace sslsweep {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRefused = 1;
inline constexpr int kExitBadInput = 2;
inline constexpr int kExitUnreachable = 3;

// The whole file; NotFound / PermissionDenied naming the path otherwise.
absl::StatusOr<std::string> ReadTextFile(const std::string& path);

// Prints `status` as "sslsweep: <message>" and maps it to an exit code.
int ReportError(const absl::Status& status, std::ostream& err);

// With dry_run: the coordinator validates and expands the sweep, and the
// trials it would create are printed in `format` (index, ranks, epochs,
// one column per swept parameter) with their count on stderr; nothing is
// created.
int SubmitCommand(SweepClient& client, const std::string& path, bool dry_run,
                  OutputFormat format, std::ostream& out, std::ostream& err);
// The commands that print a table print it in `format`; `status` prints
// its sweep's summary line above the table only in the table format.
int ListCommand(SweepClient& client, OutputFormat format, std::ostream& out, std::ostream& err);
int StatusCommand(SweepClient& client, int64_t sweep_id, OutputFormat format, std::ostream& out,
                  std::ostream& err);
// `results`: the query goes to the coordinator (QueryResults, which
// aggregates), the view (results_view.h) pivots, sorts and formats it. A per-
// trial view (no group_by) also asks GetSweepStatus for the trials' states
// and parameters. What the view leaves out is noted on `err`.
struct ResultsCommandOptions {
  v1::QueryResultsRequest query;
  ResultsViewOptions view;
};
int ResultsCommand(SweepClient& client, const ResultsCommandOptions& options, std::ostream& out,
                   std::ostream& err);
int CancelCommand(SweepClient& client, int64_t sweep_id, std::ostream& out, std::ostream& err);
int CancelTrialCommand(SweepClient& client, int64_t trial_id, std::ostream& out,
                       std::ostream& err);
// `cancel ID TRIAL`: cancels the trial after checking that it belongs to the
// sweep (bad input, exit 2, naming the sweep's trials otherwise).
int CancelSweepTrialCommand(SweepClient& client, int64_t sweep_id, int64_t trial_id,
                            std::ostream& out, std::ostream& err);
int WorkersCommand(SweepClient& client, OutputFormat format, std::ostream& out,
                   std::ostream& err);
int UnquarantineCommand(SweepClient& client, const std::string& worker_id, std::ostream& out,
                        std::ostream& err);

}  // namespace sslsweep

#endif  // SSLSWEEP_CLI_COMMANDS_H_
