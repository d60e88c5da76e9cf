// `sslsweep local SWEEP.yaml`: the single-machine mode and the quickstart.
//
// Runs an embedded coordinator (the same Coordinator and gRPC server as
// sslsweep-coordinator, on a free loopback port, over a SQLite file) and N
// `sslsweep-worker` processes, submits the sweep, prints progress, and when
// the sweep has ended stops everything and prints the results table. Before
// anything is created it checks that every data file the trials read exists.
//
// Thread contract: call from the main thread (it owns the worker children).

#ifndef SSLSWEEP_CLI_LOCAL_MODE_H_
#define SSLSWEEP_CLI_LOCAL_MODE_H_

#include <ostream>
#include <string>
#include <vector>

namespace sslsweep {

struct LocalOptions {
  std::string sweep_path;
  std::string db_path = "sslsweep-local.db";
  std::string work_dir;        // empty: "<db_path>.work"
  std::string bin_dir;         // where sslsweep-worker and sslsweep-train are
  int workers = 0;             // 0: min(4, cores)
  int threads_per_worker = 0;  // 0: cores / workers, at least 1
  std::vector<std::string> metric_patterns;
};

// Returns the process exit code: 0 when every trial succeeded, 1 when some
// failed (the table still prints), 2 for bad input, 130 when interrupted.
int RunLocal(const LocalOptions& options, std::ostream& out, std::ostream& err);

}  // namespace sslsweep

#endif  // SSLSWEEP_CLI_LOCAL_MODE_H_
