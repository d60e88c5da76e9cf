#include "worker/agent/agent.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"

namespace sslsweep {
namespace {

int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Failures worth retrying: the coordinator restarting, a network blip, load.
bool IsTransient(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::ABORTED:
      return true;
    default:
      return false;
  }
}

// The last non-empty line of a log file (its last 4 KiB), for failure reasons.
std::string LastLogLine(const std::string& path) {
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

void Log(const std::string& message) { std::cerr << "sslsweep-worker: " << message << "\n"; }

}  // namespace

Agent::Agent(AgentOptions options, std::unique_ptr<v1::WorkerService::StubInterface> stub)
    : options_(std::move(options)), stub_(std::move(stub)) {}

Agent::~Agent() = default;

template <typename Call>
grpc::Status Agent::CallWithRetry(Call rpc) {
  int64_t backoff_ms = 100;
  while (true) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(options_.rpc_timeout_ms));
    grpc::Status status = rpc(&context);
    if (!IsTransient(status)) return status;
    if (SleepUnlessStopped(backoff_ms)) return status;
    backoff_ms = std::min<int64_t>(backoff_ms * 2, 5000);
  }
}

bool Agent::SleepUnlessStopped(int64_t ms) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Milliseconds(ms));
  return stopping_;
}

void Agent::Stop() {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  stopping_ = true;
  if (running_.child != nullptr) {
    running_.child->Signal(SIGTERM);
    running_.stop_requested_ms = SteadyNowMs();
  }
}

absl::Status Agent::Register() {
  v1::RegisterWorkerRequest request;
  request.set_hostname(options_.hostname);
  request.set_pid(getpid());
  const int64_t deadline = SteadyNowMs() + options_.connect_timeout_ms;
  int64_t backoff_ms = 100;
  while (true) {
    v1::RegisterWorkerResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(options_.rpc_timeout_ms));
    grpc::Status status = stub_->RegisterWorker(&context, request, &response);
    if (status.ok()) {
      absl::MutexLock lock(&mu_);
      worker_id_ = response.worker_id();
      heartbeat_interval_ms_ = std::max(100, response.heartbeat_interval_ms());
      Log(absl::StrCat("registered as ", worker_id_, " with the coordinator at ",
                       options_.coordinator_address));
      return absl::OkStatus();
    }
    if (!IsTransient(status)) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          absl::StrCat("registration refused by the coordinator at ",
                                       options_.coordinator_address, ": ",
                                       status.error_message()));
    }
    if (SteadyNowMs() + backoff_ms > deadline || SleepUnlessStopped(backoff_ms)) {
      return absl::UnavailableError(absl::StrCat(
          "cannot reach the coordinator at ", options_.coordinator_address, " within ",
          options_.connect_timeout_ms / 1000.0, " s: ", status.error_message()));
    }
    backoff_ms = std::min<int64_t>(backoff_ms * 2, 2000);
  }
}

absl::Status Agent::Run() {
  if (auto s = Register(); !s.ok()) return s;
  std::thread heartbeat([this] { HeartbeatLoop(); });
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
    grpc::Status status = CallWithRetry([&](grpc::ClientContext* context) {
      return stub_->LeaseTrial(context, request, &response);
    });
    if (!status.ok()) {
      if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
        Log("the coordinator does not know this worker any more; registering again");
        if (auto s = Register(); !s.ok()) Log(std::string(s.message()));
      } else if (!IsTransient(status)) {
        Log(absl::StrCat("lease refused: ", status.error_message()));
      }
      SleepUnlessStopped(1000);
      continue;
    }
    if (!response.granted()) {
      if (options_.exit_when_idle) break;
      SleepUnlessStopped(std::max(50, response.retry_after_ms()));
      continue;
    }
    RunTrial(response.trial());
  }
  {
    absl::MutexLock lock(&mu_);
    run_done_ = true;
  }
  heartbeat.join();
  return absl::OkStatus();
}

