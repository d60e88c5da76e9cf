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
//   checkpoint-E.pt with options.checkpoint_links: a hard link to epoch E's
//                   checkpoint.pt, made right after it is saved. The trainer
//                   replaces checkpoint.pt by rename, so the link stays epoch
//                   E's checkpoint; whoever reads it (the worker agent
//                   uploads it) deletes it.
//
// Checkpoint events: with options.checkpoint_links, once epoch E's link
// exists the echo (never metrics.jsonl) gets the line
//   {"epoch":E,"event":"checkpoint","path":"checkpoint-E.pt"}
// after epoch E's metrics and its epoch_end line; the path is relative to
// out_dir. The worker agent uploads that file, after the coordinator
// acknowledged every earlier epoch's metrics, for another worker to resume
// from.
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
// E epochs. Every epoch E >= 1 gets loss/total and loss/<term> for each of
// the method's terms (VICReg: invariance, variance, covariance; SimCLR:
// nt_xent; BYOL: regression; Barlow Twins: on_diagonal, off_diagonal),
// means over the epoch's steps, the terms unweighted, and time/epoch_seconds
// (the training steps, without the measurement). Every epoch with metrics
// ends with one epoch_end line.
//
// Measured epochs (0, every analysis.every-th, and the last) also get the
// metric suite (analysis/metric_suite.h) of every selected layer tap
// (analysis.layers: the backbone's stages, "embedding", the projector's
// "projector1".."projectorK") for every selected target (analysis.targets)
// and metric group (analysis.metrics), named `<metric>/<target>/<layer>`,
// e.g. ncc_test_acc/fine/embedding, cdnv/random/stage2; per layer first the
// `sample` target, then the others in analysis.targets order. How
// (layer_features.h): the network in eval mode (running BatchNorm
// statistics), one no-grad forward pass over the measured rows, the first
// analysis.max_samples training and test images (0: all), unaugmented,
// collecting every selected tap (conv taps global-average-pooled to
// [rows, C]); the targets `fine` and `coarse` are the data's labels,
// `random` a partition of those rows into num_classes classes seeded from
// config.seed (the same at every epoch and after a resume), a user's label
// file its first rows; `sample` has its own rows: views of the first
// analysis.sample_images training images, augmented once per trial with
// generators seeded from config.seed, each image its own class. The
// analysis runs on the training device. Measuring never changes the
// training: it draws nothing from the training's generators (they are
// saved and restored around it) and leaves the parameters and BatchNorm
// statistics alone, so the losses are the same whatever is measured
// (bitwise on the CPU).
//
// Memory: the features of every selected tap for the measured rows are held
// at once, about (train rows + test rows) x (sum of the selected taps'
// widths) x 4 bytes, plus 2 x sample_images x sample_views rows for the
// `sample` target, plus the suite's working memory (analysis/*.h; the kNN
// search is chunked, the linear probe holds D x D matrices). For the
// quickstart-like ConvNet depth 5 width 16 with a 3 x 512 projector, all
// taps (16+32+64+128+256+256+512+512+512 = 2288 floats a row) at 10,000 +
// 10,000 rows: about 180 MB.
//
// Feature export: with options.export_dir set, after the last epoch's
// measurement (or, for a trial resumed after its last epoch, at once) the
// measured rows' features of every selected tap and their fine and coarse
// labels are written there as .npy files (see ExportLayerFeatures).
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

// Which rank of a data-parallel trial this process is (see
// TrainerOptions::data_parallel). Plain values: no LibTorch here.
struct DataParallelSpec {
  int rank = 0;
  int world_size = 1;  // 1: the process trains alone
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  // rank 0: 0 picks a free port; other ranks: rank 0's port
  // The address of this host that the other ranks reach this rank's Gloo
  // transport at (it binds there). Empty: rank 0 uses master_addr (its
  // own), the others the address their host name resolves to.
  std::string local_addr;
  // Start each gradient bucket's all-reduce during the backward
  // (DataParallelOptions::overlap_gradient_sync; off: it did not pay on
  // 2-core CPU machines, docs/benchmarks.md).
  bool overlap_gradient_sync = false;
  // Rank 0: called with the port once it listens, before it waits for the
  // other ranks (sslsweep-train prints it as a rendezvous event).
  std::function<void(int port)> on_listening;
  // The rendezvous and every collective; long, because the other ranks wait
  // in their next collective while rank 0 measures.
  int timeout_ms = 1'800'000;
};

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
  // When set: where the last epoch's features go (`<layer>.train.npy`,
  // `<layer>.test.npy`, `labels.{fine,coarse}.{train,test}.npy`), created if
  // missing. Empty: no export.
  std::string export_dir;
  // Test seam: when > 0, the run returns OK right after epoch
  // stop_after_epoch's checkpoint is written, leaving out_dir as a process
  // killed at that moment would. 0: run to config.epochs.
  int64_t stop_after_epoch = 0;
  // After each checkpoint save, hard-link it as checkpoint-E.pt and echo a
  // checkpoint event (see "Checkpoint events" above).
  bool checkpoint_links = false;
  // Data parallel: with world_size > 1 this process joins the others as
  // one rank (data_parallel_group.h: a TCPStore on rank 0, Gloo). Every
  // rank runs the same configuration; optim.batch_size is the global batch,
  // which every rank draws alike (the same order and random augmentation
  // parameters) and of which it augments and trains only its own rows (rank r: rows r*B/N .. (r+1)*B/N). The losses see the global
  // batch (SslMethod::SetBatchGather), BatchNorm normalises over it
  // (group_batch_norm.h), gradients are averaged over the ranks, so N ranks
  // train as one process with the whole batch would. Rank 0 alone measures
  // (the others end those epochs without analysis values); every rank
  // checkpoints. optim.batch_size must be divisible by world_size
  // (InvalidArgument otherwise); a rank that dies fails the others'
  // collectives (Unavailable, IsLostPeer), so the whole gang stops. On a
  // CUDA device the gradients and batch statistics go over NCCL.
  DataParallelSpec data_parallel;
};

// Runs the trial. On success every epoch's metrics and the last checkpoint
// are written. On failure returns, with a message naming what and where:
//   InvalidArgument   the configuration cannot run (a subset larger than the
//                     dataset, a batch larger than the training subset, an
//                     analysis.layers name the network has no tap of: the
//                     message names it and lists the taps; a label file of
//                     the wrong type, too short or with a label outside
//                     [0, 100000))
//   FailedPrecondition
//                     device cuda without a CUDA device or LibTorch build;
//                     out_dir/checkpoint.pt belongs to another configuration
//                     (the message names the first differing key)
//   NotFound, PermissionDenied, DataLoss
//                     a dataset or label file is missing, unreadable or
//                     corrupt (named);
//                     DataLoss also for an unreadable checkpoint
//   Aborted           the loss stopped being finite: "diverged: loss is nan
//                     at epoch E step S" (S counts from 1 within the epoch)
//   Unavailable       out_dir or a file in it, or the export, cannot be
//                     written; or (IsLostPeer) another rank of a
//                     data-parallel trial is gone: "lost a peer rank: ..."
//   Internal          any other LibTorch error
absl::Status RunTrial(const TrialConfig& config, const TrainerOptions& options);

// Whether RunTrial failed because another rank of its data-parallel trial
// is gone (sslsweep-train exits 5 for it).
bool IsLostPeer(const absl::Status& status);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_TRAINER_H_
