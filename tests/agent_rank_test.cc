// Tests of the worker agent running the ranks of data-parallel trials: the
// rendezvous line of rank 0's trainer, exit 5 (a lost peer), the trainer's
// command line per rank, the rendezvous wait on a fake clock, and the Agent
// as rank 0 and as rank k > 0 against the fake coordinator
// (tests/agent_test_util.h) with the fake trainer.

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/sslsweep.grpc.pb.h"
#include "tests/agent_test_util.h"
#include "tests/test_util.h"
#include "worker/agent/agent.h"
#include "worker/agent/attempt_end.h"
#include "worker/agent/rendezvous_wait.h"
#include "worker/agent/trainer_command.h"
#include "worker/agent/trainer_output.h"

namespace sslsweep {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ---- Plain functions -------------------------------------------------------------

TEST(TrainerOutputParserTest, ReportsRankZerosRendezvous) {
  TrainerOutputParser parser;
  const TrainerEvent rendezvous = *parser.Consume(R"({"event":"rendezvous","port":29517})");
  EXPECT_EQ(rendezvous.kind, TrainerEvent::Kind::kRendezvous);
  EXPECT_EQ(rendezvous.port, 29517);
  for (const char* bad : {R"({"event":"rendezvous"})", R"({"event":"rendezvous","port":0})",
                          R"({"event":"rendezvous","port":70000})",
                          R"({"event":"rendezvous","port":"29517"})"}) {
    EXPECT_EQ(parser.Consume(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(AttemptEndTest, ExitFiveIsALostPeerUnlessTheWorkerIsStopping) {
  const ExitStatus peer_lost{true, 5, 0};
  const AttemptEnd end =
      AttemptEndFor(peer_lost, false, "sslsweep-train: rank 1 of 2 lost rank 0: reset");
  EXPECT_FALSE(end.finished);
  EXPECT_EQ(end.kind, v1::FAILURE_PEER_LOST);
  EXPECT_EQ(end.reason, "sslsweep-train exit code 5: sslsweep-train: rank 1 of 2 lost rank 0: reset");
  EXPECT_EQ(AttemptEndFor(peer_lost, true, "").kind, v1::FAILURE_RELEASED);
}

TEST(TrainerArgvTest, OnlyTheRanksOfADataParallelTrialGetRankFlags) {
  TrainerCommand command{"/bin/train", "/w/trial-1/attempt-2", 0, 1, 0, "ignored:0", ""};
  EXPECT_THAT(TrainerArgv(command),
              ElementsAre("/bin/train", "--config", "/w/trial-1/attempt-2/trial.yaml", "--out",
                          "/w/trial-1/attempt-2", "--checkpoint-links"));
  command.threads = 3;
  command.world_size = 4;
  command.master = "host-a:0";
  EXPECT_THAT(TrainerArgv(command),
              ElementsAre("/bin/train", "--config", "/w/trial-1/attempt-2/trial.yaml", "--out",
                          "/w/trial-1/attempt-2", "--checkpoint-links", "--threads", "3",
                          "--world-size", "4", "--rank", "0", "--master", "host-a:0"));
  // Rank k > 0's checkpoints are not relayed: no links.
  command.threads = 0;
  command.rank = 3;
  command.master = "host-a:29500";
  command.local_address = "host-d";
  EXPECT_THAT(TrainerArgv(command),
              ElementsAre("/bin/train", "--config", "/w/trial-1/attempt-2/trial.yaml", "--out",
                          "/w/trial-1/attempt-2", "--world-size", "4", "--rank", "3", "--master",
                          "host-a:29500", "--local-address", "host-d"));
}

// ---- AwaitRendezvous on a fake clock ---------------------------------------------

// Answers GetRendezvous from a script, one answer per poll, on a clock that
// only sleeping advances.
class RendezvousWaitTest : public ::testing::Test {
 protected:
  struct Answer {
    absl::Status status;
    bool ready = false;
    int32_t retry_after_ms = 0;
    int32_t port = 29500;
  };
  RendezvousWaitOptions Options(std::vector<Answer> answers) {
    answers_ = std::move(answers);
    RendezvousWaitOptions options;
    options.timeout = absl::Milliseconds(1000);
    options.now = [this] { return now_; };
    options.sleep = [this](absl::Duration delay) {
      sleeps_.push_back(delay);
      now_ += delay;
      return !interrupt_;
    };
    options.poll = [this](v1::GetRendezvousResponse* response) {
      poll_times_.push_back(now_ - start_);
      // Past the script: never ready.
      const Answer answer = polls_ < answers_.size() ? answers_[polls_] : Answer{};
      ++polls_;
      if (!answer.status.ok()) return answer.status;
      response->set_ready(answer.ready);
      response->set_retry_after_ms(answer.retry_after_ms);
      if (answer.ready) {
        response->mutable_rendezvous()->set_master_address("rank0.example");
        response->mutable_rendezvous()->set_master_port(answer.port);
      }
      return absl::OkStatus();
    };
    return options;
  }
  static std::vector<absl::Duration> Ms(std::vector<int> ms) {
    std::vector<absl::Duration> durations;
    for (int m : ms) durations.push_back(absl::Milliseconds(m));
    return durations;
  }

  absl::Time start_ = absl::FromUnixSeconds(1'000'000);  // of the current wait
  absl::Time now_ = start_;
  bool interrupt_ = false;
  std::vector<Answer> answers_;
  size_t polls_ = 0;
  std::vector<absl::Duration> sleeps_;
  std::vector<absl::Duration> poll_times_;  // since the start
};

TEST_F(RendezvousWaitTest, PollsAtTheAnswersIntervalButNeverFasterThanTheMinimum) {
  const absl::StatusOr<v1::Rendezvous> rendezvous = AwaitRendezvous(Options({
      {absl::OkStatus(), false, 10},
      {absl::OkStatus(), false, 250},
      {absl::OkStatus(), false, 0},
      {absl::OkStatus(), true, 0, 41234},
  }));
  ASSERT_TRUE(rendezvous.ok()) << rendezvous.status();
  EXPECT_EQ(rendezvous->master_address(), "rank0.example");
  EXPECT_EQ(rendezvous->master_port(), 41234);
  EXPECT_EQ(sleeps_, Ms({100, 250, 100}));
}

TEST_F(RendezvousWaitTest, GivesUpAtTheLimitAfterAPollAtTheLimit) {
  RendezvousWaitOptions options = Options({});
  options.timeout = absl::Milliseconds(300);
  const absl::StatusOr<v1::Rendezvous> rendezvous = AwaitRendezvous(options);
  EXPECT_EQ(rendezvous.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(rendezvous.status().message(), "rank 0 did not report its rendezvous within 0.3 s");
  EXPECT_EQ(poll_times_, Ms({0, 100, 200, 300}));
  // A limit that falls between two polls is not overslept.
  poll_times_.clear();
  polls_ = 0;
  start_ = now_;
  options.timeout = absl::Milliseconds(250);
  EXPECT_EQ(AwaitRendezvous(options).status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(poll_times_, Ms({0, 100, 200, 250}));
}

TEST_F(RendezvousWaitTest, BacksOffOnTransientFailuresAndStopsAtAStaleAnswer) {
  const absl::StatusOr<v1::Rendezvous> rendezvous = AwaitRendezvous(Options({
      {absl::UnavailableError("down")},
      {absl::UnavailableError("down")},
      {absl::OkStatus(), false, 10},
      {absl::UnavailableError("down")},
      {absl::FailedPreconditionError("attempt 1 is stale")},
  }));
  EXPECT_EQ(rendezvous.status(), absl::FailedPreconditionError("attempt 1 is stale"));
  // The back-off starts over after an answer.
  EXPECT_EQ(sleeps_, Ms({100, 200, 100, 100}));
}

TEST_F(RendezvousWaitTest, TheLastTransientFailureIsNamedAtTheLimit) {
  RendezvousWaitOptions options = Options({});
  options.timeout = absl::Milliseconds(150);
  options.poll = [](v1::GetRendezvousResponse*) { return absl::UnavailableError("down"); };
  EXPECT_EQ(AwaitRendezvous(options).status(),
            absl::DeadlineExceededError("rank 0 did not report its rendezvous within 0.15 s "
                                        "(the last poll failed: UNAVAILABLE: down)"));
}

TEST_F(RendezvousWaitTest, AnInterruptedSleepCancelsTheWait) {
  interrupt_ = true;
  const absl::StatusOr<v1::Rendezvous> rendezvous = AwaitRendezvous(Options({}));
  EXPECT_EQ(rendezvous.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(polls_, 1u);
}

TEST_F(RendezvousWaitTest, AnUnusableRendezvousIsInvalid) {
  const absl::StatusOr<v1::Rendezvous> rendezvous =
      AwaitRendezvous(Options({{absl::OkStatus(), true, 0, 0}}));
  EXPECT_EQ(rendezvous.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(rendezvous.status().message(), HasSubstr("address 'rank0.example', port 0"));
}

// ---- Agent: ranks of a data-parallel trial ---------------------------------------

TEST_F(AgentTest, RankZeroReportsItsRendezvousBeforeAnyMetrics) {
  AgentOptions options = Options();
  options.advertise_address = "rank0.example";
  Lease(RankAssignment(20, 0, 2,
                       "metric 0 a 1; epoch_end 0; metric 1 a 2; epoch_end 1; checkpoint 1 10\n"
                       "exit 0\n"));
  RunUntilIdle(options);
  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripSuffix(ReadFile(AttemptDir(20) / "port"), "\n"), &port));
  EXPECT_EQ(TrainerArgs(20),
            Expected(20, {"--world-size", "2", "--rank", "0", "--master", "rank0.example:0"},
                     /*checkpoint_links=*/true));
  absl::MutexLock lock(&coordinator_.state.mu);
  EXPECT_THAT(coordinator_.state.events, ElementsAre("rendezvous 20", "report 20 e0",
                                                     "report 20 e1", "upload 20 e1", "finish 20"));
  ASSERT_EQ(coordinator_.state.rendezvous_reports.size(), 1u);
  const FakeState::RendezvousReport report = coordinator_.state.rendezvous_reports[0];
  EXPECT_EQ(report.worker_id, "w1");
  EXPECT_EQ(report.trial_id, 20);
  EXPECT_EQ(report.attempt, 1);
  EXPECT_EQ(report.address, "rank0.example");
  EXPECT_EQ(report.port, port);
  EXPECT_TRUE(coordinator_.state.rendezvous_polls.empty());
}

TEST_F(AgentTest, ALoneRankGetsNoRankFlagsAndHasNoRendezvous) {
  Lease(Assignment(21, "metric 0 a 1; epoch_end 0\n"));
  Lease(RankAssignment(22, 0, 1, "exit 0\n"));
  RunUntilIdle();
  EXPECT_EQ(TrainerArgs(21), Expected(21, {}, /*checkpoint_links=*/true));
  EXPECT_EQ(TrainerArgs(22), Expected(22, {}, /*checkpoint_links=*/true));
  EXPECT_FALSE(std::filesystem::exists(AttemptDir(21) / "port"));
  absl::MutexLock lock(&coordinator_.state.mu);
  EXPECT_THAT(coordinator_.state.events, ElementsAre("report 21 e0", "finish 21", "finish 22"));
  EXPECT_TRUE(coordinator_.state.rendezvous_polls.empty());
}

TEST_F(AgentTest, RankOneWaitsForTheRendezvousThenJoinsItAndReportsNoSuccess) {
  // It trains (and prints its losses, as a rank k > 0 does) but relays none.
  Lease(RankAssignment(23, 1, 2,
                       "metric 0 loss 1; epoch_end 0; metric 1 loss 0.5; epoch_end 1; exit 0\n"));
  std::unique_ptr<Agent> agent = MakeAgent();
  absl::Status status;
  std::thread run([&] { status = agent->Run(); });
  // Waiting: polled, heartbeating the trial as running, the trainer not started.
  ASSERT_TRUE(Eventually([&] {
    absl::MutexLock lock(&coordinator_.state.mu);
    return coordinator_.state.rendezvous_polls.size() >= 3 &&
           !coordinator_.state.heartbeats.empty() &&
           coordinator_.state.heartbeats.back() == std::set<int64_t>{23};
  })) << log_.All();
  EXPECT_TRUE(TrainerArgs(23).empty());
  SetRendezvous(23, "rank0.example", 41234);
  run.join();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(TrainerArgs(23),
            Expected(23, {"--world-size", "2", "--rank", "1", "--master", "rank0.example:41234",
                          "--local-address", "test"},
                     /*checkpoint_links=*/false));
  EXPECT_TRUE(log_.Contains("trial 23 attempt 1: rank 1 finished; rank 0 reports the trial's end"))
      << log_.All();
  absl::MutexLock lock(&coordinator_.state.mu);
  EXPECT_TRUE(coordinator_.state.events.empty());
  EXPECT_TRUE(coordinator_.state.reports.empty());
  EXPECT_TRUE(coordinator_.state.finishes.empty());
  EXPECT_TRUE(coordinator_.state.fails.empty());
  const std::vector<FakeState::RendezvousPoll> polls = coordinator_.state.rendezvous_polls;
  for (size_t i = 0; i < polls.size(); ++i) {
    EXPECT_EQ(polls[i].worker_id, "w1");
    EXPECT_EQ(polls[i].trial_id, 23);
    EXPECT_EQ(polls[i].attempt, 1);
    // The fake asks for 10 ms; the agent waits at least 100 ms.
    if (i > 0) {
      EXPECT_GE(polls[i].at - polls[i - 1].at, absl::Milliseconds(99)) << i;
    }
  }
}

TEST_F(AgentTest, ExitFiveOfAnyRankMeansAPeerWasLost) {
  SetRendezvous(24, "rank0.example", 41234);
  Lease(RankAssignment(24, 1, 2,
                       "echo 'sslsweep-train: rank 1 of 2 lost rank 0: connection reset' >&2\n"
                       "exit 5\n"));
  Lease(RankAssignment(25, 0, 2,
                       "metric 0 a 1; epoch_end 0\n"
                       "echo 'sslsweep-train: rank 0 of 2 lost rank 1: timeout' >&2; exit 5\n"));
  RunUntilIdle();
  absl::MutexLock lock(&coordinator_.state.mu);
  EXPECT_THAT(coordinator_.state.events,
              ElementsAre("fail 24", "rendezvous 25", "report 25 e0", "fail 25"));
  ASSERT_EQ(coordinator_.state.fails.size(), 2u);
  EXPECT_EQ(coordinator_.state.fails[0].kind, v1::FAILURE_PEER_LOST);
  EXPECT_EQ(coordinator_.state.fails[0].reason,
            "sslsweep-train exit code 5: sslsweep-train: rank 1 of 2 lost rank 0: connection reset");
  EXPECT_EQ(coordinator_.state.fails[1].kind, v1::FAILURE_PEER_LOST);
  EXPECT_EQ(coordinator_.state.fails[1].reason,
            "sslsweep-train exit code 5: sslsweep-train: rank 0 of 2 lost rank 1: timeout");
}

TEST_F(AgentTest, RankOneGivesUpWhenTheRendezvousNeverComes) {
  AgentOptions options = Options();
  options.rendezvous_timeout_ms = 300;
  Lease(RankAssignment(26, 1, 2, "exit 0\n"));
  const absl::Time start = absl::Now();
  RunUntilIdle(options);
  EXPECT_TRUE(TrainerArgs(26).empty());  // never started
  EXPECT_TRUE(log_.Contains("failed (FAILURE_PEER_LOST, to be retried)")) << log_.All();
  absl::MutexLock lock(&coordinator_.state.mu);
  EXPECT_THAT(coordinator_.state.events, ElementsAre("fail 26"));
  ASSERT_EQ(coordinator_.state.fails.size(), 1u);
  EXPECT_EQ(coordinator_.state.fails[0].kind, v1::FAILURE_PEER_LOST);
  EXPECT_EQ(coordinator_.state.fails[0].reason,
            "rank 0 did not report its rendezvous within 0.3 s");
  // Polled until the limit, at least 100 ms apart: at 0, 100, 200, 300 ms.
  const std::vector<FakeState::RendezvousPoll> polls = coordinator_.state.rendezvous_polls;
  ASSERT_GE(polls.size(), 2u);
  EXPECT_LE(polls.size(), 4u);
  EXPECT_GE(polls.back().at - start, absl::Milliseconds(299));
}

TEST_F(AgentTest, AHeartbeatStopEndsTheRendezvousWaitPromptly) {
  {
    absl::MutexLock lock(&coordinator_.state.mu);
    coordinator_.state.rendezvous_retry_after_ms = 60'000;  // the wait sleeps
  }
  AgentOptions options = Options();
  options.rendezvous_timeout_ms = 60'000;
  Lease(RankAssignment(27, 1, 2, "exit 0\n"));
  Agent agent(options, coordinator_.NewStub());
  absl::Status status;
  std::thread run([&] { status = agent.Run(); });
  ASSERT_TRUE(Eventually([&] { return RendezvousPolls() >= 1; }));
  const absl::Time stop = absl::Now();
  {
    absl::MutexLock lock(&coordinator_.state.mu);
    coordinator_.state.stop_when_running = {27};
  }
  run.join();
  EXPECT_TRUE(status.ok()) << status;
  // The next heartbeat (every 100 ms) carries the stop.
  EXPECT_LT(absl::Now() - stop, absl::Seconds(1));
  EXPECT_TRUE(TrainerArgs(27).empty());
  EXPECT_TRUE(log_.Contains("trial 27 attempt 1: stopping at the coordinator's request"))
      << log_.All();
  absl::MutexLock lock(&coordinator_.state.mu);
  EXPECT_EQ(coordinator_.state.rendezvous_polls.size(), 1u);
  EXPECT_TRUE(coordinator_.state.events.empty());
  EXPECT_TRUE(coordinator_.state.fails.empty());
}

TEST_F(AgentTest, StopDuringTheRendezvousWaitReleasesTheRank) {
  Lease(RankAssignment(28, 1, 2, "exit 0\n"));
  std::unique_ptr<Agent> agent = MakeAgent();
  absl::Status status;
  std::thread run([&] { status = agent->Run(); });
  ASSERT_TRUE(Eventually([&] { return RendezvousPolls() >= 1; }));
  const absl::Time stop = absl::Now();
  agent->Stop();
  run.join();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_LT(absl::Now() - stop, absl::Seconds(1));
  EXPECT_TRUE(TrainerArgs(28).empty());
  absl::MutexLock lock(&coordinator_.state.mu);
  EXPECT_THAT(coordinator_.state.events, ElementsAre("fail 28"));
  ASSERT_EQ(coordinator_.state.fails.size(), 1u);
  EXPECT_EQ(coordinator_.state.fails[0].kind, v1::FAILURE_RELEASED);
}

TEST_F(AgentTest, AStaleRendezvousPollRunsNothingAndReportsNothing) {
  {
    absl::MutexLock lock(&coordinator_.state.mu);
    coordinator_.state.get_rendezvous_status =
        grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "attempt 1 of trial 29 is stale");
  }
  Lease(RankAssignment(29, 1, 2, "exit 0\n"));
  RunUntilIdle();
  EXPECT_TRUE(TrainerArgs(29).empty());
  EXPECT_TRUE(log_.Contains("trial 29 attempt 1 is no longer this worker's: attempt 1 of trial "
                            "29 is stale"))
      << log_.All();
  absl::MutexLock lock(&coordinator_.state.mu);
  EXPECT_EQ(coordinator_.state.rendezvous_polls.size(), 1u);
  EXPECT_TRUE(coordinator_.state.events.empty());
}

TEST_F(AgentTest, AStaleAnswerToTheRendezvousStopsRankZero) {
  {
    absl::MutexLock lock(&coordinator_.state.mu);
    coordinator_.state.report_rendezvous_status =
        grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "attempt 1 of trial 30 is stale");
  }
  Lease(RankAssignment(30, 0, 2, "sleep 20; metric 0 a 1; epoch_end 0\n"));
  RunUntilIdle(absl::Seconds(3));
  EXPECT_TRUE(log_.Contains("attempt 1 of trial 30 is stale")) << log_.All();
  absl::MutexLock lock(&coordinator_.state.mu);
  EXPECT_TRUE(coordinator_.state.events.empty());
  EXPECT_TRUE(coordinator_.state.rendezvous_reports.empty());
}

}  // namespace
}  // namespace sslsweep
