#include "worker/agent/agent.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/client_context.h"
#include "worker/agent/attempt_directory.h"
#include "worker/agent/attempt_end.h"
#include "worker/agent/checkpoint_transfer.h"
#include "worker/agent/coordinator_connection.h"
#include "worker/agent/rendezvous_wait.h"
#include "worker/agent/trainer_command.h"
#include "worker/agent/trainer_output.h"

namespace sslsweep {
namespace {

std::string Name(const AttemptKey& key) {
  return absl::StrCat("trial ", key.trial_id, " attempt ", key.attempt);
}

OutboxOptions MakeOutboxOptions(const AgentOptions& options,
                                std::function<void(const std::string&)> log) {
  OutboxOptions outbox;
  outbox.rpc_timeout = absl::Milliseconds(options.rpc_timeout_ms);
  outbox.transfer_timeout = absl::Milliseconds(options.transfer_timeout_ms);
  outbox.log = std::move(log);
  return outbox;
}

}  // namespace

Agent::Agent(AgentOptions options, std::unique_ptr<v1::WorkerService::StubInterface> stub)
    : options_(std::move(options)),
      advertise_address_(options_.advertise_address.empty() ? options_.hostname
                                                            : options_.advertise_address),
      stub_(std::move(stub)),
      outbox_(MakeOutboxOptions(options_, [this](const std::string& m) { Log(m); }), stub_.get(),
              [this](const AttemptKey& key, Outbox::Settlement, const std::string&) {
                StopAttempt(key);
              }) {}

Agent::~Agent() = default;

void Agent::Log(const std::string& message) const {
  if (options_.log) {
    options_.log(message);
  } else {
    std::cerr << "sslsweep-worker: " << message << std::endl;
  }
}

absl::Status Agent::CallFromRunThread(
    absl::Time deadline, const std::function<absl::Status(grpc::ClientContext*)>& rpc) {
  grpc::ClientContext context;
  PrepareCall(&context, deadline);
  {
    absl::MutexLock lock(&mu_);
    if (Interrupted()) return absl::CancelledError("the worker or the attempt is stopping");
    run_call_ = &context;
  }
  absl::Status status = rpc(&context);
  absl::MutexLock lock(&mu_);
  run_call_ = nullptr;
  return status;
}

bool Agent::SleepInterrupted(absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(this, &Agent::Interrupted), delay);
}

void Agent::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    if (current_.trainer != nullptr) current_.trainer->Stop();
    if (run_call_ != nullptr) run_call_->TryCancel();
  }
  outbox_.GiveUpAt(absl::Now() + absl::Milliseconds(options_.drain_timeout_ms));
}

bool Agent::StopAttempt(const AttemptKey& key) {
  absl::MutexLock lock(&mu_);
  if (!current_.active || !(current_.key == key) || current_.stop_requested) return false;
  current_.stop_requested = true;
  if (current_.trainer != nullptr) current_.trainer->Stop();
  if (run_call_ != nullptr) run_call_->TryCancel();  // a checkpoint download
  return true;
}

absl::Status Agent::Register() {
  v1::RegisterWorkerRequest request;
  request.set_hostname(options_.hostname);
  request.set_pid(getpid());
  const absl::Time deadline = absl::Now() + absl::Milliseconds(options_.connect_timeout_ms);
  v1::RegisterWorkerResponse response;
  const absl::Status status = CallWithRetry(
      BackoffOptions{absl::Milliseconds(100), absl::Seconds(2)},
      [&] {
        return CallFromRunThread(
            std::min(deadline, absl::Now() + absl::Milliseconds(options_.rpc_timeout_ms)),
            [&](grpc::ClientContext* context) {
              return FromGrpcStatus(stub_->RegisterWorker(context, request, &response));
            });
      },
      [&](absl::Duration delay) {
        return absl::Now() + delay <= deadline && !SleepInterrupted(delay);
      });
  if (status.ok()) {
    absl::MutexLock lock(&mu_);
    worker_id_ = response.worker_id();
    heartbeat_interval_ = absl::Milliseconds(std::max(100, response.heartbeat_interval_ms()));
    Log(absl::StrCat("registered as ", worker_id_, " with the coordinator at ",
                     options_.coordinator_address));
    return absl::OkStatus();
  }
  if (IsTransient(status)) {
    return absl::UnavailableError(
        absl::StrCat("cannot reach the coordinator at ", options_.coordinator_address, " within ",
                     options_.connect_timeout_ms / 1000.0, " s: ", status.message()));
  }
  return absl::Status(status.code(),
                      absl::StrCat("registration refused by the coordinator at ",
                                   options_.coordinator_address, ": ", status.message()));
}

