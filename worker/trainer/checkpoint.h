// Checkpointer: the state of a trial after an epoch, saved and restored so
// that a resumed trial continues exactly where the stopped one was.
//
// The file is a LibTorch archive (torch::serialize::OutputArchive, a zip)
// with the keys:
//   model           the module's parameters and buffers, one nested archive
//                   per submodule (Module::save)
//   optimizer       the optimiser's state (momentum buffers, Adam moments
//                   and step counts)
//   epoch, step     int64 scalars: epochs completed, optimiser steps taken
//   rng_state       the global CPU generator's state, which drives the data
//                   order, the augmentations on the CPU and nothing else
//                   once the model exists
//   cuda_rng_state  the CUDA generator's state, when training on CUDA
//   config          the trial's configuration as resolved YAML, without
//                   `threads` (see CheckpointConfigText): a checkpoint only
//                   resumes the trial that wrote it
// The file is written beside its final name and renamed over it, so a crash
// leaves the previous checkpoint whole.
//
// Thread contract: Save reads and Restore sets the global generators; use an
// instance from the training thread only.

#ifndef SSLSWEEP_WORKER_TRAINER_CHECKPOINT_H_
#define SSLSWEEP_WORKER_TRAINER_CHECKPOINT_H_

#include <cstdint>
#include <map>
#include <string>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/trial_config.h"

namespace sslsweep {

struct TrainingProgress {
  int64_t epoch = 0;  // epochs completed
  int64_t step = 0;   // optimiser steps taken over the whole run
};

// The configuration a checkpoint is bound to: TrialConfigToYaml of `config`
// with threads set to 0, because the thread count changes the speed of a
// trial, not which trial it is.
std::string CheckpointConfigText(const TrialConfig& config);

class Checkpointer {
 public:
  // Saves to and restores from `path`. `model` and `optimizer` must outlive
  // the Checkpointer; `device` is where they live.
  Checkpointer(std::string path, const TrialConfig& config,
               torch::nn::Module& model, torch::optim::Optimizer& optimizer,
               torch::Device device);

  const std::string& path() const { return path_; }

  // True if a checkpoint file exists at path().
  bool Exists() const;

  // Writes the model, the optimiser, the generators and `progress`.
  // Unavailable naming the path if it cannot be written; the previous file,
  // if any, is then left as it was.
  absl::Status Save(const TrainingProgress& progress) const;

  // Reads path() into the model, the optimiser and the generators, and
  // returns the progress it records. Fails, changing nothing but possibly
  // the model and optimiser, with:
  //   FailedPrecondition  the checkpoint belongs to another configuration
  //                       (the message names the first differing key) or
  //                       has none (an older trainer's)
  //   DataLoss            the file is unreadable or corrupt
  absl::StatusOr<TrainingProgress> Restore();

 private:
  const std::string path_;
  const std::string config_text_;
  torch::nn::Module& model_;
  torch::optim::Optimizer& optimizer_;
  const torch::Device device_;
};

// The model tensors of the checkpoint at `path` by dotted name
// ("backbone.stage1.0.weight"), on the CPU. DataLoss naming the path if it
// cannot be read.
absl::StatusOr<std::map<std::string, torch::Tensor>> ReadCheckpointModel(
    const std::string& path);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_CHECKPOINT_H_
