// A fake coordinator for the worker agent's tests: a real gRPC server on
// 127.0.0.1 whose WorkerService records every call (FakeState) and injects
// faults, restartable on the same port with the same state; and a fake
// trainer script, so that agent tests need no LibTorch.
//
// The fake's rendezvous: ReportRendezvous sets the rendezvous of its
// (trial, attempt), which GetRendezvous then answers as ready; a test may
// also set one directly, as if another worker's rank 0 had reported it.
//
// Thread contract: FakeState is guarded by its mu; the gRPC handlers run on
// the server's threads.

#ifndef SSLSWEEP_TESTS_AGENT_TEST_UTIL_H_
#define SSLSWEEP_TESTS_AGENT_TEST_UTIL_H_

#include <algorithm>
#include <filesystem>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/sslsweep.grpc.pb.h"
#include "tests/test_util.h"
#include "worker/agent/agent.h"
#include "worker/agent/checkpoint_transfer.h"
#include "worker/agent/coordinator_connection.h"

namespace sslsweep {

// What the fake coordinator knows and does; outlives server restarts.
struct FakeState {
  struct Report {
    int64_t trial_id;
    int32_t attempt;
    int32_t epoch;
    std::map<std::string, double> metrics;
  };
  struct Upload {
    int64_t trial_id;
    int32_t epoch;
    std::string data;
    bool size_and_crc_match;
  };
  struct Fail {
    int64_t trial_id;
    v1::FailureKind kind;
    std::string reason;
  };
  struct RendezvousReport {
    std::string worker_id;
    int64_t trial_id;
    int32_t attempt;
    std::string address;
    int32_t port;
  };
  struct RendezvousPoll {
    std::string worker_id;
    int64_t trial_id;
    int32_t attempt;
    absl::Time at;
  };
  using AttemptId = std::pair<int64_t, int32_t>;  // (trial, attempt)

  absl::Mutex mu;
  // Knobs.
  std::deque<v1::TrialAssignment> to_lease ABSL_GUARDED_BY(mu);
  std::set<int> unavailable_report_calls ABSL_GUARDED_BY(mu);  // 1-based
  // Answers ReportMetrics once the rows are "stored"; null: OK.
  std::function<grpc::Status(const v1::ReportMetricsRequest&, v1::ReportMetricsResponse*)>
      report_answer ABSL_GUARDED_BY(mu);
  bool reports_blocked ABSL_GUARDED_BY(mu) = false;         // ReportMetrics waits meanwhile
  std::set<int64_t> stop_when_running ABSL_GUARDED_BY(mu);  // told in heartbeats
  bool quarantined ABSL_GUARDED_BY(mu) = false;
  std::string refused_reason ABSL_GUARDED_BY(mu);
  // Refused leases still to answer with trials_pending (a gang forming).
  int pending_answers ABSL_GUARDED_BY(mu) = 0;
  grpc::Status download_status ABSL_GUARDED_BY(mu);  // not OK: the answer
  std::string download_data ABSL_GUARDED_BY(mu);
  int32_t download_epoch ABSL_GUARDED_BY(mu) = 0;
  bool corrupt_download_crc ABSL_GUARDED_BY(mu) = false;
  // Set: GetRendezvous answers ready with it.
  std::map<AttemptId, v1::Rendezvous> rendezvous ABSL_GUARDED_BY(mu);
  int32_t rendezvous_retry_after_ms ABSL_GUARDED_BY(mu) = 10;  // while not ready
  grpc::Status report_rendezvous_status ABSL_GUARDED_BY(mu);  // not OK: the answer
  grpc::Status get_rendezvous_status ABSL_GUARDED_BY(mu);     // not OK: the answer
  // Records.
  int report_calls ABSL_GUARDED_BY(mu) = 0;
  int lease_calls ABSL_GUARDED_BY(mu) = 0;
  int download_calls ABSL_GUARDED_BY(mu) = 0;
  std::vector<Report> reports ABSL_GUARDED_BY(mu);  // stored (answered OK)
  std::vector<Upload> uploads ABSL_GUARDED_BY(mu);
  std::vector<int64_t> finishes ABSL_GUARDED_BY(mu);
  std::vector<Fail> fails ABSL_GUARDED_BY(mu);
  std::vector<std::string> events ABSL_GUARDED_BY(mu);            // acknowledged calls, in order
  std::vector<std::set<int64_t>> heartbeats ABSL_GUARDED_BY(mu);  // running ids
  std::vector<RendezvousReport> rendezvous_reports ABSL_GUARDED_BY(mu);  // answered OK
  std::vector<RendezvousPoll> rendezvous_polls ABSL_GUARDED_BY(mu);      // every call
};

class FakeWorkerService final : public v1::WorkerService::Service {
 public:
  explicit FakeWorkerService(FakeState* state) : s_(state) {}

