#include "worker/agent/trainer_command.h"

#include <filesystem>

namespace sslsweep {

std::vector<std::string> TrainerArgv(const TrainerCommand& command) {
  std::vector<std::string> argv = {command.trainer_path, "--config",
                                   (std::filesystem::path(command.dir) / "trial.yaml").string(),
                                   "--out", command.dir};
  // The other ranks' checkpoints are not relayed; links would only pile up.
  if (command.rank == 0) argv.push_back("--checkpoint-links");
  if (command.threads > 0) argv.insert(argv.end(), {"--threads", std::to_string(command.threads)});
  if (command.world_size > 1) {
    argv.insert(argv.end(), {"--world-size", std::to_string(command.world_size), "--rank",
                             std::to_string(command.rank), "--master", command.master});
    if (command.rank > 0 && !command.local_address.empty()) {
      argv.insert(argv.end(), {"--local-address", command.local_address});
    }
  }
  return argv;
}

}  // namespace sslsweep
