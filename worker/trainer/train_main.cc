// sslsweep-train: runs one trial and exits.
//
//   sslsweep-train --config trial.yaml --out DIR [--threads N]
//                  [--export-features FEATURES_DIR] [--checkpoint-links]
//                  [--world-size N --rank R --master HOST:PORT
//                   [--local-address HOST] [--overlap-gradient-sync]]
//
// --world-size N (> 1) makes this process rank R of a data-parallel trial
// over Gloo (TrainerOptions::data_parallel; one process per rank, each with
// its own DIR): rank 0 listens at --master (port 0: any free one) and prints
//   {"event":"rendezvous","port":P}
// on stdout before waiting for the others, which join at HOST:P. The ranks
// train as one process with the whole optim.batch_size would (it must be
// divisible by N: exit 2 otherwise, before the rendezvous); rank 0 alone
// measures; a rank that dies makes the others fail (exit 5).
//
// --export-features writes the last epoch's measured features and labels as
// .npy files into FEATURES_DIR (TrainerOptions::export_dir), for analysing
// them elsewhere (the scikit-learn parity benchmark).
//
// --checkpoint-links (TrainerOptions::checkpoint_links; the worker agent
// passes it): after saving epoch E's checkpoint, hard-link it as
// DIR/checkpoint-E.pt, an immutable snapshot, and print on stdout, after
// epoch E's metrics and epoch_end lines,
//   {"epoch":E,"event":"checkpoint","path":"checkpoint-E.pt"}
// (not written to metrics.jsonl). Whoever reads the link deletes it.
//
// Metrics lines go to stdout (and DIR/metrics.jsonl), progress for humans to
// stderr; see worker/trainer/trainer.h for what is written. When
// DIR/checkpoint.pt exists the trial resumes from it ("resuming from epoch
// K" on stderr) and prints the metrics of epochs after K only; DIR may hold
// nothing else (a checkpoint downloaded from the coordinator), and then
// metrics.jsonl starts with epoch K+1. On failure the
// last line on stderr is "sslsweep-train: <reason>", which the worker agent
// relays as the trial's failure reason. Exit codes:
//
//   0  the trial finished
//   1  any other error (output not writable, a LibTorch error)
//   2  a bad configuration or command line (the message names file:line:col);
//      device cuda where there is no CUDA; DIR/checkpoint.pt belongs to
//      another configuration (the message names the first differing key)
//   3  a dataset file or the checkpoint is missing, unreadable or corrupt
//      (the message names it)
//   4  the training diverged ("diverged: loss is nan at epoch E step S")
//   5  data parallel: another rank is gone (its process died or its
//      connection broke) or stopped answering, so this one cannot go on:
//      "lost a peer rank: <what failed>". Not for a rendezvous that never
//      completes (exit 1).

#include <exception>
#include <iostream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "worker/trainer/trainer.h"
#include "worker/trial_config.h"

namespace {

constexpr int kExitOther = 1;
constexpr int kExitConfig = 2;
constexpr int kExitData = 3;
constexpr int kExitDiverged = 4;
constexpr int kExitLostPeer = 5;

int ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
      return sslsweep::IsLostPeer(status) ? kExitLostPeer : kExitOther;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
      return kExitConfig;
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kDataLoss:
      return kExitData;
    case absl::StatusCode::kAborted:
      return kExitDiverged;
    default:
      return kExitOther;
  }
}

int Fail(int code, const std::string& message) {
  std::cerr << "sslsweep-train: " << message << std::endl;
  return code;
}

int Main(int argc, char** argv) {
  std::string config_path;
  std::string out_dir;
  int threads = -1;
  std::string export_dir;
  bool checkpoint_links = false;
  sslsweep::DataParallelSpec data_parallel;
  std::string master = "127.0.0.1:0";
  CLI::App app{"Runs one sslsweep trial: SSL training with per-epoch metrics."};
  app.add_option("--config", config_path, "Trial configuration YAML")
      ->required();
  app.add_option("--out", out_dir, "Output directory (created if missing)")
      ->required();
  app.add_option("--threads", threads,
                 "LibTorch intra-op threads, overriding the configuration "
                 "(0: one per core)")
      ->check(CLI::Range(0, 1024));
  app.add_option("--export-features", export_dir,
                 "Write the last epoch's features of every measured layer, and "
                 "the fine and coarse labels, as .npy files into this directory");
  app.add_flag("--checkpoint-links", checkpoint_links,
               "After each checkpoint of epoch E, hard-link it as "
               "checkpoint-E.pt and print a checkpoint event on stdout");
  app.add_option("--world-size", data_parallel.world_size,
                 "Ranks of a data-parallel trial (one process each)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--rank", data_parallel.rank, "This process's rank, 0 to world size - 1")
      ->check(CLI::Range(0, 4095));
  app.add_flag("--overlap-gradient-sync", data_parallel.overlap_gradient_sync,
               "Start each gradient bucket's all-reduce during the backward (CPU ranks)");
  app.add_option("--local-address", data_parallel.local_addr,
                 "An address of this host the other ranks can reach (default: rank 0 "
                 "the --master host, the others what the host name resolves to)");
  app.add_option("--master", master,
                 "HOST:PORT of rank 0's rendezvous; rank 0 listens there (port 0: any "
                 "free port, printed as a rendezvous event)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return Fail(kExitConfig, e.what());
  }

  if (data_parallel.rank >= data_parallel.world_size) {
    return Fail(kExitConfig, "--rank " + std::to_string(data_parallel.rank) +
                                 " must be below --world-size " +
                                 std::to_string(data_parallel.world_size));
  }
  const size_t colon = master.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(master.substr(colon + 1), &port) || port < 0 || port > 65535 ||
      (data_parallel.rank > 0 && port == 0)) {
    return Fail(kExitConfig, "--master '" + master +
                                 "': expected HOST:PORT (port 0, any free one, on rank 0 only)");
  }
  data_parallel.master_addr = master.substr(0, colon);
  data_parallel.master_port = port;
  data_parallel.on_listening = [](int listening) {
    std::cout << "{\"event\":\"rendezvous\",\"port\":" << listening << "}" << std::endl;
  };

  auto config = sslsweep::LoadTrialConfigFile(config_path);
  if (!config.ok())
    return Fail(kExitConfig, std::string(config.status().message()));
  if (threads >= 0) config->threads = threads;

  sslsweep::TrainerOptions options;
  options.out_dir = out_dir;
  options.metrics_echo = &std::cout;
  options.log = &std::cerr;
  options.export_dir = export_dir;
  options.checkpoint_links = checkpoint_links;
  options.data_parallel = data_parallel;
  const absl::Status status = sslsweep::RunTrial(*config, options);
  if (!status.ok()) {
    return Fail(ExitCodeFor(status), std::string(status.message()));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // RunTrial converts LibTorch's errors; this is the last resort for anything
  // else, so that no failure ends in std::terminate.
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    return Fail(kExitOther, e.what());
  }
}