  grpc::Status RegisterWorker(grpc::ServerContext*, const v1::RegisterWorkerRequest*,
                              v1::RegisterWorkerResponse* response) override {
    response->set_worker_id("w1");
    response->set_heartbeat_interval_ms(100);
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override {
    absl::MutexLock lock(&s_->mu);
    s_->heartbeats.emplace_back(request->running_trial_ids().begin(),
                                request->running_trial_ids().end());
    for (int64_t id : request->running_trial_ids()) {
      if (s_->stop_when_running.count(id)) response->add_stop_trial_ids(id);
    }
    response->set_quarantined(s_->quarantined);
    return grpc::Status::OK;
  }

  grpc::Status LeaseTrial(grpc::ServerContext*, const v1::LeaseTrialRequest*,
                          v1::LeaseTrialResponse* response) override {
    absl::MutexLock lock(&s_->mu);
    ++s_->lease_calls;
    if (s_->to_lease.empty()) {
      response->set_retry_after_ms(10);
      response->set_refused_reason(s_->refused_reason);
      if (s_->pending_answers > 0) {
        --s_->pending_answers;
        response->set_trials_pending(true);
      }
      return grpc::Status::OK;
    }
    response->set_granted(true);
    *response->mutable_trial() = s_->to_lease.front();
    s_->to_lease.pop_front();
    return grpc::Status::OK;
  }

  grpc::Status ReportMetrics(grpc::ServerContext*, const v1::ReportMetricsRequest* request,
                             v1::ReportMetricsResponse* response) override {
    absl::MutexLock lock(&s_->mu);
    s_->mu.Await(absl::Condition(
        +[](bool* blocked) { return !*blocked; }, &s_->reports_blocked));
    const int call = ++s_->report_calls;
    if (s_->unavailable_report_calls.count(call)) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "injected");
    }
    if (s_->report_answer) {
      grpc::Status status = s_->report_answer(*request, response);
      if (!status.ok()) return status;
    }
    FakeState::Report report{request->trial_id(), request->attempt(), request->epoch(), {}};
    for (const v1::Metric& m : request->metrics()) report.metrics[m.name()] = m.value();
    s_->reports.push_back(report);
    s_->events.push_back(absl::StrCat("report ", request->trial_id(), " e", request->epoch()));
    return grpc::Status::OK;
  }

  grpc::Status FinishTrial(grpc::ServerContext*, const v1::FinishTrialRequest* request,
                           v1::FinishTrialResponse*) override {
    absl::MutexLock lock(&s_->mu);
    s_->finishes.push_back(request->trial_id());
    s_->events.push_back(absl::StrCat("finish ", request->trial_id()));
    return grpc::Status::OK;
  }

  grpc::Status FailTrial(grpc::ServerContext*, const v1::FailTrialRequest* request,
                         v1::FailTrialResponse* response) override {
    absl::MutexLock lock(&s_->mu);
    s_->fails.push_back({request->trial_id(), request->kind(), request->reason()});
    s_->events.push_back(absl::StrCat("fail ", request->trial_id()));
    response->set_will_retry(request->kind() == v1::FAILURE_CRASH ||
                             request->kind() == v1::FAILURE_PEER_LOST);
    return grpc::Status::OK;
  }

