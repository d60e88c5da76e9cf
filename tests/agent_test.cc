// Tests of the worker agent (worker/agent): the trainer output parser and
// the exit-status mapping as plain functions; the Outbox and the Agent
// against an in-process fake coordinator (tests/agent_test_util.h: a real
// gRPC server on 127.0.0.1:0 whose WorkerService records every call and
// injects faults), with a fake trainer: a shell script that sources the
// trial's "configuration" as shell code, so each test says what its trainer
// prints and how it exits. No LibTorch, no sleeps for correctness: tests
// poll with a deadline. The ranks of data-parallel trials are in
// agent_rank_test.cc.

#include "worker/agent/agent.h"

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/sslsweep.grpc.pb.h"
#include "tests/agent_test_util.h"
#include "tests/test_util.h"
#include "worker/agent/attempt_end.h"
#include "worker/agent/coordinator_connection.h"
#include "worker/agent/outbox.h"
#include "worker/agent/trainer_output.h"

namespace sslsweep {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ---- Plain functions -----------------------------------------------------------

TEST(TrainerOutputParserTest, ReportsAnEpochAtItsEndAndCheckpointsAsAnnounced) {
  TrainerOutputParser parser;
  EXPECT_EQ(parser.Consume(R"({"epoch":1,"name":"b","value":2.5})")->kind,
            TrainerEvent::Kind::kNone);
  EXPECT_EQ(parser.Consume(R"({"epoch":1,"name":"a","value":-1})")->kind,
            TrainerEvent::Kind::kNone);
  const TrainerEvent end = *parser.Consume(R"({"epoch":1,"event":"epoch_end"})");
  EXPECT_EQ(end.kind, TrainerEvent::Kind::kEpochMetrics);
  EXPECT_EQ(end.epoch, 1);
  using Values = std::vector<std::pair<std::string, double>>;
  EXPECT_EQ(end.metrics, (Values{{"a", -1.0}, {"b", 2.5}}));
  // An epoch_end without values reports nothing.
  EXPECT_EQ(parser.Consume(R"({"epoch":2,"event":"epoch_end"})")->kind, TrainerEvent::Kind::kNone);
  const TrainerEvent checkpoint =
      *parser.Consume(R"({"epoch":1,"event":"checkpoint","path":"checkpoint-1.pt"})");
  EXPECT_EQ(checkpoint.kind, TrainerEvent::Kind::kCheckpointSaved);
  EXPECT_EQ(checkpoint.path, "checkpoint-1.pt");

  for (const char* bad :
       {"hello", R"({"name":"a","value":1})", R"({"epoch":-1,"name":"a"})",
        R"({"epoch":1,"event":"checkpoint","path":"../x.pt"})", R"({"epoch":1,"event":"bogus"})"}) {
    EXPECT_EQ(parser.Consume(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(AttemptEndTest, ExitStatusesMapToFailureKinds) {
  const auto exited = [](int code) { return ExitStatus{true, code, 0}; };
  EXPECT_TRUE(AttemptEndFor(exited(0), false, "x").finished);
  EXPECT_TRUE(AttemptEndFor(exited(0), true, "").finished);
  EXPECT_EQ(AttemptEndFor(exited(4), false, "").kind, v1::FAILURE_DIVERGED);
  EXPECT_EQ(AttemptEndFor(exited(2), true, "").kind, v1::FAILURE_CONFIG);
  EXPECT_EQ(AttemptEndFor(exited(3), false, "").kind, v1::FAILURE_CRASH);
  EXPECT_EQ(AttemptEndFor(exited(1), false, "").kind, v1::FAILURE_CRASH);
  EXPECT_EQ(AttemptEndFor(ExitStatus{false, 0, 9}, false, "").kind, v1::FAILURE_CRASH);
  EXPECT_EQ(AttemptEndFor(ExitStatus{false, 0, 15}, true, "").kind, v1::FAILURE_RELEASED);
  EXPECT_EQ(AttemptEndFor(exited(3), false, "sslsweep-train: x.gz: missing").reason,
            "sslsweep-train exit code 3: sslsweep-train: x.gz: missing");
}

// ---- Outbox ---------------------------------------------------------------------

TEST(OutboxTest, UploadsOnlyTheNewestQueuedCheckpointAfterEveryEarlierReport) {
  FakeCoordinator coordinator;
  const auto dir = TempDir("outbox");
  auto stub = coordinator.NewStub();
  Outbox outbox(OutboxOptions{}, stub.get(), nullptr);
  const AttemptKey key{5, 1};
  {
    absl::MutexLock lock(&coordinator.state.mu);
    coordinator.state.reports_blocked = true;  // epoch 1's report hangs
  }
  outbox.Open(key, "w1");
  std::vector<std::string> links;
  for (int epoch = 1; epoch <= 3; ++epoch) {
    outbox.AddMetrics(key, epoch, {{"loss/total", 1.0 / epoch}});
    links.push_back(WriteFile((dir / absl::StrCat("checkpoint-", epoch, ".pt")).string(),
                              std::string(1500000 + epoch, static_cast<char>('a' + epoch))));
    outbox.AddCheckpoint(key, epoch, links.back());
  }
  outbox.AddFinish(key);
  // Superseded while queued: deleted at once, never sent.
  EXPECT_FALSE(std::filesystem::exists(links[0]));
  EXPECT_FALSE(std::filesystem::exists(links[1]));
  EXPECT_TRUE(std::filesystem::exists(links[2]));
  {
    absl::MutexLock lock(&coordinator.state.mu);
    coordinator.state.reports_blocked = false;
  }
  const Outbox::AttemptResult result = outbox.WaitUntilSettled(key);
  EXPECT_EQ(result.settlement, Outbox::Settlement::kAcknowledged);
  absl::MutexLock lock(&coordinator.state.mu);
  EXPECT_THAT(coordinator.state.events,
              ElementsAre("report 5 e1", "report 5 e2", "report 5 e3", "upload 5 e3", "finish 5"));
  ASSERT_EQ(coordinator.state.uploads.size(), 1u);
  EXPECT_TRUE(coordinator.state.uploads[0].size_and_crc_match);
  EXPECT_EQ(coordinator.state.uploads[0].data, std::string(1500003, 'd'));
  EXPECT_FALSE(std::filesystem::exists(links[2]));  // sent: deleted
}

TEST(OutboxTest, GivesUpAtTheDeadlineWhenTheCoordinatorIsGone) {
  const auto dir = TempDir("gone");
  int port = 0;
  {
    FakeCoordinator gone;  // a port that was just closed
    port = gone.port();
  }
  auto stub = v1::WorkerService::NewStub(MakeCoordinatorChannel(absl::StrCat("127.0.0.1:", port)));
  Outbox outbox(OutboxOptions{}, stub.get(), nullptr);
  const AttemptKey key{1, 1};
  outbox.Open(key, "w1");
  outbox.AddMetrics(key, 0, {{"a", 1}});
  const std::string link = WriteFile((dir / "checkpoint-1.pt").string(), "x");
  outbox.AddCheckpoint(key, 1, link);
  const absl::Time start = absl::Now();
  outbox.GiveUpAt(start + absl::Milliseconds(300));
  EXPECT_EQ(outbox.WaitUntilSettled(key).settlement, Outbox::Settlement::kGaveUp);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_FALSE(std::filesystem::exists(link));
}

// ---- Agent ----------------------------------------------------------------------

TEST_F(AgentTest, ReportsArriveOnceEachInOrderDespiteUnavailable) {
  {
    absl::MutexLock lock(&coordinator_.state.mu);
    coordinator_.state.unavailable_report_calls = {2, 3};
  }
  Lease(Assignment(1,
                   "for e in 0 1 2 3; do metric $e loss/total $e.5; metric $e acc 0.$e; "
                   "epoch_end $e; done\n"));
  RunUntilIdle();
  absl::MutexLock lock(&coordinator_.state.mu);
  EXPECT_EQ(coordinator_.state.report_calls, 6);
  EXPECT_THAT(coordinator_.state.events,
              ElementsAre("report 1 e0", "report 1 e1", "report 1 e2", "report 1 e3", "finish 1"));
  ASSERT_EQ(coordinator_.state.reports.size(), 4u);
  EXPECT_EQ(coordinator_.state.reports[2].metrics,
            (std::map<std::string, double>{{"acc", 0.2}, {"loss/total", 2.5}}));
  EXPECT_EQ(coordinator_.state.reports[2].attempt, 1);
}

TEST_F(AgentTest, UploadsACheckpointOnlyAfterItsEpochWasAcknowledged) {
  {
    absl::MutexLock lock(&coordinator_.state.mu);
    coordinator_.state.unavailable_report_calls = {2};  // epoch 1's first try
  }
  Lease(Assignment(2,
                   "metric 0 a 1; epoch_end 0\n"
                   "metric 1 a 2; epoch_end 1; checkpoint 1 2500000\n"
                   "metric 2 a 3; epoch_end 2\n"));
  RunUntilIdle();
  const std::string saved = ReadFile(AttemptDir(2) / "checkpoint.pt");
  absl::MutexLock lock(&coordinator_.state.mu);
  EXPECT_THAT(coordinator_.state.events,
              ElementsAre("report 2 e0", "report 2 e1", "upload 2 e1", "report 2 e2", "finish 2"));
  ASSERT_EQ(coordinator_.state.uploads.size(), 1u);
  EXPECT_TRUE(coordinator_.state.uploads[0].size_and_crc_match);
  EXPECT_EQ(saved.size(), 2500000u);
  EXPECT_TRUE(coordinator_.state.uploads[0].data == saved);
  EXPECT_FALSE(std::filesystem::exists(AttemptDir(2) / "checkpoint-1.pt"));  // uploaded: deleted
}

TEST_F(AgentTest, ExitCodesMapToFailureKinds) {
  Lease(Assignment(1, "metric 0 a 1; epoch_end 0; exit 0\n"));
  Lease(Assignment(2,
                   "echo 'sslsweep-train: diverged: loss is nan at epoch 1 step 3' >&2; exit 4\n"));
  Lease(Assignment(3, "echo 'sslsweep-train: trial.yaml:2:3: bad' >&2; exit 2\n"));
  Lease(Assignment(4, "echo 'sslsweep-train: data missing' >&2; exit 3\n"));
  Lease(Assignment(5, "kill -9 $$\n"));
  RunUntilIdle();
  absl::MutexLock lock(&coordinator_.state.mu);
  EXPECT_THAT(coordinator_.state.finishes, ElementsAre(1));
  ASSERT_EQ(coordinator_.state.fails.size(), 4u);
  const std::vector<FakeState::Fail> fails = coordinator_.state.fails;
  EXPECT_EQ(fails[0].kind, v1::FAILURE_DIVERGED);
  EXPECT_EQ(fails[0].reason,
            "sslsweep-train exit code 4: sslsweep-train: diverged: loss is nan at epoch 1 step 3");
  EXPECT_EQ(fails[1].kind, v1::FAILURE_CONFIG);
  EXPECT_EQ(fails[2].kind, v1::FAILURE_CRASH);
  EXPECT_EQ(fails[2].reason, "sslsweep-train exit code 3: sslsweep-train: data missing");
  EXPECT_EQ(fails[3].kind, v1::FAILURE_CRASH);
  EXPECT_THAT(fails[3].reason, HasSubstr("killed by signal 9"));
}

TEST_F(AgentTest, AStaleAnswerStopsTheTrainerAndNothingMoreIsReported) {
  {
    absl::MutexLock lock(&coordinator_.state.mu);
    coordinator_.state.report_answer = [](const v1::ReportMetricsRequest& request,
                                          v1::ReportMetricsResponse*) {
      return request.epoch() == 1
                 ? grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "attempt 1 is stale")
                 : grpc::Status::OK;
    };
  }
  Lease(Assignment(3,
                   "metric 0 a 1; epoch_end 0; metric 1 a 2; epoch_end 1; checkpoint 1 10\n"
                   "sleep 20; metric 2 a 3; epoch_end 2\n"));
  RunUntilIdle(absl::Seconds(5));
  absl::MutexLock lock(&coordinator_.state.mu);
  EXPECT_EQ(coordinator_.state.report_calls, 2);
  EXPECT_THAT(coordinator_.state.events, ElementsAre("report 3 e0"));
  EXPECT_FALSE(std::filesystem::exists(AttemptDir(3) / "checkpoint-1.pt"));
  EXPECT_TRUE(log_.Contains("attempt 1 is stale"));
}

TEST_F(AgentTest, ReportMetricsStopPrunesTheTrial) {
  {
    absl::MutexLock lock(&coordinator_.state.mu);
    coordinator_.state.report_answer = [](const v1::ReportMetricsRequest& request,
                                          v1::ReportMetricsResponse* response) {
      if (request.epoch() == 1) {
        response->set_stop(true);
        response->set_stop_reason("pruned by hyperband at epoch 1");
      }
      return grpc::Status::OK;
    };
  }
  Lease(Assignment(4,
                   "metric 0 a 1; epoch_end 0; metric 1 a 2; epoch_end 1; checkpoint 1 10\n"
                   "sleep 20; metric 2 a 3; epoch_end 2\n"));
  RunUntilIdle(absl::Seconds(5));
  absl::MutexLock lock(&coordinator_.state.mu);
  EXPECT_THAT(coordinator_.state.events, ElementsAre("report 4 e0", "report 4 e1"));
  EXPECT_TRUE(log_.Contains("pruned by hyperband at epoch 1"));
}

TEST_F(AgentTest, AHeartbeatStopReachesTheTrainerQuickly) {
  {
    absl::MutexLock lock(&coordinator_.state.mu);
    coordinator_.state.stop_when_running = {6};
  }
  Lease(Assignment(6, "metric 0 a 1; epoch_end 0; sleep 20; exit 0\n"));
  RunUntilIdle(absl::Seconds(3));
  absl::MutexLock lock(&coordinator_.state.mu);
  EXPECT_TRUE(coordinator_.state.finishes.empty());
  EXPECT_TRUE(coordinator_.state.fails.empty());
  EXPECT_TRUE(log_.Contains("trial 6 attempt 1: stopping at the coordinator's request"));
}

TEST_F(AgentTest, StopReleasesTheRunningTrial) {
  Lease(Assignment(7, "metric 0 a 1; epoch_end 0; touch \"$out/started\"; sleep 20\n"));
  Lease(Assignment(8, "exit 0\n"));  // never leased: the agent stops first
  std::unique_ptr<Agent> agent = MakeAgent();
  absl::Status status;
  std::thread run([&] { status = agent->Run(); });
  ASSERT_TRUE(Eventually([&] {
    absl::MutexLock lock(&coordinator_.state.mu);
    return !coordinator_.state.reports.empty() &&
           std::filesystem::exists(AttemptDir(7) / "started");
  }));
  const absl::Time stop = absl::Now();
  agent->Stop();
  run.join();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_LT(absl::Now() - stop, absl::Seconds(2));
  absl::MutexLock lock(&coordinator_.state.mu);
  EXPECT_THAT(coordinator_.state.events, ElementsAre("report 7 e0", "fail 7"));
  ASSERT_EQ(coordinator_.state.fails.size(), 1u);
  EXPECT_EQ(coordinator_.state.fails[0].kind, v1::FAILURE_RELEASED);
  EXPECT_EQ(coordinator_.state.to_lease.size(), 1u);
}

TEST_F(AgentTest, ReportsSurviveACoordinatorRestart) {
  Lease(Assignment(9,
                   "metric 0 a 1; epoch_end 0\n"
                   "while [ ! -e \"$out/go\" ]; do sleep 0.02; done\n"
                   "metric 1 a 2; epoch_end 1; metric 2 a 3; epoch_end 2; touch \"$out/done\"\n"));
  std::unique_ptr<Agent> agent = MakeAgent();
  absl::Status status;
  std::thread run([&] { status = agent->Run(); });
  ASSERT_TRUE(Eventually([&] {
    absl::MutexLock lock(&coordinator_.state.mu);
    return !coordinator_.state.reports.empty();
  }));
  coordinator_.Shutdown();
  WriteFile((AttemptDir(9) / "go").string(), "");
  // The trainer ends while the coordinator is down; its reports wait.
  ASSERT_TRUE(Eventually([&] { return std::filesystem::exists(AttemptDir(9) / "done"); }));
  coordinator_.Start(coordinator_.port());
  run.join();
  EXPECT_TRUE(status.ok()) << status;
  absl::MutexLock lock(&coordinator_.state.mu);
  EXPECT_THAT(coordinator_.state.events,
              ElementsAre("report 9 e0", "report 9 e1", "report 9 e2", "finish 9"));
}

TEST_F(AgentTest, ADownloadedCheckpointIsInPlaceBeforeTheTrainerStarts) {
  std::string served(1536 * 1024 + 7, '\0');
  for (size_t i = 0; i < served.size(); ++i) served[i] = static_cast<char>(i * 31 % 251);
  {
    absl::MutexLock lock(&coordinator_.state.mu);
    coordinator_.state.download_data = served;
    coordinator_.state.download_epoch = 3;
  }
  Lease(Assignment(10, "cp \"$out/checkpoint.pt\" \"$out/seen.pt\"; exit 0\n", 3));
  RunUntilIdle();
  EXPECT_TRUE(ReadFile(AttemptDir(10) / "seen.pt") == served);
  EXPECT_FALSE(std::filesystem::exists(AttemptDir(10) / "checkpoint.pt.tmp"));
  EXPECT_TRUE(log_.Contains("resuming trial 10 from the coordinator's checkpoint at epoch 3"));
  absl::MutexLock lock(&coordinator_.state.mu);
  EXPECT_THAT(coordinator_.state.finishes, ElementsAre(10));
}

TEST_F(AgentTest, ACorruptOrMissingCheckpointMeansStartingAfresh) {
  {
    absl::MutexLock lock(&coordinator_.state.mu);
    coordinator_.state.download_data = "checkpoint bytes";
    coordinator_.state.corrupt_download_crc = true;
  }
  const std::string script =
      "if [ -e \"$out/checkpoint.pt\" ]; then exit 1; fi; metric 0 a 1; epoch_end 0\n";
  Lease(Assignment(11, script, 2));
  RunUntilIdle();
  EXPECT_TRUE(log_.Contains("starting afresh"));
  {
    absl::MutexLock lock(&coordinator_.state.mu);
    coordinator_.state.download_status = grpc::Status(grpc::StatusCode::NOT_FOUND, "none");
  }
  Lease(Assignment(12, script, 2));
  RunUntilIdle();
  absl::MutexLock lock(&coordinator_.state.mu);
  EXPECT_THAT(coordinator_.state.events,
              ElementsAre("report 11 e0", "finish 11", "report 12 e0", "finish 12"));
  EXPECT_FALSE(std::filesystem::exists(AttemptDir(11) / "checkpoint.pt.tmp"));
}

TEST_F(AgentTest, AStaleDownloadRunsNothingAndReportsNothing) {
  {
    absl::MutexLock lock(&coordinator_.state.mu);
    coordinator_.state.download_status =
        grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "attempt 1 is stale");
  }
  Lease(Assignment(13, "touch \"$out/ran\"; exit 0\n", 1));
  RunUntilIdle();
  EXPECT_FALSE(std::filesystem::exists(AttemptDir(13) / "ran"));
  absl::MutexLock lock(&coordinator_.state.mu);
  EXPECT_TRUE(coordinator_.state.events.empty());
}

TEST_F(AgentTest, AnExitWhenIdleWorkerStaysWhileTrialsArePending) {
  // Nothing granted, but a gang may be forming that needs this worker: it
  // keeps asking, and exits only once nothing is pending.
  {
    absl::MutexLock lock(&coordinator_.state.mu);
    coordinator_.state.pending_answers = 4;
  }
  std::unique_ptr<Agent> agent = MakeAgent();
  ASSERT_TRUE(agent->Run().ok());
  absl::MutexLock lock(&coordinator_.state.mu);
  EXPECT_EQ(coordinator_.state.lease_calls, 5);
  EXPECT_EQ(coordinator_.state.pending_answers, 0);
}

TEST_F(AgentTest, QuarantineAndRefusalsAreLoggedOnce) {
  {
    absl::MutexLock lock(&coordinator_.state.mu);
    coordinator_.state.quarantined = true;
    coordinator_.state.refused_reason = "quarantined: 3 failures in a row";
  }
  AgentOptions options = Options();
  options.exit_when_idle = false;
  Agent agent(options, coordinator_.NewStub());
  absl::Status status;
  std::thread run([&] { status = agent.Run(); });
  // Several refused leases and heartbeats, one line each.
  EXPECT_TRUE(Eventually([&] {
    absl::MutexLock lock(&coordinator_.state.mu);
    return coordinator_.state.lease_calls >= 5 && coordinator_.state.heartbeats.size() >= 3;
  }));
  agent.Stop();
  run.join();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(log_.Count("gives this worker no trials: quarantined: 3 failures in a row"), 1)
      << log_.All();
  EXPECT_EQ(log_.Count("this worker is quarantined by the coordinator"), 1) << log_.All();
}

// Calls wait for a coordinator that is down (so that they go out the moment
// it is back), but Stop() cuts them short: the lease loop at once, queued
// reports after drain_timeout_ms.
TEST_F(AgentTest, StopEndsPromptlyWhileTheCoordinatorIsDown) {
  AgentOptions options = Options();
  options.exit_when_idle = false;
  options.drain_timeout_ms = 500;
  Agent idle(options, coordinator_.NewStub());
  absl::Status status;
  std::thread run([&] { status = idle.Run(); });
  ASSERT_TRUE(Eventually([&] {
    absl::MutexLock lock(&coordinator_.state.mu);
    return coordinator_.state.lease_calls >= 1;
  }));
  coordinator_.Shutdown();
  absl::Time stop = absl::Now();
  idle.Stop();
  run.join();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_LT(absl::Now() - stop, absl::Seconds(1));

  // A running trial whose release cannot be delivered: given up after the
  // drain time.
  coordinator_.Start(coordinator_.port());
  Lease(Assignment(14, "metric 0 a 1; epoch_end 0; sleep 20\n"));
  Agent busy(options, coordinator_.NewStub());
  std::thread run_busy([&] { status = busy.Run(); });
  ASSERT_TRUE(Eventually([&] {
    absl::MutexLock lock(&coordinator_.state.mu);
    return !coordinator_.state.reports.empty();
  }));
  coordinator_.Shutdown();
  stop = absl::Now();
  busy.Stop();
  run_busy.join();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_LT(absl::Now() - stop, absl::Seconds(2));
  EXPECT_TRUE(log_.Contains("trial 14 attempt 1: its reports were not all delivered"))
      << log_.All();
}

}  // namespace
}  // namespace sslsweep