void Agent::RunTrial(const v1::TrialAssignment& trial) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(options_.work_dir) /
                       absl::StrCat("trial-", trial.trial_id()) /
                       absl::StrCat("attempt-", trial.attempt());
  const std::string config_path = (dir / "trial.yaml").string();
  const std::string log_path = (dir / "train.log").string();
  Log(absl::StrCat("trial ", trial.trial_id(), " attempt ", trial.attempt(), " in ",
                   dir.string()));

  std::error_code error;
  fs::create_directories(dir, error);
  std::ofstream(config_path) << trial.config_yaml();
  SubprocessOptions spawn;
  spawn.argv = {options_.trainer_path, "--config", config_path, "--out", dir.string()};
  if (options_.trainer_threads > 0) {
    spawn.argv.insert(spawn.argv.end(),
                      {"--threads", std::to_string(options_.trainer_threads)});
  }
  spawn.capture_stdout = true;
  spawn.stderr_file = log_path;
  absl::StatusOr<std::unique_ptr<Subprocess>> child =
      error ? absl::InternalError(absl::StrCat(dir.string(), ": ", error.message()))
            : Subprocess::Spawn(spawn);
  if (!child.ok()) {
    v1::FailTrialRequest fail;
    fail.set_trial_id(trial.trial_id());
    fail.set_attempt(trial.attempt());
    fail.set_reason(absl::StrCat("cannot start the trainer: ", child.status().message()));
    {
      absl::MutexLock lock(&mu_);
      fail.set_worker_id(worker_id_);
    }
    v1::FailTrialResponse ignored;
    CallWithRetry([&](grpc::ClientContext* c) { return stub_->FailTrial(c, fail, &ignored); });
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    running_ = RunningTrial{trial.trial_id(), trial.attempt(), child->get()};
    if (stopping_) child->get()->Signal(SIGTERM);
  }

  // Values are gathered per epoch and sent at the epoch's end marker; a
  // partial epoch (the trainer died mid-way) is never sent.
  std::map<int32_t, std::map<std::string, double>> pending;
  bool still_ours = true;
  std::string line;
  while ((*child)->ReadLine(&line)) {
    nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!record.is_object() || !record.contains("epoch") ||
        !record["epoch"].is_number_integer()) {
      Log(absl::StrCat("trial ", trial.trial_id(), ": ignoring a line that is not a metric: ",
                       line.substr(0, 200)));
      continue;
    }
    const int32_t epoch = record["epoch"].get<int32_t>();
    if (record.value("event", "") == "epoch_end") {
      if (still_ours && !pending[epoch].empty() &&
          !SendMetrics(trial, epoch, pending[epoch])) {
        still_ours = false;
        (*child)->Signal(SIGKILL);
      }
      pending.erase(epoch);
    } else if (record.contains("name") && record["name"].is_string() &&
               record.contains("value") && record["value"].is_number()) {
      pending[epoch][record["name"].get<std::string>()] = record["value"].get<double>();
    }
  }
  const ExitStatus exit = (*child)->Wait();
  bool cancelled = false;
  {
    absl::MutexLock lock(&mu_);
    cancelled = running_.stop_requested;
    running_ = RunningTrial{};
  }
  if (!still_ours || cancelled) {
    Log(absl::StrCat("trial ", trial.trial_id(), " attempt ", trial.attempt(),
                     " stopped at the coordinator's request"));
    return;
  }
  ReportEnd(trial, exit, log_path);
}