  grpc::Status UploadCheckpoint(grpc::ServerContext*,
                                grpc::ServerReader<v1::CheckpointChunk>* reader,
                                v1::UploadCheckpointResponse* response) override {
    v1::CheckpointChunk chunk;
    FakeState::Upload upload{};
    int64_t total = -1;
    uint32_t crc = 0;
    while (reader->Read(&chunk)) {
      if (total < 0) {
        upload.trial_id = chunk.trial_id();
        upload.epoch = chunk.epoch();
        total = chunk.total_bytes();
        crc = chunk.crc32();
      }
      EXPECT_LE(chunk.data().size(), kCheckpointChunkBytes);
      upload.data += chunk.data();
    }
    upload.size_and_crc_match =
        static_cast<int64_t>(upload.data.size()) == total && CheckpointCrc32(0, upload.data) == crc;
    response->set_bytes(static_cast<int64_t>(upload.data.size()));
    absl::MutexLock lock(&s_->mu);
    s_->uploads.push_back(upload);
    s_->events.push_back(absl::StrCat("upload ", upload.trial_id, " e", upload.epoch));
    return grpc::Status::OK;
  }

  grpc::Status DownloadCheckpoint(grpc::ServerContext*,
                                  const v1::DownloadCheckpointRequest* request,
                                  grpc::ServerWriter<v1::CheckpointChunk>* writer) override {
    std::string data;
    v1::CheckpointChunk chunk;
    {
      absl::MutexLock lock(&s_->mu);
      ++s_->download_calls;
      if (!s_->download_status.ok()) return s_->download_status;
      data = s_->download_data;
      chunk.set_epoch(s_->download_epoch);
      chunk.set_crc32(CheckpointCrc32(0, data) ^ (s_->corrupt_download_crc ? 1 : 0));
    }
    chunk.set_trial_id(request->trial_id());
    chunk.set_attempt(request->attempt());
    chunk.set_total_bytes(static_cast<int64_t>(data.size()));
    for (size_t at = 0; at < data.size(); at += kCheckpointChunkBytes) {
      chunk.set_data(data.substr(at, kCheckpointChunkBytes));
      writer->Write(chunk);
      chunk.clear_total_bytes();
      chunk.clear_crc32();
    }
    return grpc::Status::OK;
  }

  grpc::Status ReportRendezvous(grpc::ServerContext*, const v1::ReportRendezvousRequest* request,
                                v1::ReportRendezvousResponse*) override {
    absl::MutexLock lock(&s_->mu);
    if (!s_->report_rendezvous_status.ok()) return s_->report_rendezvous_status;
    s_->rendezvous_reports.push_back({request->worker_id(), request->trial_id(),
                                      request->attempt(), request->rendezvous().master_address(),
                                      request->rendezvous().master_port()});
    s_->rendezvous[{request->trial_id(), request->attempt()}] = request->rendezvous();
    s_->events.push_back(absl::StrCat("rendezvous ", request->trial_id()));
    return grpc::Status::OK;
  }

  grpc::Status GetRendezvous(grpc::ServerContext*, const v1::GetRendezvousRequest* request,
                             v1::GetRendezvousResponse* response) override {
    absl::MutexLock lock(&s_->mu);
    s_->rendezvous_polls.push_back(
        {request->worker_id(), request->trial_id(), request->attempt(), absl::Now()});
    if (!s_->get_rendezvous_status.ok()) return s_->get_rendezvous_status;
    auto ready = s_->rendezvous.find({request->trial_id(), request->attempt()});
    if (ready == s_->rendezvous.end()) {
      response->set_retry_after_ms(s_->rendezvous_retry_after_ms);
      return grpc::Status::OK;
    }
    response->set_ready(true);
    *response->mutable_rendezvous() = ready->second;
    return grpc::Status::OK;
  }

 private:
  FakeState* const s_;
};

