// AttemptEnd: what the worker reports when a trainer process has ended, from
// its exit status (the exit codes of worker/trainer/train_main.cc):
//
//   exit 0                          FinishTrial (rank 0 or a lone rank; the
//                                   other ranks of a data-parallel trial
//                                   report nothing, see agent.h)
//   exit 4 (diverged)               FailTrial FAILURE_DIVERGED (no retry)
//   exit 2 (bad configuration)      FailTrial FAILURE_CONFIG (no retry)
//   the worker stopping (SIGTERM)   FailTrial FAILURE_RELEASED (back to the queue)
//   exit 5 (lost a peer rank)       FailTrial FAILURE_PEER_LOST (retried; this
//                                   worker is not blamed)
//   any other exit, or a signal     FailTrial FAILURE_CRASH (retried)
//
// The rows are tried in this order: a diverged or misconfigured trial fails
// for good even if the worker is stopping; a peer lost while the worker
// stops is a release (the other ranks report their own loss).
//
// A failure's reason is "sslsweep-train <exit status>: <last stderr line>".
//
// Thread contract: pure functions.

#ifndef SSLSWEEP_WORKER_AGENT_ATTEMPT_END_H_
#define SSLSWEEP_WORKER_AGENT_ATTEMPT_END_H_

#include <string>

#include "proto/sslsweep.pb.h"
#include "worker/agent/subprocess.h"

namespace sslsweep {

struct AttemptEnd {
  bool finished = false;                                // true: FinishTrial
  v1::FailureKind kind = v1::FAILURE_KIND_UNSPECIFIED;  // else FailTrial with these
  std::string reason;
};

// `worker_stopping`: the worker's Stop() came before the trainer ended.
// `last_stderr_line`: the trainer's last non-empty stderr line, or empty.
AttemptEnd AttemptEndFor(const ExitStatus& exit, bool worker_stopping,
                         const std::string& last_stderr_line);

// The last non-empty line of a file (of its last 4 KiB); empty if none or
// unreadable.
std::string LastLineOfFile(const std::string& path);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_AGENT_ATTEMPT_END_H_