bool Agent::SendMetrics(const v1::TrialAssignment& trial, int32_t epoch,
                        const std::map<std::string, double>& metrics) {
  v1::ReportMetricsRequest request;
  {
    absl::MutexLock lock(&mu_);
    request.set_worker_id(worker_id_);
  }
  request.set_trial_id(trial.trial_id());
  request.set_attempt(trial.attempt());
  request.set_epoch(epoch);
  for (const auto& [name, value] : metrics) {
    v1::Metric* m = request.add_metrics();
    m->set_name(name);
    m->set_value(value);
  }
  v1::ReportMetricsResponse response;
  grpc::Status status = CallWithRetry([&](grpc::ClientContext* context) {
    return stub_->ReportMetrics(context, request, &response);
  });
  if (status.ok()) return true;
  Log(absl::StrCat("trial ", trial.trial_id(), " epoch ", epoch,
                   " metrics not accepted: ", status.error_message()));
  return status.error_code() != grpc::StatusCode::FAILED_PRECONDITION &&
         status.error_code() != grpc::StatusCode::NOT_FOUND;
}

void Agent::ReportEnd(const v1::TrialAssignment& trial, const ExitStatus& exit,
                      const std::string& log_path) {
  std::string worker_id;
  bool stopping = false;
  {
    absl::MutexLock lock(&mu_);
    worker_id = worker_id_;
    stopping = stopping_;
  }
  grpc::Status status;
  if (exit.success() && !stopping) {
    v1::FinishTrialRequest request;
    request.set_worker_id(worker_id);
    request.set_trial_id(trial.trial_id());
    request.set_attempt(trial.attempt());
    v1::FinishTrialResponse response;
    status = CallWithRetry([&](grpc::ClientContext* context) {
      return stub_->FinishTrial(context, request, &response);
    });
    Log(absl::StrCat("trial ", trial.trial_id(), " succeeded"));
  } else {
    std::string reason =
        stopping ? std::string("the worker was stopped while the trial ran")
                 : absl::StrCat("sslsweep-train ", exit.Describe());
    const std::string last = LastLogLine(log_path);
    if (!stopping && !last.empty()) absl::StrAppend(&reason, ": ", last);
    v1::FailTrialRequest request;
    request.set_worker_id(worker_id);
    request.set_trial_id(trial.trial_id());
    request.set_attempt(trial.attempt());
    request.set_reason(reason);
    v1::FailTrialResponse response;
    status = CallWithRetry([&](grpc::ClientContext* context) {
      return stub_->FailTrial(context, request, &response);
    });
    Log(absl::StrCat("trial ", trial.trial_id(), " failed: ", reason));
  }
  if (!status.ok()) {
    Log(absl::StrCat("trial ", trial.trial_id(), ": outcome not recorded: ",
                     status.error_message()));
  }
}

void Agent::HeartbeatLoop() {
  int64_t next_heartbeat_ms = 0;
  while (true) {
    v1::HeartbeatRequest request;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&run_done_), absl::Milliseconds(250));
      if (run_done_) return;
      const int64_t now = SteadyNowMs();
      // A child asked to stop that has not within the grace period is killed.
      if (running_.child != nullptr && running_.stop_requested_ms != 0 &&
          now - running_.stop_requested_ms > options_.kill_grace_ms) {
        running_.child->Signal(SIGKILL);
      }
      if (now < next_heartbeat_ms) continue;
      next_heartbeat_ms = now + heartbeat_interval_ms_;
      request.set_worker_id(worker_id_);
      if (running_.child != nullptr) request.add_running_trial_ids(running_.trial_id);
    }
    v1::HeartbeatResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(options_.rpc_timeout_ms));
    grpc::Status status = stub_->Heartbeat(&context, request, &response);
    if (!status.ok()) {
      if (!IsTransient(status)) Log(absl::StrCat("heartbeat: ", status.error_message()));
      continue;
    }
    absl::MutexLock lock(&mu_);
    for (int64_t id : response.stop_trial_ids()) {
      if (running_.child != nullptr && running_.trial_id == id && !running_.stop_requested) {
        Log(absl::StrCat("trial ", id, ": stopping at the coordinator's request"));
        running_.stop_requested = true;
        running_.stop_requested_ms = SteadyNowMs();
        running_.child->Signal(SIGTERM);
      }
    }
  }
}

}  // namespace sslsweep
