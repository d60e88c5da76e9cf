// TrainerOutputParser: turns sslsweep-train's stdout lines (the contract in
// worker/trainer/metrics_writer.h and trainer.h) into the events the agent
// reports:
//
//   {"epoch":E,"name":N,"value":V}                         gathered per epoch
//   {"epoch":E,"event":"epoch_end"}                        -> EpochMetrics
//   {"epoch":E,"event":"checkpoint","path":"checkpoint-E.pt"} -> CheckpointSaved
//   {"event":"rendezvous","port":P}                        -> Rendezvous
//
// The rendezvous line comes from rank 0 of a data-parallel trial once it
// listens on port P (worker/trainer/train_main.cc), before any metrics.
//
// An epoch's values are reported at its epoch_end line only, so a partial
// epoch (the trainer died mid-way) is never reported.
//
// Thread contract: not thread-safe; confine an instance to one thread.

#ifndef SSLSWEEP_WORKER_AGENT_TRAINER_OUTPUT_H_
#define SSLSWEEP_WORKER_AGENT_TRAINER_OUTPUT_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace sslsweep {

struct TrainerEvent {
  enum class Kind {
    kNone,             // a value line, or an epoch_end without values
    kEpochMetrics,     // `epoch` ended with `metrics`
    kCheckpointSaved,  // `path` (relative to the trainer's out dir) holds `epoch`'s checkpoint
    kRendezvous,       // rank 0 listens for the other ranks on `port`
  };
  Kind kind = Kind::kNone;
  int32_t epoch = 0;
  std::vector<std::pair<std::string, double>> metrics;  // sorted by name
  std::string path;
  int32_t port = 0;
};

class TrainerOutputParser {
 public:
  // Consumes one line. InvalidArgument (quoting the line's start) for a
  // line that is not one of the above; the parser's state is unchanged then.
  absl::StatusOr<TrainerEvent> Consume(const std::string& line);

 private:
  std::map<int32_t, std::map<std::string, double>> pending_;  // by epoch
};

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_AGENT_TRAINER_OUTPUT_H_
