// RunTrial: one SSL training trial from its configuration to its metrics.
//
// The trainer seeds LibTorch (torch::manual_seed(config.seed)), sets its
// intra-op thread count (config.threads, or one per core when 0), places the
// computation (device.h: CPU, or CUDA with bf16 autocast and channels_last),
// loads the data, builds the backbone (backbone.h) and the SSL method with
// its heads (ssl_method.h: VICReg, SimCLR, BYOL, Barlow Twins), and trains
// for config.epochs epochs: each epoch shuffles the training set (a
// permutation drawn from the global CPU generator), drops the last partial
// batch, makes two augmented views of each batch (augment.h, the method's
// recipe) and steps the optimiser (optimizer.h: SGD with momentum, LARS or
// AdamW) on the method's loss (then BYOL's target update), with
// the learning rate of LearningRateAt: a linear warm-up over
// optim.warmup_epochs epochs, then a per-step cosine decay towards 0. Given
// the same configuration and thread count it produces the same numbers on
// the CPU.
//
// Outputs, in options.out_dir (created if missing):
//   config.yaml     the resolved configuration (every key, defaults included)
//   metrics.jsonl   the metrics lines (see metrics_writer.h), also echoed to
//                   options.metrics_echo
//   checkpoint.pt   after every training epoch, once that epoch's metrics
//                   lines are written (see checkpoint.h)
//
// Resume: when out_dir/checkpoint.pt exists, RunTrial continues from it
// instead of starting over. It logs "resuming from epoch K", restores the
// model, the optimiser, the generators and the step counter, and trains
// epochs K+1 onwards. The result equals that of a run that never stopped
// (bitwise on the CPU with the same thread count). Metrics lines are echoed
// only for epochs > K; metrics.jsonl keeps the lines of epochs <= K and
// drops any of later epochs (a run killed mid-epoch leaves some). A
// checkpoint of another configuration (CheckpointConfigText: `threads` may
// differ) is refused before anything in out_dir changes.
//
// Metrics: epoch 0 is the model before training, epoch E >= 1 the model after
// E epochs. Measured epochs (0, every analysis.every-th, and the last) get
// NCC accuracies of the embedding on the unaugmented train and test subsets
// (centers from the train subset): ncc_train_acc/fine/embedding and
// ncc_test_acc/fine/embedding. Every epoch E >= 1 gets loss/total and
// loss/<term> for each of the method's terms (VICReg: invariance, variance,
// covariance; SimCLR: nt_xent; BYOL: regression; Barlow Twins: on_diagonal,
// off_diagonal), means over the epoch's steps, the terms unweighted, and
// time/epoch_seconds (the training steps, without the measurement). Every
// epoch with metrics ends with one epoch_end line.
//
// Thread contract: RunTrial uses LibTorch's global state (seed, thread count,
// generators, autocast); run one trial per process at a time.

#ifndef SSLSWEEP_WORKER_TRAINER_TRAINER_H_
#define SSLSWEEP_WORKER_TRAINER_TRAINER_H_

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "worker/trial_config.h"

namespace sslsweep {

// Metric names, `<metric>/<target>/<layer>` as the brief defines them.
inline constexpr char kNccTrainAccMetric[] = "ncc_train_acc/fine/embedding";
inline constexpr char kNccTestAccMetric[] = "ncc_test_acc/fine/embedding";
inline constexpr char kLossTotalMetric[] = "loss/total";
inline constexpr char kLossInvarianceMetric[] = "loss/invariance";
inline constexpr char kLossVarianceMetric[] = "loss/variance";
inline constexpr char kLossCovarianceMetric[] = "loss/covariance";
inline constexpr char kEpochSecondsMetric[] = "time/epoch_seconds";

struct TrainerOptions {
  std::string out_dir;
  // Receives every metrics line as well as the file (stdout in
  // sslsweep-train); null: the file only.
  std::ostream* metrics_echo = nullptr;
  // Human-readable progress (stderr in sslsweep-train); null: silent.
  std::ostream* log = nullptr;
  // Seconds on a monotonic clock; null: std::chrono::steady_clock. Tests
  // inject a fake clock to make time/epoch_seconds deterministic too.
  std::function<double()> now_seconds;
  // Test seam: when > 0, the run returns OK right after epoch
  // stop_after_epoch's checkpoint is written, leaving out_dir as a process
  // killed at that moment would. 0: run to config.epochs.
  int64_t stop_after_epoch = 0;
};

// Runs the trial. On success every epoch's metrics and the last checkpoint
// are written. On failure returns, with a message naming what and where:
//   InvalidArgument   the configuration cannot run (a subset larger than the
//                     dataset, a batch larger than the training subset)
//   FailedPrecondition
//                     device cuda without a CUDA device or LibTorch build;
//                     out_dir/checkpoint.pt belongs to another configuration
//                     (the message names the first differing key)
//   NotFound, PermissionDenied, DataLoss
//                     a dataset file is missing, unreadable or corrupt;
//                     DataLoss also for an unreadable checkpoint
//   Aborted           the loss stopped being finite: "diverged: loss is nan
//                     at epoch E step S" (S counts from 1 within the epoch)
//   Unavailable       out_dir or a file in it cannot be written
//   Internal          any other LibTorch error
absl::Status RunTrial(const TrialConfig& config, const TrainerOptions& options);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_TRAINER_H_
