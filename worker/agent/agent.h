// Agent: the worker process's logic. It registers with the coordinator,
// leases trials one at a time, runs each in an `sslsweep-train` child
// process, relays the child's metrics and checkpoints, heartbeats, and
// reports how the trial ended. A crashed trainer is a failed attempt (with
// its exit status and last stderr line), never a crashed agent.
//
// A data-parallel trial runs as a gang of world_size ranks, one per worker,
// leased to all of them at once; the lease names this worker's rank. Rank 0
// hosts the gang's rendezvous and speaks for the trial (its metrics,
// checkpoints and end); a rank k > 0 only trains, and reports only its own
// failure. A lone rank (world_size <= 1) is an ordinary trial.
//
// One attempt, step by step:
//   1. The lease names the attempt and the rank; if the coordinator holds a
//      checkpoint of an earlier attempt (checkpoint_epoch >= 0) every rank
//      downloads it into the attempt's directory as checkpoint.pt first, so
//      its trainer resumes from it (a NotFound or corrupt download: start
//      afresh).
//   2. A rank k > 0 waits for rank 0's rendezvous (rendezvous_wait.h): it
//      polls GetRendezvous for at most rendezvous_timeout_ms, then reports
//      FailTrial FAILURE_PEER_LOST without starting its trainer.
//   3. The trainer runs (trainer_command.h). A lone rank and rank 0 get
//      --checkpoint-links; the ranks of a data-parallel trial get
//      --world-size, --rank and --master: rank 0 listens at
//      advertise_address on a free port, the others join at the
//      rendezvous. Rank 0's stdout (trainer_output.h) goes into the Outbox
//      as it comes: the rendezvous event at once (ReportRendezvous with
//      advertise_address and the port; the trainer prints it before any
//      metrics, so it is sent first), each epoch's metrics at its epoch_end
//      line, each checkpoint at its checkpoint event. The Outbox delivers
//      them in order on its own thread, so the trainer never waits on the
//      coordinator. A rank k > 0's stdout is read and dropped: the
//      coordinator takes the trial's reports from rank 0 only.
//   4. When the trainer ends, the attempt's end (attempt_end.h) is queued
//      behind its reports (a rank k > 0 queues a failure only: rank 0
//      reports the trial's success), and the agent waits until the
//      coordinator has answered them all before leasing the next trial.
// The coordinator stops an attempt through a heartbeat answer (cancelled,
// or leased to another attempt; every rank heartbeats its trial as
// running), a stale answer to a report or to GetRendezvous
// (FailedPrecondition/NotFound) or a ReportMetrics stop (pruned): the
// rendezvous wait ends, or the trainer gets SIGTERM (SIGKILL after
// kill_grace_ms), and nothing more of the attempt is reported.
//
// The worker id survives coordinator restarts (the coordinator keeps it);
// the agent registers again only when the coordinator says it does not know
// the worker (NotFound to LeaseTrial).
//
// Thread contract: Run() on one thread (which also owns the trainer child);
// Stop() from any thread (e.g. a signal thread). A heartbeat thread runs
// while Run() does, and the Outbox's sender thread while the Agent lives.

#ifndef SSLSWEEP_WORKER_AGENT_AGENT_H_
#define SSLSWEEP_WORKER_AGENT_AGENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"
#include "proto/sslsweep.grpc.pb.h"
#include "worker/agent/outbox.h"
#include "worker/agent/trainer_process.h"

namespace sslsweep {

struct AgentOptions {
  std::string coordinator_address;  // for messages
  std::string trainer_path;         // the sslsweep-train binary
  std::string work_dir;             // trial directories go here
  std::string hostname;
  // How the other ranks of a data-parallel trial reach this worker's rank
  // 0 (empty: `hostname`). Its trainer also binds its Gloo transport to
  // it, so it must resolve to an address of this host that the other
  // workers can reach, not a wildcard like 0.0.0.0.
  std::string advertise_address;
  int trainer_threads = 0;            // > 0: passed to the trainer as --threads
  int connect_timeout_ms = 30'000;    // how long to try the first registration
  int rpc_timeout_ms = 10'000;        // deadline of each unary call
  int transfer_timeout_ms = 600'000;  // deadline of each checkpoint transfer
  int kill_grace_ms = 5'000;          // SIGTERM, then SIGKILL after this
  // How long a rank k > 0 waits for rank 0's rendezvous before it gives
  // the attempt up (FAILURE_PEER_LOST).
  int rendezvous_timeout_ms = 300'000;
  // After Stop(): how long unacknowledged reports are still retried before
  // the agent gives up on them (the coordinator's lease expiry takes over).
  int drain_timeout_ms = 10'000;
  bool exit_when_idle = false;  // return from Run() when nothing is unfinished
  // Where log lines go; null: stderr, prefixed "sslsweep-worker: ".
  std::function<void(const std::string&)> log;
};

class Agent {
 public:
  Agent(AgentOptions options, std::unique_ptr<v1::WorkerService::StubInterface> stub);
  ~Agent();

