// The directory of one attempt on the worker (work_dir/trial-T/attempt-A,
// and .../attempt-A/rank-R for each rank of a data-parallel gang): the
// trainer's --out, holding its configuration, its checkpoint and, for a
// moment each, the checkpoint-E.pt links it announces.
//
// Thread contract: free functions on the filesystem; one attempt's
// directory is touched by one attempt only.

#ifndef SSLSWEEP_WORKER_AGENT_ATTEMPT_DIRECTORY_H_
#define SSLSWEEP_WORKER_AGENT_ATTEMPT_DIRECTORY_H_

#include <cstdint>
#include <filesystem>
#include <string>

#include "absl/status/status.h"

namespace sslsweep {

// The directory of attempt `attempt` of trial `trial_id` under `work_dir`.
// Each rank of a gang has its own (rank-R below the attempt's), so that
// workers sharing a work directory (`sslsweep local`, a cluster's shared
// home) never write or download into the same files.
std::filesystem::path AttemptDirectory(const std::filesystem::path& work_dir,
                                       int64_t trial_id, int64_t attempt, int rank,
                                       int world_size);

// Creates `dir` if need be and writes the trial's configuration into it as
// trial.yaml. Internal naming the path if either fails.
absl::Status PrepareAttemptDirectory(const std::filesystem::path& dir,
                                     const std::string& config_yaml);

// Deletes the checkpoint-E.pt links the outbox did not take: a trainer
// stopped between making one and announcing it leaves it behind.
void RemoveCheckpointLinks(const std::filesystem::path& dir);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_AGENT_ATTEMPT_DIRECTORY_H_
