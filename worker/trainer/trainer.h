// RunTrial: one SSL training trial from its configuration to its metrics.
//
// The trainer seeds LibTorch (torch::manual_seed(config.seed)), sets its
// intra-op thread count (config.threads, or one per core when 0), loads the
// data, builds the ConvNet backbone and the VICReg projector, and trains for
// config.epochs epochs: each epoch shuffles the training set, drops the last
// partial batch, makes two augmented views of each batch and steps the
// optimiser (SGD with momentum, or AdamW) on the VICReg loss, with the
// learning rate following a per-step cosine decay from optim.lr towards 0
// (no warm-up). Given the same configuration and thread count it produces the
// same numbers.
//
// Outputs, in options.out_dir (created if missing):
//   config.yaml     the resolved configuration (every key, defaults included)
//   metrics.jsonl   the metrics lines (see metrics_writer.h), also echoed to
//                   options.metrics_echo
//   checkpoint.pt   after every training epoch (see checkpoint.h)
//
// Metrics: epoch 0 is the model before training, epoch E >= 1 the model after
// E epochs. Measured epochs (0, every analysis.every-th, and the last) get
// NCC accuracies of the embedding on the unaugmented train and test subsets
// (centers from the train subset): ncc_train_acc/fine/embedding and
// ncc_test_acc/fine/embedding. Every epoch E >= 1 gets loss/total,
// loss/invariance, loss/variance, loss/covariance (means over the epoch's
// steps; the three terms unweighted, total their weighted sum) and
// time/epoch_seconds (the training steps, without the measurement). Every
// epoch with metrics ends with one epoch_end line.
//
// Thread contract: RunTrial uses LibTorch's global state (seed, thread count,
// generator); run one trial per process at a time.

#ifndef SSLSWEEP_WORKER_TRAINER_TRAINER_H_
#define SSLSWEEP_WORKER_TRAINER_TRAINER_H_

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
};

// Runs the trial. On success every epoch's metrics and the last checkpoint
// are written. On failure returns, with a message naming what and where:
//   InvalidArgument   the configuration cannot run (a subset larger than the
//                     dataset, a batch larger than the training subset)
//   NotFound, PermissionDenied, DataLoss
//                     a dataset file is missing, unreadable or corrupt
//   Aborted           the loss stopped being finite: "diverged: loss is nan
//                     at epoch E step S" (S counts from 1 within the epoch)
//   Unavailable       out_dir or a file in it cannot be written
//   Internal          any other LibTorch error
absl::Status RunTrial(const TrialConfig& config, const TrainerOptions& options);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_TRAINER_H_
