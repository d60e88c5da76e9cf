#include "worker/agent/attempt_end.h"

#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"

namespace sslsweep {
namespace {

// sslsweep-train's exit codes (worker/trainer/train_main.cc).
constexpr int kTrainerExitConfig = 2;
constexpr int kTrainerExitDiverged = 4;
constexpr int kTrainerExitPeerLost = 5;

}  // namespace

AttemptEnd AttemptEndFor(const ExitStatus& exit, bool worker_stopping,
                         const std::string& last_stderr_line) {
  AttemptEnd end;
  if (exit.success()) {
    end.finished = true;
    return end;
  }
  // A trainer that diverged or was misconfigured exited by itself, even if
  // the worker is stopping: those verdicts hold anywhere.
  if (exit.exited && exit.code == kTrainerExitDiverged) {
    end.kind = v1::FAILURE_DIVERGED;
  } else if (exit.exited && exit.code == kTrainerExitConfig) {
    end.kind = v1::FAILURE_CONFIG;
  } else if (worker_stopping) {
    end.kind = v1::FAILURE_RELEASED;
    end.reason = "the worker was stopped while the trial ran";
    return end;
  } else if (exit.exited && exit.code == kTrainerExitPeerLost) {
    end.kind = v1::FAILURE_PEER_LOST;
  } else {
    end.kind = v1::FAILURE_CRASH;
  }
  end.reason = absl::StrCat("sslsweep-train ", exit.Describe());
  if (!last_stderr_line.empty()) absl::StrAppend(&end.reason, ": ", last_stderr_line);
  return end;
}

std::string LastLineOfFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff start = size > 4096 ? size - 4096 : 0;
  in.seekg(start);
  std::string tail((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
  const size_t newline = tail.rfind('\n');
  return newline == std::string::npos ? tail : tail.substr(newline + 1);
}

}  // namespace sslsweep
