// Checkpoint: the state of a trial after an epoch, in LibTorch's archive
// format (torch::serialize::OutputArchive, a zip of tensors).
//
// Keys: "model" (the module's parameters and buffers), "optimizer" (its
// state), "epoch" (int64 scalar tensor, the epochs completed) and "rng_state"
// (the global CPU generator's state). The file is written beside its final
// name and renamed over it, so a crash leaves the previous checkpoint whole.
//
// Thread contract: reads the global generator's state; call from the training
// thread.

#ifndef SSLSWEEP_WORKER_TRAINER_CHECKPOINT_H_
#define SSLSWEEP_WORKER_TRAINER_CHECKPOINT_H_

#include <cstdint>
#include <string>

#include <torch/torch.h>

#include "absl/status/status.h"

namespace sslsweep {

// Writes the checkpoint to `path`. Returns Unavailable naming the path if it
// cannot be written.
absl::Status SaveCheckpoint(const std::string& path, int64_t epoch,
                            const torch::nn::Module& model,
                            const torch::optim::Optimizer& optimizer);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_CHECKPOINT_H_
