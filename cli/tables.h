// The CLI's tables, built from the coordinator's responses (rendered by
// output_table.h as --format table, json or csv).
//
// Pure functions over the coordinator's responses, so tests can check exact
// output without a server. Values print with 4 decimals for the table
// format and with full precision (%.10g) for json and csv.

#ifndef SSLSWEEP_CLI_TABLES_H_
#define SSLSWEEP_CLI_TABLES_H_

#include <string>
#include <vector>

#include "cli/output_table.h"
#include "proto/sslsweep.pb.h"

namespace sslsweep {

// "pending", "running", "succeeded", "failed", "cancelled".
std::string StateName(v1::TrialState state);
std::string StateName(v1::SweepState state);

// The metric columns whose names match any of the shell globs in
// `metric_patterns` (all of them if it is empty), by position.
std::vector<int> SelectMetricColumns(const v1::GetResultsResponse& results,
                                     const std::vector<std::string>& metric_patterns);

// One row per trial: trial id, state, swept parameters, final epoch, metrics
// ("-" where absent).
OutputTable ResultsTable(const v1::GetResultsResponse& results,
                         const std::vector<std::string>& metric_patterns, OutputFormat format);
// One row per trial: id, state, attempt, failures, worker(s), epoch/total,
// the sweep metric's latest value (column named after it), elapsed time
// (to now_ms while it runs), ETA, checkpoint, parameters, reason.
OutputTable StatusTable(const v1::GetSweepStatusResponse& status, int64_t now_ms);
// "45s", "3m05s", "2h07m"; "-" for a negative duration.
std::string ShortDuration(double seconds);
// A dry run's trials: index, ranks, epochs, then one column per swept
// parameter (in the sweep's order; values as the sweep spelt them).
OutputTable PlannedTrialsTable(const v1::SubmitSweepResponse& planned);
// One line of counts for a sweep.
std::string SweepSummaryLine(const v1::SweepSummary& sweep);
OutputTable SweepsTable(const v1::ListSweepsResponse& sweeps);
OutputTable WorkersTable(const v1::ListWorkersResponse& workers, int64_t now_ms);

}  // namespace sslsweep

#endif  // SSLSWEEP_CLI_TABLES_H_