absl::Status Agent::Run() {
  if (auto s = Register(); !s.ok()) {
    absl::MutexLock lock(&mu_);
    return stopping_ ? absl::OkStatus() : s;  // stopped while registering
  }
  std::thread heartbeat([this] { HeartbeatLoop(); });
  std::string refusal;  // the last refused_reason logged
  while (true) {
    std::string worker_id;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
      worker_id = worker_id_;
    }
    v1::LeaseTrialRequest request;
    request.set_worker_id(worker_id);
    v1::LeaseTrialResponse response;
    const absl::Status status = CallWithRetry(
        BackoffOptions{},
        [&] {
          return CallFromRunThread(
              absl::Now() + absl::Milliseconds(options_.rpc_timeout_ms),
              [&](grpc::ClientContext* context) {
                return FromGrpcStatus(stub_->LeaseTrial(context, request, &response));
              });
        },
        [&](absl::Duration delay) { return !SleepInterrupted(delay); });
    if (!status.ok()) {
      if (status.code() == absl::StatusCode::kCancelled) continue;  // Stop()
      if (status.code() == absl::StatusCode::kNotFound) {
        Log("the coordinator does not know this worker any more; registering again");
        if (auto s = Register(); !s.ok()) {
          Log(std::string(s.message()));
          SleepInterrupted(absl::Seconds(1));
        }
      } else if (!IsTransient(status)) {
        Log(absl::StrCat("lease refused: ", status.ToString()));
        SleepInterrupted(absl::Seconds(1));
      }
      continue;
    }
    if (!response.granted()) {
      if (response.refused_reason() != refusal) {
        refusal = response.refused_reason();
        Log(refusal.empty()
                ? std::string("the coordinator leases trials to this worker again")
                : absl::StrCat("the coordinator gives this worker no trials: ", refusal));
      }
      // A gang may be waiting for this worker: idle means nothing pending.
      if (options_.exit_when_idle && !response.trials_pending()) break;
      SleepInterrupted(absl::Milliseconds(std::max(50, response.retry_after_ms())));
      continue;
    }
    RunAttempt(response.trial(), worker_id);
  }
  {
    absl::MutexLock lock(&mu_);
    run_done_ = true;
    // A heartbeat waiting for an unreachable coordinator must not hold us.
    if (heartbeat_call_ != nullptr) heartbeat_call_->TryCancel();
  }
  heartbeat.join();
  return absl::OkStatus();
}