  // Registers, then runs trials until Stop() (or, with exit_when_idle, until
  // no trial is granted and none is unfinished: a gang waiting to form, a
  // sweep at its max_concurrent, or a running trial that may be retried
  // keeps the worker asking); OK also when
  // Stop() comes during registration.
  // Fails with Unavailable if the coordinator cannot be reached within
  // connect_timeout_ms at start, or with the coordinator's status if it
  // refuses the registration.
  absl::Status Run();
  // Asks Run() to end: no new lease; a running trainer gets SIGTERM (a
  // rendezvous wait ends) and its attempt is released (FAILURE_RELEASED:
  // back to the queue); reports still queued are retried for
  // drain_timeout_ms. Idempotent.
  void Stop();

 private:
  // The leased attempt, from the lease until the coordinator answered its end.
  struct CurrentAttempt {
    bool active = false;
    AttemptKey key;
    TrainerProcess* trainer = nullptr;  // while the child runs
    bool stop_requested = false;        // by the coordinator: report nothing more
  };
  // How the checkpoint download before an attempt went.
  enum class Fetch { kReady, kStale, kStopping };

  absl::Status Register();
  void HeartbeatLoop();
  // Runs one leased attempt to its end and reports how it ended.
  void RunAttempt(const v1::TrialAssignment& trial, const std::string& worker_id);
  Fetch FetchCheckpoint(const v1::TrialAssignment& trial, const std::string& worker_id,
                        const std::string& dir);
  // Rank k > 0: polls GetRendezvous until rank 0's rendezvous is ready
  // (AwaitRendezvous's results; Cancelled when Stop() or a stop of the
  // attempt interrupts it).
  absl::StatusOr<v1::Rendezvous> WaitForRendezvous(const AttemptKey& key,
                                                   const std::string& worker_id);
  // Reads the trainer's stdout until it closes; rank 0 (or a lone rank)
  // relays it into the outbox, the other ranks drop it.
  void RelayOutput(const AttemptKey& key, int rank, const std::string& dir,
                   TrainerProcess& trainer);
  // Stops the current attempt's trainer if it is `key` (the coordinator
  // asked); true if it was the current attempt and not stopped before.
  bool StopAttempt(const AttemptKey& key);
  // Runs `rpc` on the run thread with a context prepared for `deadline`
  // that Stop() (or a stop of the current attempt) cancels; Cancelled at
  // once if interrupted already.
  absl::Status CallFromRunThread(absl::Time deadline,
                                 const std::function<absl::Status(grpc::ClientContext*)>& rpc);
  // Sleeps `delay` unless Stop() or a stop of the current attempt comes
  // first; returns true if interrupted.
  bool SleepInterrupted(absl::Duration delay);
  bool Interrupted() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return stopping_ || current_.stop_requested;
  }
  void Log(const std::string& message) const;

  // Constant after construction.
  const AgentOptions options_;
  const std::string advertise_address_;
  const std::unique_ptr<v1::WorkerService::StubInterface> stub_;

  mutable absl::Mutex mu_;
  std::string worker_id_ ABSL_GUARDED_BY(mu_);
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_) = absl::Seconds(2);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool run_done_ ABSL_GUARDED_BY(mu_) = false;
  CurrentAttempt current_ ABSL_GUARDED_BY(mu_);
  // The calls in flight, for TryCancel: the run thread's (registration,
  // lease, checkpoint download) and the heartbeat thread's. Null between.
  grpc::ClientContext* run_call_ ABSL_GUARDED_BY(mu_) = nullptr;
  grpc::ClientContext* heartbeat_call_ ABSL_GUARDED_BY(mu_) = nullptr;

  // Last: its sender thread calls back into the members above, so it must
  // be destroyed first.
  Outbox outbox_;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_AGENT_AGENT_H_
