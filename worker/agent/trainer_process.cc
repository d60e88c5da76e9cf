#include "worker/agent/trainer_process.h"

#include <signal.h>

#include <utility>

namespace sslsweep {

absl::StatusOr<std::unique_ptr<TrainerProcess>> TrainerProcess::Start(
    const SubprocessOptions& options, absl::Duration kill_grace) {
  absl::StatusOr<std::unique_ptr<Subprocess>> child = Subprocess::Spawn(options);
  if (!child.ok()) return child.status();
  return std::unique_ptr<TrainerProcess>(new TrainerProcess(*std::move(child), kill_grace));
}

TrainerProcess::~TrainerProcess() {
  {
    absl::MutexLock lock(&mu_);
    exited_ = true;  // the Subprocess reaps the child itself
  }
  JoinEscalation();
}

ExitStatus TrainerProcess::Wait() {
  const ExitStatus status = child_->Wait();
  {
    absl::MutexLock lock(&mu_);
    exited_ = true;
  }
  JoinEscalation();
  return status;
}

void TrainerProcess::JoinEscalation() {
  std::thread escalation;
  {
    absl::MutexLock lock(&mu_);
    escalation = std::move(escalation_);
  }
  if (escalation.joinable()) escalation.join();
}

void TrainerProcess::Stop() {
  absl::MutexLock lock(&mu_);
  if (stop_requested_ || exited_) return;
  stop_requested_ = true;
  child_->Signal(SIGTERM);
  escalation_ = std::thread([this] {
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(&exited_), kill_grace_)) {
      child_->Signal(SIGKILL);
    }
  });
}

}  // namespace sslsweep