void Agent::RunAttempt(const v1::TrialAssignment& trial, const std::string& worker_id) {
  const AttemptKey key{trial.trial_id(), trial.attempt()};
  const int world_size = std::max(1, trial.world_size());
  const int rank = world_size > 1 ? trial.rank() : 0;
  const std::filesystem::path dir =
      AttemptDirectory(options_.work_dir, key.trial_id, key.attempt, rank, world_size);
  outbox_.Open(key, worker_id);
  {
    absl::MutexLock lock(&mu_);
    current_ = CurrentAttempt{};
    current_.active = true;
    current_.key = key;
  }
  Log(absl::StrCat(Name(key),
                   world_size > 1 ? absl::StrCat(" (rank ", rank, " of ", world_size, ")") : "",
                   " in ", dir.string()));

  std::optional<AttemptEnd> end;
  if (absl::Status s = PrepareAttemptDirectory(dir, trial.config_yaml()); !s.ok()) {
    end = AttemptEnd{false, v1::FAILURE_CRASH,
                     absl::StrCat("cannot prepare the trial directory: ", s.message())};
  }
  Fetch fetch = Fetch::kReady;
  if (!end && trial.checkpoint_epoch() >= 0) {
    fetch = FetchCheckpoint(trial, worker_id, dir.string());
  }
  if (fetch == Fetch::kStale) {
    outbox_.Drop(key, "the coordinator refused its checkpoint download");
  } else if (fetch == Fetch::kStopping) {
    end = AttemptEndFor(ExitStatus{}, /*worker_stopping=*/true, "");
  }

  bool run = !end && fetch == Fetch::kReady;
  if (run) {
    absl::MutexLock lock(&mu_);
    if (current_.stop_requested) {
      run = false;
    } else if (stopping_) {  // Stop() right after the lease: hand it back
      run = false;
      end = AttemptEndFor(ExitStatus{}, /*worker_stopping=*/true, "");
    }
  }
  // Rank 0 listens on a free port (0) of the address the others will use.
  std::string master = absl::StrCat(advertise_address_, ":0");
  if (run && rank > 0) {
    const absl::StatusOr<v1::Rendezvous> rendezvous = WaitForRendezvous(key, worker_id);
    bool stopping = false;
    bool stop_requested = false;
    {
      absl::MutexLock lock(&mu_);
      stopping = stopping_;
      stop_requested = current_.stop_requested;
    }
    if (stopping) {
      run = false;
      end = AttemptEndFor(ExitStatus{}, /*worker_stopping=*/true, "");
    } else if (stop_requested) {
      run = false;  // by a heartbeat answer: nothing to report
    } else if (rendezvous.ok()) {
      master = absl::StrCat(rendezvous->master_address(), ":", rendezvous->master_port());
      Log(absl::StrCat(Name(key), ": rank 0's rendezvous is at ", master));
    } else if (IsStaleAttempt(rendezvous.status())) {
      run = false;
      Log(absl::StrCat(Name(key), " is no longer this worker's: ", rendezvous.status().message()));
      outbox_.Drop(key, "the coordinator refused its rendezvous poll");
    } else {
      run = false;
      end = AttemptEnd{false, v1::FAILURE_PEER_LOST,
                       rendezvous.status().code() == absl::StatusCode::kDeadlineExceeded
                           ? std::string(rendezvous.status().message())
                           : absl::StrCat("cannot fetch rank 0's rendezvous: ",
                                          rendezvous.status().ToString())};
    }
  }
  if (run) {
    const std::string log_path = (dir / "train.log").string();
    SubprocessOptions spawn;
    spawn.argv = TrainerArgv(TrainerCommand{options_.trainer_path, dir.string(),
                                            options_.trainer_threads, world_size, rank, master,
                                            advertise_address_});
    spawn.capture_stdout = true;
    spawn.stderr_file = log_path;
    absl::StatusOr<std::unique_ptr<TrainerProcess>> trainer =
        TrainerProcess::Start(spawn, absl::Milliseconds(options_.kill_grace_ms));
    if (!trainer.ok()) {
      end = AttemptEnd{false, v1::FAILURE_CRASH,
                       absl::StrCat("cannot start the trainer: ", trainer.status().message())};
    } else {
      {
        absl::MutexLock lock(&mu_);
        current_.trainer = trainer->get();
        // A stop that came while it started.
        if (Interrupted()) current_.trainer->Stop();
      }
      RelayOutput(key, rank, dir.string(), **trainer);
      const ExitStatus exit = (*trainer)->Wait();
      bool stopping = false;
      {
        absl::MutexLock lock(&mu_);
        current_.trainer = nullptr;
        stopping = stopping_;
      }
      end = AttemptEndFor(exit, stopping, LastLineOfFile(log_path));
      if (rank > 0 && end->finished) {
        Log(absl::StrCat(Name(key), ": rank ", rank, " finished; rank 0 reports the trial's end"));
        end.reset();
      }
    }
  }

  bool stopped_by_coordinator = false;
  {
    absl::MutexLock lock(&mu_);
    stopped_by_coordinator = current_.stop_requested;
  }
  // After a stop by the coordinator the attempt is not ours to report; the
  // outbox ignores an end queued after it turned stale on its own thread.
  if (end && !stopped_by_coordinator) {
    if (end->finished) {
      outbox_.AddFinish(key);
    } else {
      outbox_.AddFail(key, end->kind, end->reason);
    }
  }
  const Outbox::AttemptResult result = outbox_.WaitUntilSettled(key);
  {
    absl::MutexLock lock(&mu_);
    current_ = CurrentAttempt{};
  }
  RemoveCheckpointLinks(dir);
  switch (result.settlement) {
    case Outbox::Settlement::kAcknowledged:
      if (!end) break;
      if (end->finished) {
        Log(absl::StrCat(Name(key), " succeeded"));
      } else {
        Log(absl::StrCat(Name(key), " failed (", v1::FailureKind_Name(end->kind), ", ",
                         result.will_retry ? "to be retried" : "not retried", "): ", end->reason));
      }
      break;
    case Outbox::Settlement::kStale:
    case Outbox::Settlement::kStopped:
      Log(absl::StrCat(Name(key), " stopped at the coordinator's request: ", result.reason));
      break;
    case Outbox::Settlement::kGaveUp:
      Log(absl::StrCat(Name(key), ": its reports were not all delivered (", result.reason,
                       "); its lease will expire at the coordinator"));
      break;
  }
}

