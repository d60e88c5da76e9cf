// WatchSweep over real gRPC on loopback: the snapshot, then one event per
// change in order while the test drives the trials through the
// Coordinator (lease, report, fail, finish), the end of the stream when
// the sweep ends, its errors, and its end when the client cancels or the
// server shuts down. Then `sslsweep watch`'s command over the same stream.

#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "cli/watch_command.h"
#include "coordinator/sweep_watch.h"
#include "coordinator/grpc_services.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/coordinator_test_util.h"

namespace sslsweep {
namespace {

using ::testing::HasSubstr;

constexpr char kSweep[] = R"(name: watched
method: grid
metric: {name: ncc_test_acc/fine/embedding, goal: maximize}
parameters:
  seed: {values: [1, 2]}
trial:
  epochs: 2
  data: {dataset: synthetic, train_samples: 64}
  optim: {batch_size: 32}
)";

class SweepWatchTest : public CoordinatorFixture {
 protected:
  void SetUp() override {
    CoordinatorFixture::SetUp();
    auto server = CoordinatorServer::Start(coordinator_.get(), "127.0.0.1:0");
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    address_ = "127.0.0.1:" + std::to_string(server_->port());
    stub_ = v1::SweepService::NewStub(
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  }

  std::unique_ptr<grpc::ClientReader<v1::SweepEvent>> Watch(grpc::ClientContext* context,
                                                            int64_t sweep_id) {
    v1::WatchSweepRequest request;
    request.set_sweep_id(sweep_id);
    return stub_->WatchSweep(context, request);
  }

  // The next event; fails the test if the stream ended.
  v1::SweepEvent Next(grpc::ClientReader<v1::SweepEvent>& reader) {
    v1::SweepEvent event;
    EXPECT_TRUE(reader.Read(&event)) << "the stream ended early";
    return event;
  }

  std::unique_ptr<CoordinatorServer> server_;
  std::string address_;
  std::unique_ptr<v1::SweepService::Stub> stub_;
};

TEST_F(SweepWatchTest, SnapshotThenEachChangeInOrderUntilTheSweepEnds) {
  const int64_t sweep_id = Submit(kSweep);
  const std::string worker = Register();
  grpc::ClientContext context;
  auto reader = Watch(&context, sweep_id);
  const int64_t t0 = clock_.NowMs();

  v1::SweepEvent event = Next(*reader);
  ASSERT_TRUE(event.has_snapshot()) << event.DebugString();
  EXPECT_EQ(event.time_ms(), t0);
  EXPECT_EQ(event.snapshot().sweep().sweep_id(), sweep_id);
  EXPECT_EQ(event.snapshot().sweep().metric_name(), "ncc_test_acc/fine/embedding");
  ASSERT_EQ(event.snapshot().trials_size(), 2);
  const int64_t first = event.snapshot().trials(0).trial_id();
  const int64_t second = event.snapshot().trials(1).trial_id();
  EXPECT_EQ(event.snapshot().trials(0).state(), v1::TRIAL_PENDING);
  EXPECT_EQ(event.snapshot().trials(0).params(0).value(), "1");
  EXPECT_EQ(event.snapshot().trials(1).epoch(), -1);

  clock_.AdvanceMs(1000);
  const v1::TrialAssignment attempt1 = Lease(worker);
  ASSERT_EQ(attempt1.trial_id(), first);
  event = Next(*reader);
  ASSERT_TRUE(event.has_trial_started()) << event.DebugString();
  EXPECT_EQ(event.time_ms(), t0 + 1000);
  EXPECT_EQ(event.trial_started().trial_id(), first);
  EXPECT_EQ(event.trial_started().attempt(), 1);
  ASSERT_EQ(event.trial_started().worker_ids_size(), 1);
  EXPECT_EQ(event.trial_started().worker_ids(0), worker);
  EXPECT_EQ(event.trial_started().resume_epoch(), -1);

  ASSERT_TRUE(Report(worker, attempt1, 0, 0.25).ok());
  event = Next(*reader);
  ASSERT_TRUE(event.has_epoch_reported()) << event.DebugString();
  EXPECT_EQ(event.epoch_reported().trial_id(), first);
  EXPECT_EQ(event.epoch_reported().epoch(), 0);
  EXPECT_EQ(event.epoch_reported().epochs_total(), 2);
  EXPECT_EQ(event.epoch_reported().metric_value(), 0.25);
  EXPECT_EQ(event.epoch_reported().eta_seconds(), -1);  // no epoch time reported

  ASSERT_TRUE(Fail(worker, attempt1, v1::FAILURE_CRASH, "segfault in the data loader").ok());
  event = Next(*reader);
  ASSERT_TRUE(event.has_attempt_requeued()) << event.DebugString();
  EXPECT_EQ(event.attempt_requeued().trial_id(), first);
  EXPECT_EQ(event.attempt_requeued().attempt(), 1);
  EXPECT_EQ(event.attempt_requeued().outcome(), "failed");
  EXPECT_EQ(event.attempt_requeued().reason(), "segfault in the data loader");
  EXPECT_EQ(event.attempt_requeued().failures(), 1);
  EXPECT_EQ(event.attempt_requeued().max_attempts(), 3);

  const v1::TrialAssignment attempt2 = Lease(worker);
  ASSERT_EQ(attempt2.trial_id(), first);
  event = Next(*reader);
  ASSERT_TRUE(event.has_trial_started()) << event.DebugString();
  EXPECT_EQ(event.trial_started().attempt(), 2);
  ASSERT_TRUE(Report(worker, attempt2, 1, 0.5).ok());
  event = Next(*reader);
  ASSERT_TRUE(event.has_epoch_reported()) << event.DebugString();
  EXPECT_EQ(event.epoch_reported().epoch(), 1);
  EXPECT_EQ(event.epoch_reported().metric_value(), 0.5);
  // An epoch and the end, however close, come in that order.
  ASSERT_TRUE(Report(worker, attempt2, 2, 0.75, "loss/total").ok());
  ASSERT_TRUE(Finish(worker, attempt2).ok());
  event = Next(*reader);
  ASSERT_TRUE(event.has_epoch_reported()) << event.DebugString();
  EXPECT_EQ(event.epoch_reported().epoch(), 2);
  EXPECT_TRUE(std::isnan(event.epoch_reported().metric_value()));  // loss/total only
  event = Next(*reader);
  ASSERT_TRUE(event.has_trial_ended()) << event.DebugString();
  EXPECT_EQ(event.trial_ended().trial_id(), first);
  EXPECT_EQ(event.trial_ended().state(), v1::TRIAL_SUCCEEDED);
  EXPECT_EQ(event.trial_ended().epoch(), 2);
  EXPECT_EQ(event.trial_ended().metric_value(), 0.5);  // its latest value of the metric
  EXPECT_EQ(event.trial_ended().reason(), "");

  const v1::TrialAssignment other = Lease(worker);
  ASSERT_EQ(other.trial_id(), second);
  event = Next(*reader);
  ASSERT_TRUE(event.has_trial_started()) << event.DebugString();
  EXPECT_EQ(event.trial_started().trial_id(), second);
  ASSERT_TRUE(Fail(worker, other, v1::FAILURE_DIVERGED, "loss is nan at step 7").ok());
  event = Next(*reader);
  ASSERT_TRUE(event.has_trial_ended()) << event.DebugString();
  EXPECT_EQ(event.trial_ended().trial_id(), second);
  EXPECT_EQ(event.trial_ended().state(), v1::TRIAL_FAILED);
  EXPECT_EQ(event.trial_ended().epoch(), -1);
  EXPECT_EQ(event.trial_ended().reason(), TrialStatusOf(sweep_id, second).failure_reason());
  EXPECT_THAT(event.trial_ended().reason(), HasSubstr("loss is nan at step 7"));
  event = Next(*reader);
  ASSERT_TRUE(event.has_sweep_ended()) << event.DebugString();
  EXPECT_EQ(event.sweep_ended().sweep().state(), v1::SWEEP_FINISHED);
  EXPECT_EQ(event.sweep_ended().sweep().trials_succeeded(), 1);
  EXPECT_EQ(event.sweep_ended().sweep().trials_failed(), 1);

  EXPECT_FALSE(reader->Read(&event)) << event.DebugString();
  const grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(SweepWatchTest, AnEndedSweepGivesItsSnapshotAndEnd) {
  const int64_t sweep_id = Submit(kSweep);
  ASSERT_TRUE(coordinator_->CancelSweep([&] {
    v1::CancelSweepRequest request;
    request.set_sweep_id(sweep_id);
    return request;
  }()).ok());
  grpc::ClientContext context;
  auto reader = Watch(&context, sweep_id);
  EXPECT_TRUE(Next(*reader).has_snapshot());
  const v1::SweepEvent end = Next(*reader);
  ASSERT_TRUE(end.has_sweep_ended()) << end.DebugString();
  EXPECT_EQ(end.sweep_ended().sweep().state(), v1::SWEEP_CANCELLED);
  EXPECT_EQ(end.sweep_ended().sweep().trials_cancelled(), 2);
  v1::SweepEvent more;
  EXPECT_FALSE(reader->Read(&more));
  EXPECT_TRUE(reader->Finish().ok());
}

TEST_F(SweepWatchTest, UnknownSweepIsNotFoundAndNonPositiveIdIsInvalid) {
  Submit(kSweep);
  for (const auto& [id, code] : {std::pair<int64_t, grpc::StatusCode>{99, grpc::StatusCode::NOT_FOUND},
                                 {0, grpc::StatusCode::INVALID_ARGUMENT},
                                 {-3, grpc::StatusCode::INVALID_ARGUMENT}}) {
    grpc::ClientContext context;
    auto reader = Watch(&context, id);
    v1::SweepEvent event;
    EXPECT_FALSE(reader->Read(&event)) << id;
    const grpc::Status status = reader->Finish();
    EXPECT_EQ(status.error_code(), code) << id << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(id == 99 ? "no sweep 99" : "sweep_id"));
  }
}

TEST_F(SweepWatchTest, ClientCancelEndsTheStream) {
  const int64_t sweep_id = Submit(kSweep);
  grpc::ClientContext context;
  auto reader = Watch(&context, sweep_id);
  EXPECT_TRUE(Next(*reader).has_snapshot());
  context.TryCancel();
  v1::SweepEvent event;
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The server's handler has ended too: the shutdown does not wait for it.
  const auto start = std::chrono::steady_clock::now();
  server_->Shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST_F(SweepWatchTest, ServerShutdownEndsAnOpenStreamAtOnce) {
  const int64_t sweep_id = Submit(kSweep);
  grpc::ClientContext context;
  auto reader = Watch(&context, sweep_id);
  EXPECT_TRUE(Next(*reader).has_snapshot());
  // The server's own shutdown deadline is 5 s: an open watch must not hold
  // it that long.
  const auto start = std::chrono::steady_clock::now();
  server_->Shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  v1::SweepEvent event;
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(SweepWatchTest, WatchCommandPrintsPlainLinesAndExitsByTheOutcome) {
  const int64_t sweep_id = Submit(kSweep);
  const std::string worker = Register();
  // The trials run to the end before the command watches: it prints the
  // snapshot and the end (the events in between are tested above).
  for (int i = 0; i < 2; ++i) {
    const v1::TrialAssignment trial = Lease(worker);
    ASSERT_TRUE(Report(worker, trial, 2, 0.5 + i * 0.25).ok());
    if (i == 0) {
      ASSERT_TRUE(Finish(worker, trial).ok());
    } else {
      ASSERT_TRUE(Fail(worker, trial, v1::FAILURE_CONFIG, "unknown dataset").ok());
    }
  }
  SweepClient client(address_);
  std::ostringstream out;
  std::ostringstream err;
  WatchViewOptions view;
  view.format_time = [](int64_t ms) { return std::to_string(ms); };
  EXPECT_EQ(WatchCommand(client, sweep_id, view, out, err), 1);  // a trial failed
  const std::string t = std::to_string(clock_.NowMs());
  const std::string reason = TrialStatusOf(sweep_id, 2).failure_reason();
  EXPECT_EQ(out.str(),
            t + " sweep 1 'watched': 0 running, 0 pending, 2 of 2 ended; metric "
                "ncc_test_acc/fine/embedding\n" +
            t + " trial 1 [seed=1] succeeded epoch 2/2 ncc_test_acc/fine/embedding=0.5000\n" +
            t + " trial 2 [seed=2] failed epoch 2/2 ncc_test_acc/fine/embedding=0.7500: " +
            reason + "\n" +
            t + " sweep 1 finished: 2 trials: 1 succeeded, 1 failed, 0 pruned, 0 cancelled\n");
  EXPECT_EQ(err.str(), "");

  std::ostringstream unknown_out;
  EXPECT_EQ(WatchCommand(client, 42, view, unknown_out, err), 2);
  EXPECT_EQ(unknown_out.str(), "");
  EXPECT_EQ(err.str(), "sslsweep: no sweep 42\n");

  server_->Shutdown();
  std::ostringstream gone;
  EXPECT_EQ(WatchCommand(client, sweep_id, view, gone, err), 3);
}

// An ostream another thread may read while the command writes to it.
class SharedText : public std::streambuf {
 public:
  std::string Text() {
    absl::MutexLock lock(&mu_);
    return text_;
  }

 protected:
  int overflow(int c) override {
    if (c == traits_type::eof()) return traits_type::not_eof(c);
    absl::MutexLock lock(&mu_);
    text_.push_back(static_cast<char>(c));
    return c;
  }
  std::streamsize xsputn(const char* data, std::streamsize n) override {
    absl::MutexLock lock(&mu_);
    text_.append(data, static_cast<size_t>(n));
    return n;
  }

 private:
  absl::Mutex mu_;
  std::string text_;
};

bool Eventually(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

TEST_F(SweepWatchTest, WatchCommandReconnectsToARestartedCoordinator) {
  const int64_t sweep_id = Submit(kSweep);
  const std::string worker = Register();
  const v1::TrialAssignment first = Lease(worker);
  SharedText out_text;
  SharedText err_text;
  std::ostream out(&out_text);
  std::ostream err(&err_text);
  WatchViewOptions view;
  view.format_time = [](int64_t ms) { return std::to_string(ms); };
  SweepClient client(address_);
  int exit_code = -1;
  std::thread watching([&] {
    exit_code = WatchCommand(client, sweep_id, view, out, err, absl::Seconds(30));
  });
  // Asserting would leave the thread running; every wait below is checked.
  EXPECT_TRUE(Eventually([&] { return out_text.Text().find("running attempt 1") != std::string::npos; }))
      << out_text.Text();

  // The coordinator's server goes away; the sweep goes on meanwhile.
  const int port = server_->port();
  server_->Shutdown();
  server_.reset();
  EXPECT_TRUE(Eventually([&] { return err_text.Text().find("reconnecting") != std::string::npos; }))
      << err_text.Text();
  EXPECT_TRUE(Finish(worker, first).ok());
  const v1::TrialAssignment second = Lease(worker);
  EXPECT_TRUE(Finish(worker, second).ok());
  auto server = CoordinatorServer::Start(coordinator_.get(), absl::StrCat("127.0.0.1:", port));
  EXPECT_TRUE(server.ok()) << server.status();
  if (server.ok()) server_ = *std::move(server);

  watching.join();
  EXPECT_EQ(exit_code, 0) << err_text.Text();
  EXPECT_THAT(err_text.Text(),
              ::testing::MatchesRegex("sslsweep: lost the coordinator \\(.*\\); reconnecting for "
                                      "up to 30s\nsslsweep: reconnected to 127.0.0.1:[0-9]+\n"));
  // The new stream's snapshot shows both trials ended, then the sweep's end.
  EXPECT_THAT(out_text.Text(), HasSubstr(" sweep 1 'watched': 0 running, 0 pending, 2 of 2 ended"));
  EXPECT_THAT(out_text.Text(), HasSubstr(" sweep 1 finished: 2 trials: 2 succeeded, 0 failed"));
}

// SweepWatch alone: what happened between two looks, however much, comes
// out one event per change in order (requeued attempts, start, each epoch,
// end).
TEST(SweepWatchDiffTest, EverythingBetweenTwoLooksInOrder) {
  std::vector<std::string> asked;
  SweepWatch watch(SweepWatch::Lookups{
      [&](int64_t trial, int32_t attempt) -> absl::StatusOr<AttemptEnd> {
        asked.push_back(absl::StrCat("attempt ", trial, "/", attempt));
        return AttemptEnd{attempt == 1 ? "lost" : "failed", absl::StrCat("reason ", attempt)};
      },
      [&](int64_t trial, int32_t after) -> absl::StatusOr<std::vector<EpochValue>> {
        asked.push_back(absl::StrCat("epochs ", trial, ">", after));
        return std::vector<EpochValue>{{1, 0.5}, {2, std::nullopt}, {3, 0.75}};
      }});
  v1::GetSweepStatusResponse status;
  status.mutable_sweep()->set_state(v1::SWEEP_RUNNING);
  status.mutable_sweep()->set_max_attempts(5);
  v1::TrialStatus* trial = status.add_trials();
  trial->set_trial_id(7);
  trial->set_state(v1::TRIAL_RUNNING);
  trial->set_attempt(1);
  trial->set_worker_id("w-1");
  trial->set_epoch(0);
  trial->set_epochs_total(3);
  trial->set_checkpoint_epoch(-1);
  ASSERT_EQ(watch.Start(status, 10).size(), 1u);

  // Attempt 1 was lost, 2 failed, 3 runs (resumed at epoch 1) and stored
  // epochs 1 to 3, and finished; the sweep finished.
  trial->set_state(v1::TRIAL_SUCCEEDED);
  trial->set_attempt(3);
  trial->set_failures(2);
  trial->set_epoch(3);
  trial->set_metric_value(0.75);
  status.mutable_sweep()->set_state(v1::SWEEP_FINISHED);
  auto events = watch.Update(status, 20);
  ASSERT_TRUE(events.ok()) << events.status();
  std::vector<std::string> seen;
  for (const v1::SweepEvent& e : *events) {
    EXPECT_EQ(e.time_ms(), 20);
    switch (e.event_case()) {
      case v1::SweepEvent::kAttemptRequeued:
        seen.push_back(absl::StrCat("requeued ", e.attempt_requeued().attempt(), " ",
                                    e.attempt_requeued().outcome(), ": ",
                                    e.attempt_requeued().reason(), " (",
                                    e.attempt_requeued().failures(), "/",
                                    e.attempt_requeued().max_attempts(), ")"));
        break;
      case v1::SweepEvent::kEpochReported:
        seen.push_back(absl::StrCat("epoch ", e.epoch_reported().epoch(), " ",
                                    e.epoch_reported().metric_value()));
        break;
      case v1::SweepEvent::kTrialEnded:
        seen.push_back(absl::StrCat("ended ", e.trial_ended().state(), " at ",
                                    e.trial_ended().epoch()));
        break;
      case v1::SweepEvent::kSweepEnded:
        seen.push_back("sweep ended");
        break;
      default:
        seen.push_back(e.DebugString());
    }
  }
  // Attempt 1's start was told by the snapshot; attempt 3 started and
  // ended between the looks, so its start (whose workers are gone) is not.
  EXPECT_THAT(seen, ::testing::ElementsAre("requeued 1 lost: reason 1 (2/5)",
                                           "requeued 2 failed: reason 2 (2/5)", "epoch 1 0.5",
                                           "epoch 2 nan", "epoch 3 0.75", "ended 3 at 3",
                                           "sweep ended"));
  EXPECT_THAT(asked, ::testing::ElementsAre("attempt 7/1", "attempt 7/2", "epochs 7>0"));
  EXPECT_TRUE(watch.ended());
  events = watch.Update(status, 30);
  ASSERT_TRUE(events.ok());
  EXPECT_TRUE(events->empty());
}

}  // namespace
}  // namespace sslsweep
