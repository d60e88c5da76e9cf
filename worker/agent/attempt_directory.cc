#include "worker/agent/attempt_directory.h"

#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"

namespace sslsweep {

std::filesystem::path AttemptDirectory(const std::filesystem::path& work_dir,
                                       int64_t trial_id, int64_t attempt, int rank,
                                       int world_size) {
  std::filesystem::path dir =
      work_dir / absl::StrCat("trial-", trial_id) / absl::StrCat("attempt-", attempt);
  if (world_size > 1) dir /= absl::StrCat("rank-", rank);
  return dir;
}

absl::Status PrepareAttemptDirectory(const std::filesystem::path& dir,
                                     const std::string& config_yaml) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) return absl::InternalError(absl::StrCat(dir.string(), ": ", error.message()));
  std::ofstream config(dir / "trial.yaml", std::ios::trunc);
  config << config_yaml;
  config.flush();
  if (!config)
    return absl::InternalError(absl::StrCat((dir / "trial.yaml").string(), ": cannot write"));
  return absl::OkStatus();
}

void RemoveCheckpointLinks(const std::filesystem::path& dir) {
  std::error_code error;
  std::vector<std::filesystem::path> links;
  for (std::filesystem::directory_iterator it(dir, error), end; !error && it != end;
       it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.rfind("checkpoint-", 0) == 0 && it->path().extension() == ".pt") {
      links.push_back(it->path());
    }
  }
  for (const std::filesystem::path& link : links) std::filesystem::remove(link, error);
}

}  // namespace sslsweep
