// TrainerCommand: the sslsweep-train command line of one attempt's rank (the
// flags of worker/trainer/train_main.cc).
//
//   TRAINER --config DIR/trial.yaml --out DIR [--checkpoint-links]
//           [--threads N] [--world-size N --rank R --master HOST:PORT
//           [--local-address HOST]]
//
// --checkpoint-links goes to the rank whose checkpoints the agent relays:
// a lone rank, or rank 0 of a data-parallel trial. The rank flags go to the
// ranks of a data-parallel trial only (world_size > 1); --local-address,
// where the others reach this rank, to ranks k > 0 (rank 0 listens at
// --master, its own address).
//
// Thread contract: a plain struct and a pure function.

#ifndef SSLSWEEP_WORKER_AGENT_TRAINER_COMMAND_H_
#define SSLSWEEP_WORKER_AGENT_TRAINER_COMMAND_H_

#include <string>
#include <vector>

namespace sslsweep {

struct TrainerCommand {
  std::string trainer_path;  // the sslsweep-train binary
  std::string dir;           // the attempt's directory, holding trial.yaml
  int threads = 0;           // > 0: --threads
  int world_size = 1;
  int rank = 0;
  // Rank 0: the address it listens at (port 0: any free one); the others:
  // rank 0's rendezvous. REQUIRES: HOST:PORT when world_size > 1.
  std::string master;
  // Ranks k > 0: this worker's advertised address (ignored for rank 0).
  std::string local_address;
};

// argv[0] is trainer_path.
std::vector<std::string> TrainerArgv(const TrainerCommand& command);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_AGENT_TRAINER_COMMAND_H_
