// The directory of one attempt on the worker (work_dir/trial-T/attempt-A):
// the trainer's --out, holding its configuration, its checkpoint and, for
// a moment each, the checkpoint-E.pt links it announces.
//
// Thread contract: free functions on the filesystem; one attempt's
// directory is touched by one attempt only.

#ifndef SSLSWEEP_WORKER_AGENT_ATTEMPT_DIRECTORY_H_
#define SSLSWEEP_WORKER_AGENT_ATTEMPT_DIRECTORY_H_

#include <filesystem>
#include <string>

#include "absl/status/status.h"

namespace sslsweep {

// Creates `dir` if need be and writes the trial's configuration into it as
// trial.yaml. Internal naming the path if either fails.
absl::Status PrepareAttemptDirectory(const std::filesystem::path& dir,
                                     const std::string& config_yaml);

// Deletes the checkpoint-E.pt links the outbox did not take: a trainer
// stopped between making one and announcing it leaves it behind.
void RemoveCheckpointLinks(const std::filesystem::path& dir);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_AGENT_ATTEMPT_DIRECTORY_H_