Agent::Fetch Agent::FetchCheckpoint(const v1::TrialAssignment& trial, const std::string& worker_id,
                                    const std::string& dir) {
  v1::DownloadCheckpointRequest request;
  request.set_worker_id(worker_id);
  request.set_trial_id(trial.trial_id());
  request.set_attempt(trial.attempt());
  const std::string path = (std::filesystem::path(dir) / "checkpoint.pt").string();
  absl::StatusOr<DownloadedCheckpoint> downloaded;
  const absl::Status status = CallWithRetry(
      BackoffOptions{},
      [&] {
        return CallFromRunThread(absl::Now() + absl::Milliseconds(options_.transfer_timeout_ms),
                                 [&](grpc::ClientContext* context) {
                                   downloaded = DownloadCheckpoint(*stub_, context, request, path);
                                   return downloaded.status();
                                 });
      },
      [&](absl::Duration delay) { return !SleepInterrupted(delay); });
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return Fetch::kStopping;
    // Stopped by the coordinator while downloading: nothing to report.
    if (current_.stop_requested) return Fetch::kStale;
  }
  if (status.ok()) {
    Log(absl::StrCat("resuming trial ", trial.trial_id(),
                     " from the coordinator's checkpoint at epoch ", downloaded->epoch, " (",
                     downloaded->bytes, " bytes)"));
    return Fetch::kReady;
  }
  if (status.code() == absl::StatusCode::kFailedPrecondition) {
    Log(absl::StrCat("trial ", trial.trial_id(), " attempt ", trial.attempt(),
                     " is no longer this worker's: ", status.message()));
    return Fetch::kStale;
  }
  if (IsTransient(status)) return Fetch::kStopping;
  Log(absl::StrCat("trial ", trial.trial_id(),
                   ": cannot fetch the coordinator's checkpoint at epoch ",
                   trial.checkpoint_epoch(), " (", status.ToString(), "); starting afresh"));
  return Fetch::kReady;
}

