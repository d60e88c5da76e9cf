// Plain-text tables for the CLI: aligned columns, one header line.
//
// Pure functions over the coordinator's responses, so tests can check exact
// output without a server.

#ifndef SSLSWEEP_CLI_TABLES_H_
#define SSLSWEEP_CLI_TABLES_H_

#include <string>
#include <vector>

#include "proto/sslsweep.pb.h"

namespace sslsweep {

// Columns padded to their widest cell, separated by two spaces.
std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);

// "pending", "running", "succeeded", "failed", "cancelled".
std::string StateName(v1::TrialState state);
std::string StateName(v1::SweepState state);

// The metric columns whose names match any of the shell globs in
// `metric_patterns` (all of them if it is empty), by position.
std::vector<int> SelectMetricColumns(const v1::GetResultsResponse& results,
                                     const std::vector<std::string>& metric_patterns);

// One row per trial: trial id, state, swept parameters, final epoch, metrics
// (4 decimals; "-" where absent).
std::string ResultsTable(const v1::GetResultsResponse& results,
                         const std::vector<std::string>& metric_patterns);
// One row per trial: id, state, attempt, worker, epoch/total, parameters, reason.
std::string StatusTable(const v1::GetSweepStatusResponse& status);
// One line of counts for a sweep.
std::string SweepSummaryLine(const v1::SweepSummary& sweep);
std::string SweepsTable(const v1::ListSweepsResponse& sweeps);
std::string WorkersTable(const v1::ListWorkersResponse& workers, int64_t now_ms);

}  // namespace sslsweep

#endif  // SSLSWEEP_CLI_TABLES_H_
