// The aggregated results query (ResultsQuery) as a function over a
// StatementCache: checks every name the query uses against what the sweep
// stores, then aggregates in one SQL statement whose text is built from
// fixed fragments and numbered parameters only; every user-supplied string
// (glob, path, value) is bound. Runs inside a read transaction its caller
// opened (Store::QueryResults).
//
// Thread contract: not thread-safe; the caller serialises the use of the
// connection behind `db`.

#ifndef SSLSWEEP_COORDINATOR_STORE_RESULTS_QUERIES_H_
#define SSLSWEEP_COORDINATOR_STORE_RESULTS_QUERIES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/results_query.h"
#include "coordinator/sqlite_statement.h"

struct sqlite3;

namespace sslsweep {

// Registers the SQL functions SelectResults uses on `db`:
// sample_variance(x), an aggregate returning the sample variance (n - 1)
// by Welford's one-pass update, NULL for fewer than 2 values.
absl::Status RegisterResultsFunctions(sqlite3* db);

// NotFound for an unknown sweep. InvalidArgument, naming what is valid, for
// a group_by or where path the sweep does not sweep, a path given twice in
// group_by, a where value no trial has, a glob that matches no stored
// metric of the sweep, and "best" for a sweep without a metric.
// OK when each GLOB matches some stored metric of the sweep; otherwise
// InvalidArgument quoting the glob and naming stored metrics and their
// parts (metrics, targets, layers).
absl::Status CheckMetricGlobs(StatementCache& db, int64_t sweep_id,
                              const std::vector<std::string>& globs);

absl::StatusOr<AggregatedResults> SelectResults(StatementCache& db, const ResultsQuery& query);

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_STORE_RESULTS_QUERIES_H_