absl::StatusOr<v1::Rendezvous> Agent::WaitForRendezvous(const AttemptKey& key,
                                                        const std::string& worker_id) {
  Log(absl::StrCat(Name(key), ": waiting for rank 0's rendezvous"));
  v1::GetRendezvousRequest request;
  request.set_worker_id(worker_id);
  request.set_trial_id(key.trial_id);
  request.set_attempt(key.attempt);
  RendezvousWaitOptions wait;
  wait.timeout = absl::Milliseconds(options_.rendezvous_timeout_ms);
  wait.poll = [&](v1::GetRendezvousResponse* response) {
    return CallFromRunThread(absl::Now() + absl::Milliseconds(options_.rpc_timeout_ms),
                             [&](grpc::ClientContext* context) {
                               return FromGrpcStatus(
                                   stub_->GetRendezvous(context, request, response));
                             });
  };
  wait.sleep = [this](absl::Duration delay) { return !SleepInterrupted(delay); };
  return AwaitRendezvous(wait);
}

void Agent::RelayOutput(const AttemptKey& key, int rank, const std::string& dir,
                        TrainerProcess& trainer) {
  TrainerOutputParser parser;
  std::string line;
  while (trainer.ReadLine(&line)) {
    if (rank > 0) continue;  // the trial's reports are rank 0's
    absl::StatusOr<TrainerEvent> event = parser.Consume(line);
    if (!event.ok()) {
      Log(absl::StrCat(Name(key), ": ignoring ", event.status().message()));
      continue;
    }
    switch (event->kind) {
      case TrainerEvent::Kind::kEpochMetrics:
        outbox_.AddMetrics(key, event->epoch, event->metrics);
        break;
      case TrainerEvent::Kind::kRendezvous: {
        v1::Rendezvous rendezvous;
        rendezvous.set_master_address(advertise_address_);
        rendezvous.set_master_port(event->port);
        outbox_.AddRendezvous(key, rendezvous);
        break;
      }
      case TrainerEvent::Kind::kCheckpointSaved:
        outbox_.AddCheckpoint(key, event->epoch,
                              (std::filesystem::path(dir) / event->path).string());
        break;
      case TrainerEvent::Kind::kNone:
        break;
    }
  }
}

void Agent::HeartbeatLoop() {
  absl::Time next = absl::Now();
  bool quarantined = false;
  std::string last_error;  // logged once until it changes
  while (true) {
    v1::HeartbeatRequest request;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithDeadline(absl::Condition(&run_done_), next);
      if (run_done_) return;
      next = absl::Now() + heartbeat_interval_;
      request.set_worker_id(worker_id_);
      if (current_.active) request.add_running_trial_ids(current_.key.trial_id);
    }
    v1::HeartbeatResponse response;
    grpc::ClientContext context;
    PrepareCall(&context, absl::Now() + absl::Milliseconds(options_.rpc_timeout_ms));
    {
      absl::MutexLock lock(&mu_);
      if (run_done_) return;
      heartbeat_call_ = &context;
    }
    const absl::Status status = FromGrpcStatus(stub_->Heartbeat(&context, request, &response));
    {
      absl::MutexLock lock(&mu_);
      heartbeat_call_ = nullptr;
    }
    if (!status.ok()) {
      // CANCELLED: the agent cut the call short because it is stopping.
      if (!IsTransient(status) && !absl::IsCancelled(status) &&
          status.ToString() != last_error) {
        last_error = status.ToString();
        Log(absl::StrCat("heartbeat refused: ", last_error));
      }
      continue;
    }
    last_error.clear();
    if (response.quarantined() != quarantined) {
      quarantined = response.quarantined();
      Log(quarantined ? "this worker is quarantined by the coordinator: it gets no new trials "
                        "until released"
                      : "this worker is no longer quarantined");
    }
    for (int64_t trial_id : response.stop_trial_ids()) {
      AttemptKey key;
      {
        absl::MutexLock lock(&mu_);
        if (!current_.active || current_.key.trial_id != trial_id) continue;
        key = current_.key;
      }
      if (StopAttempt(key)) {
        Log(absl::StrCat(Name(key), ": stopping at the coordinator's request"));
        outbox_.Drop(key, "the coordinator asked this worker to stop it");
      }
    }
  }
}

}  // namespace sslsweep
