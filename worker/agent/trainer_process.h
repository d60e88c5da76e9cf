// TrainerProcess: a running sslsweep-train child (a Subprocess) that any
// thread may ask to stop: SIGTERM at once to its process group, then
// SIGKILL if it is still running after the grace period.
//
// Thread contract: ReadLine and Wait on the thread that started it (the
// child dies with that thread, see subprocess.h); Stop from any thread.

#ifndef SSLSWEEP_WORKER_AGENT_TRAINER_PROCESS_H_
#define SSLSWEEP_WORKER_AGENT_TRAINER_PROCESS_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "worker/agent/subprocess.h"

namespace sslsweep {

class TrainerProcess {
 public:
  // Starts the child (Subprocess::Spawn's errors).
  static absl::StatusOr<std::unique_ptr<TrainerProcess>> Start(const SubprocessOptions& options,
                                                               absl::Duration kill_grace);
  // Kills the child if still running (Subprocess) and ends the escalation.
  ~TrainerProcess();
  TrainerProcess(const TrainerProcess&) = delete;
  TrainerProcess& operator=(const TrainerProcess&) = delete;

  // One stdout line; false at end of stream.
  bool ReadLine(std::string* line) { return child_->ReadLine(line); }
  // Blocks until the child ends; idempotent.
  ExitStatus Wait();

  // SIGTERM now, SIGKILL after the grace period unless it ended by then.
  // Idempotent; a no-op once Wait() returned.
  void Stop();

 private:
  TrainerProcess(std::unique_ptr<Subprocess> child, absl::Duration kill_grace)
      : child_(std::move(child)), kill_grace_(kill_grace) {}
  void JoinEscalation();

  // Constant after construction.
  const std::unique_ptr<Subprocess> child_;
  const absl::Duration kill_grace_;

  absl::Mutex mu_;
  bool stop_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool exited_ ABSL_GUARDED_BY(mu_) = false;
  std::thread escalation_ ABSL_GUARDED_BY(mu_);  // the SIGKILL timer, once stopped
};

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_AGENT_TRAINER_PROCESS_H_
