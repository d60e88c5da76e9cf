// Agent: the worker process's logic. It registers with the coordinator,
// leases trials one at a time, runs each in an `sslsweep-train` child
// process, relays the child's metrics lines epoch by epoch, heartbeats, and
// reports how the trial ended. A crashed trainer is a failed attempt (with
// its exit status and last stderr line), never a crashed agent.
//
// The metrics contract with the trainer: one JSON object per stdout line,
// {"epoch":E,"name":N,"value":V}, and {"epoch":E,"event":"epoch_end"} after
// an epoch's last value; the agent sends one ReportMetrics per epoch_end.
//
// Thread contract: Run() on one thread (which also owns the trainer child);
// Stop() from any thread (e.g. a signal thread). A heartbeat thread runs
// while Run() does.

#ifndef SSLSWEEP_WORKER_AGENT_AGENT_H_
#define SSLSWEEP_WORKER_AGENT_AGENT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "proto/sslsweep.grpc.pb.h"
#include "worker/agent/subprocess.h"

namespace sslsweep {

struct AgentOptions {
  std::string coordinator_address;  // for messages
  std::string trainer_path;         // the sslsweep-train binary
  std::string work_dir;             // trial directories go here
  std::string hostname;
  int trainer_threads = 0;          // > 0: passed to the trainer as --threads
  int connect_timeout_ms = 30'000;  // how long to try the first registration
  int rpc_timeout_ms = 10'000;      // deadline of each call
  int kill_grace_ms = 5'000;        // SIGTERM, then SIGKILL after this
  bool exit_when_idle = false;      // return from Run() when nothing is pending
};

class Agent {
 public:
  Agent(AgentOptions options, std::unique_ptr<v1::WorkerService::StubInterface> stub);
  ~Agent();

  // Registers, then runs trials until Stop() (or, with exit_when_idle, until
  // no trial is pending). Fails with Unavailable if the coordinator cannot be
  // reached within connect_timeout_ms at start.
  absl::Status Run();
  // Asks Run() to end: a running trainer is stopped and its attempt failed
  // with the reason "worker stopped".
  void Stop();

 private:
  struct RunningTrial {
    int64_t trial_id = 0;
    int32_t attempt = 0;
    Subprocess* child = nullptr;
    bool stop_requested = false;    // cancelled or stale: report nothing
    int64_t stop_requested_ms = 0;  // for the SIGKILL escalation
  };

  absl::Status Register();
  // Runs one leased trial to its end and reports the outcome.
  void RunTrial(const v1::TrialAssignment& trial);
  // Sends one epoch's metrics, retrying transient failures; false if the
  // coordinator says this attempt is no longer ours.
  bool SendMetrics(const v1::TrialAssignment& trial, int32_t epoch,
                   const std::map<std::string, double>& metrics);
  void ReportEnd(const v1::TrialAssignment& trial, const ExitStatus& exit,
                 const std::string& log_path);
  void HeartbeatLoop();
  // Calls `rpc` until it returns a non-transient status or Stop() is called,
  // with exponential back-off. Returns the last status.
  template <typename Call>
  grpc::Status CallWithRetry(Call rpc);
  // Waits up to `ms` or until Stop(); returns true if stopping.
  bool SleepUnlessStopped(int64_t ms);

  // Constant after construction.
  const AgentOptions options_;
  const std::unique_ptr<v1::WorkerService::StubInterface> stub_;

  absl::Mutex mu_;
  std::string worker_id_ ABSL_GUARDED_BY(mu_);
  int heartbeat_interval_ms_ ABSL_GUARDED_BY(mu_) = 5000;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool run_done_ ABSL_GUARDED_BY(mu_) = false;
  RunningTrial running_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_AGENT_AGENT_H_