// A FakeWorkerService on loopback. Shutdown() and Start(port()) restart it on
// the same port with the same state.
class FakeCoordinator {
 public:
  FakeCoordinator() { Start(0); }
  ~FakeCoordinator() { Shutdown(); }

  void Start(int port) {
    service_ = std::make_unique<FakeWorkerService>(&state);
    grpc::ServerBuilder builder;
    builder.AddListeningPort(absl::StrCat("127.0.0.1:", port), grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }
  void Shutdown() {
    if (server_ == nullptr) return;
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
    server_->Wait();
    server_.reset();
  }
  int port() const { return port_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  std::unique_ptr<v1::WorkerService::StubInterface> NewStub() const {
    return v1::WorkerService::NewStub(MakeCoordinatorChannel(address()));
  }

  FakeState state;

 private:
  std::unique_ptr<FakeWorkerService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// Thread-safe collected log lines.
class LogSink {
 public:
  std::function<void(const std::string&)> Function() {
    return [this](const std::string& line) {
      absl::MutexLock lock(&mu_);
      lines_.push_back(line);
    };
  }
  bool Contains(const std::string& part) { return Count(part) > 0; }
  int Count(const std::string& part) {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(std::count_if(
        lines_.begin(), lines_.end(),
        [&](const std::string& line) { return line.find(part) != std::string::npos; }));
  }
  std::string All() {
    absl::MutexLock lock(&mu_);
    std::string all;
    for (const std::string& line : lines_) all += line + "\n";
    return all;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> lines_;
};

// Polls `condition` until it holds or `timeout` passes.
inline bool Eventually(const std::function<bool()>& condition,
                       absl::Duration timeout = absl::Seconds(5)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

// The fake trainer: `$2` is the configuration, `$4` the out dir; it
// records its arguments in $out/args, one a line. The trial's configuration
// is shell code using the helpers below. Given --world-size N > 1 and
// --rank 0 it first "listens" like sslsweep-train: it writes a port into
// $out/port and prints it as the rendezvous event.
inline constexpr char kFakeTrainer[] = R"(#!/bin/sh
config="$2"
out="$4"
printf '%s\n' "$@" > "$out/args"
world_size=1
rank=0
while [ $# -gt 0 ]; do
  case "$1" in
    --world-size) world_size="$2" ;;
    --rank) rank="$2" ;;
  esac
  shift
done
if [ "$world_size" -gt 1 ] && [ "$rank" = 0 ]; then
  port=$((20000 + $$ % 40000))
  echo "$port" > "$out/port"
  echo "{\"event\":\"rendezvous\",\"port\":$port}"
fi
metric() { echo "{\"epoch\":$1,\"name\":\"$2\",\"value\":$3}"; }
epoch_end() { echo "{\"epoch\":$1,\"event\":\"epoch_end\"}"; }
# checkpoint E BYTES: saves like the trainer (tmp + rename), links, announces.
checkpoint() {
  head -c "$2" /dev/urandom > "$out/checkpoint.pt.tmp"
  mv "$out/checkpoint.pt.tmp" "$out/checkpoint.pt"
  ln "$out/checkpoint.pt" "$out/checkpoint-$1.pt"
  echo "{\"epoch\":$1,\"event\":\"checkpoint\",\"path\":\"checkpoint-$1.pt\"}"
}
. "$config"
)";

inline v1::TrialAssignment Assignment(int64_t trial_id, const std::string& script,
                                      int32_t checkpoint_epoch = -1) {
  v1::TrialAssignment trial;
  trial.set_trial_id(trial_id);
  trial.set_attempt(1);
  trial.set_sweep_id(1);
  trial.set_config_yaml(script);
  trial.set_epochs(3);
  trial.set_checkpoint_epoch(checkpoint_epoch);
  return trial;
}

// Rank `rank` of a data-parallel trial of `world_size` ranks.
inline v1::TrialAssignment RankAssignment(int64_t trial_id, int32_t rank, int32_t world_size,
                                          const std::string& script) {
  v1::TrialAssignment trial = Assignment(trial_id, script);
  trial.set_rank(rank);
  trial.set_world_size(world_size);
  return trial;
}


// An Agent against a FakeCoordinator with the fake trainer: one per test.
class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = TempDir("agent");
    WriteFile((root_ / "fake-train").string(), kFakeTrainer);
    std::filesystem::permissions(root_ / "fake-train", std::filesystem::perms::owner_all);
  }

  AgentOptions Options() {
    AgentOptions options;
    options.coordinator_address = coordinator_.address();
    options.trainer_path = (root_ / "fake-train").string();
    options.work_dir = (root_ / "work").string();
    options.hostname = "test";
    options.connect_timeout_ms = 5'000;
    options.kill_grace_ms = 2'000;
    options.drain_timeout_ms = 2'000;
    options.exit_when_idle = true;
    options.log = log_.Function();
    return options;
  }
  std::unique_ptr<Agent> MakeAgent() {
    return std::make_unique<Agent>(Options(), coordinator_.NewStub());
  }
  // work/trial-T/attempt-1, and rank-R below it for a rank of a gang.
  std::filesystem::path AttemptDir(int64_t trial_id) const {
    std::filesystem::path dir = root_ / "work" / absl::StrCat("trial-", trial_id) / "attempt-1";
    if (auto it = gang_ranks_.find(trial_id); it != gang_ranks_.end()) {
      dir /= absl::StrCat("rank-", it->second);
    }
    return dir;
  }
  void Lease(const v1::TrialAssignment& trial) {
    if (trial.world_size() > 1) gang_ranks_[trial.trial_id()] = trial.rank();
    absl::MutexLock lock(&coordinator_.state.mu);
    coordinator_.state.to_lease.push_back(trial);
  }
  // Runs the agent until it is idle; fails the test if that takes longer
  // than `limit` (e.g. a trainer that was not stopped).
  void RunUntilIdle(absl::Duration limit = absl::Seconds(8)) { RunUntilIdle(Options(), limit); }
  void RunUntilIdle(const AgentOptions& options, absl::Duration limit = absl::Seconds(8)) {
    Agent agent(options, coordinator_.NewStub());
    const absl::Time start = absl::Now();
    ASSERT_TRUE(agent.Run().ok());
    EXPECT_LT(absl::Now() - start, limit) << log_.All();
  }
  // The fake trainer's arguments (after argv[0]); empty if it never ran.
  std::vector<std::string> TrainerArgs(int64_t trial_id) const {
    const std::filesystem::path args = AttemptDir(trial_id) / "args";
    if (!std::filesystem::exists(args)) return {};
    return absl::StrSplit(absl::StripSuffix(ReadFile(args), "\n"), '\n');
  }
  std::vector<std::string> Expected(int64_t trial_id, std::vector<std::string> rank_flags,
                                    bool checkpoint_links) const {
    std::vector<std::string> args = {"--config", (AttemptDir(trial_id) / "trial.yaml").string(),
                                     "--out", AttemptDir(trial_id).string()};
    if (checkpoint_links) args.push_back("--checkpoint-links");
    args.insert(args.end(), rank_flags.begin(), rank_flags.end());
    return args;
  }
  void SetRendezvous(int64_t trial_id, const std::string& address, int32_t port) {
    absl::MutexLock lock(&coordinator_.state.mu);
    v1::Rendezvous& rendezvous = coordinator_.state.rendezvous[{trial_id, 1}];
    rendezvous.set_master_address(address);
    rendezvous.set_master_port(port);
  }
  int RendezvousPolls() {
    absl::MutexLock lock(&coordinator_.state.mu);
    return static_cast<int>(coordinator_.state.rendezvous_polls.size());
  }

  std::filesystem::path root_;
  std::map<int64_t, int32_t> gang_ranks_;  // trial id -> rank, for gang trials
  FakeCoordinator coordinator_;
  LogSink log_;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_TESTS_AGENT_TEST_UTIL_H_
