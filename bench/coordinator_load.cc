// sslsweep-bench-coordinator: issue 5's load benchmark. N simulated workers
// (threads, no training) against one running coordinator, reporting metric
// rows per second and the latency of each worker RPC.
//
//   sslsweep-bench-coordinator --coordinator 127.0.0.1:PORT [--workers 50]
//       [--epochs 10] [--metrics-per-epoch 200] [--duration 20] [--trials 0]
//       [--rate 0] [--heartbeat-ms 0] [--table]
//
// It starts nothing: bench/coordinator_load.sh starts the coordinator and
// submits a sweep with enough trials. Each worker is a thread with its own
// channel (its own TCP connection, as separate machines would have) that
// calls RegisterWorker once, then loops LeaseTrial, one ReportMetrics of
// --metrics-per-epoch rows per epoch for --epochs epochs, FinishTrial; and
// sends a Heartbeat (with its running trial) whenever the heartbeat interval
// has passed, checked before each call; the workers' heartbeats are spread
// over the interval. The interval is the one the
// coordinator hands out at registration, unless --heartbeat-ms overrides it.
// Workers start together once all have registered, and run until --duration
// seconds have passed or --trials trials have been leased and finished
// (whichever comes first; 0 turns either off; --trials alone needs a sweep
// with that many pending trials, or the workers wait for more).
//
// Two kinds of run. Without --rate, workers report as fast as the
// coordinator answers: that measures its capacity, and by Little's law each
// call then waits about workers / (calls per second), so latencies at
// saturation say how deep the queue is, not how fast a call is. With --rate
// R, the workers offer R rows per second in all: each reports every
// workers * M / R seconds (as if an epoch took that long to train), on a
// fixed schedule staggered across workers (each leases its first trial at
// its offset in the first interval), catching up at once when a call made it
// late; the latencies are then those at that load, and rows_per_s
// falls short of R when the coordinator cannot keep up.
//
// A row is one acknowledged metric value (ReportMetricsResponse.rows_written).
// Prints one JSON line to stdout:
//   {"system":"sslsweep","workers":N,"epochs":E,"metrics_per_epoch":M,"rate":R,
//    "seconds":..,"trials":..,"rows":..,"rows_per_s":..,
//    "rows_per_s_min_1s":..,"lease_ms":{"p50":..,"p99":..,"max":..,"n":..},
//    "report_ms":{..},"finish_ms":{..},"heartbeat_ms":{..},
//    "idle_leases":..,"errors":..,"error_kinds":{"ReportMetrics/UNAVAILABLE":..}}
// where rows_per_s_min_1s is the slowest whole second of the run; with
// --table also a table for people, on stderr. Exit code 0 when the run
// completed (errors are counted, not fatal), 1 when a worker could not
// register, 2 on bad flags.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "grpcpp/grpcpp.h"
#include "proto/sslsweep.grpc.pb.h"

namespace sslsweep {
namespace {

using Clock = std::chrono::steady_clock;

struct LoadOptions {
  std::string coordinator;
  int workers = 50;
  int epochs = 10;
  int metrics_per_epoch = 200;
  double duration_s = 20;
  int64_t trials = 0;
  double rate = 0;       // rows per second offered in all; 0: as fast as possible
  int heartbeat_ms = 0;  // 0: as the coordinator says
  bool table = false;
};

// Every call gets a deadline, so a stuck coordinator ends the run as errors
// rather than hanging it.
constexpr auto kCallDeadline = std::chrono::seconds(30);
// The longest a second-by-second throughput series can run.
constexpr int kMaxSeconds = 24 * 3600;

enum Rpc { kRegister, kLease, kReport, kFinish, kHeartbeat, kRpcCount };
constexpr const char* kRpcNames[kRpcCount] = {
    "RegisterWorker", "LeaseTrial", "ReportMetrics", "FinishTrial", "Heartbeat"};

double MillisecondsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// What one worker measured; merged once all have stopped.
struct WorkerResult {
  std::vector<float> latency_ms[kRpcCount];
  std::map<std::string, int64_t> errors;  // "<rpc>/<code>"
  std::string first_error;
  int64_t rows = 0;
  int64_t trials = 0;
  int64_t idle_leases = 0;
  bool registered = false;
};

// State shared by the workers of one run.
class Run {
 public:
  explicit Run(const LoadOptions& options)
      : options_(options),
        registered_(options.workers),
        rows_by_second_(std::min<int64_t>(
            kMaxSeconds, options.duration_s > 0
                             ? static_cast<int64_t>(options.duration_s) + 2
                             : kMaxSeconds)) {}

  const LoadOptions& options() const { return options_; }

  // Called by each worker once registered (or given up); the last one
  // starts the clock and releases them all.
  void ArriveAndWait() {
    if (registered_.DecrementCount()) {
      start_ = Clock::now();
      started_.Notify();
    }
    started_.WaitForNotification();
  }

  Clock::time_point start() const { return start_; }

  bool TimeIsUp() const {
    return options_.duration_s > 0 &&
           Clock::now() - start_ >= std::chrono::duration<double>(options_.duration_s);
  }

  // Claims one of --trials trials; false once all are claimed.
  bool ClaimTrial() {
    if (options_.trials <= 0) return true;
    return claimed_trials_.fetch_add(1) < options_.trials;
  }

  void AddRows(int64_t rows) {
    const auto second =
        std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start_);
    const size_t index = static_cast<size_t>(second.count());
    if (index < rows_by_second_.size()) rows_by_second_[index].fetch_add(rows);
  }

  // Rows in whole second i of the run.
  int64_t RowsInSecond(size_t i) const { return rows_by_second_[i].load(); }

 private:
  const LoadOptions options_;
  absl::BlockingCounter registered_;
  absl::Notification started_;
  Clock::time_point start_;  // written before started_ is notified
  std::atomic<int64_t> claimed_trials_{0};
  std::vector<std::atomic<int64_t>> rows_by_second_;
};

// One simulated worker: a thread's worth of the agent's RPC pattern.
class SimulatedWorker {
 public:
  SimulatedWorker(Run* run, int index) : run_(run), index_(index) {}

  WorkerResult Work() {
    grpc::ChannelArguments args;
    // Its own connection, not one shared by every channel of the process.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    stub_ = v1::WorkerService::NewStub(grpc::CreateCustomChannel(
        run_->options().coordinator, grpc::InsecureChannelCredentials(), args));
    const bool registered = Register();
    run_->ArriveAndWait();
    if (!registered) return std::move(result_);
    result_.registered = true;
    // Staggered like the reports below: workers that started at different
    // times do not heartbeat in step, and 500 heartbeats at one instant
    // every interval would measure a burst no cluster makes.
    next_heartbeat_ =
        run_->start() + heartbeat_interval_ * (index_ + 1) / run_->options().workers;
    if (run_->options().rate > 0) {
      const LoadOptions& o = run_->options();
      report_interval_ =
          std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
              o.workers * static_cast<double>(o.metrics_per_epoch) / o.rate));
      // Staggered, so that the workers' leases and reports spread over the
      // interval instead of arriving all at once.
      next_report_ = run_->start() + report_interval_ * index_ / o.workers;
      IdleUntil(next_report_, 0);
    }
    while (!run_->TimeIsUp() && run_->ClaimTrial()) {
      if (!RunOneTrial()) break;
    }
    return std::move(result_);
  }

 private:
  // Times one call of `method` and counts its failure. True on OK.
  template <typename Request, typename Response, typename Method>
  bool Call(Rpc rpc, Method method, const Request& request, Response* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    const Clock::time_point start = Clock::now();
    const grpc::Status status = (stub_.get()->*method)(&context, request, response);
    result_.latency_ms[rpc].push_back(static_cast<float>(MillisecondsSince(start)));
    if (status.ok()) return true;
    const std::string key =
        absl::StrCat(kRpcNames[rpc], "/", CodeName(status.error_code()));
    if (result_.errors[key]++ == 0 && result_.first_error.empty()) {
      result_.first_error = absl::StrCat(key, ": ", status.error_message());
    }
    return false;
  }

  static std::string CodeName(grpc::StatusCode code) {
    switch (code) {
      case grpc::StatusCode::CANCELLED: return "CANCELLED";
      case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
      case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
      case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
      case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
      case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
      case grpc::StatusCode::INTERNAL: return "INTERNAL";
      case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
      default: return absl::StrCat("CODE_", static_cast<int>(code));
    }
  }

  bool Register() {
    v1::RegisterWorkerRequest request;
    request.set_hostname(absl::StrCat("bench-worker-", index_));
    request.set_pid(index_ + 1);
    v1::RegisterWorkerResponse response;
    // The coordinator may still be warming up; a few tries.
    for (int attempt = 0; attempt < 5; ++attempt) {
      if (Call(kRegister, &v1::WorkerService::Stub::RegisterWorker, request, &response)) {
        worker_id_ = response.worker_id();
        const int interval_ms = run_->options().heartbeat_ms > 0
                                    ? run_->options().heartbeat_ms
                                    : std::max(100, response.heartbeat_interval_ms());
        heartbeat_interval_ = std::chrono::milliseconds(interval_ms);
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  }

  void HeartbeatIfDue(int64_t running_trial_id) {
    const Clock::time_point now = Clock::now();
    if (now < next_heartbeat_) return;
    // On the worker's own beat, unless a slow call made it skip one.
    next_heartbeat_ += heartbeat_interval_;
    if (next_heartbeat_ <= now) next_heartbeat_ = now + heartbeat_interval_;
    v1::HeartbeatRequest request;
    request.set_worker_id(worker_id_);
    if (running_trial_id > 0) request.add_running_trial_ids(running_trial_id);
    v1::HeartbeatResponse response;
    Call(kHeartbeat, &v1::WorkerService::Stub::Heartbeat, request, &response);
  }

  // Waits until `until` (cut short when the run ends), heartbeating on time.
  void IdleUntil(Clock::time_point until, int64_t running_trial_id) {
    while (Clock::now() < until && !run_->TimeIsUp()) {
      HeartbeatIfDue(running_trial_id);
      const auto step =
          std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(50));
      std::this_thread::sleep_for(step);
    }
  }

  // Leases and runs one trial. False when the run should end for this worker
  // (time is up while waiting for a trial).
  bool RunOneTrial() {
    v1::TrialAssignment trial;
    for (;;) {
      HeartbeatIfDue(0);
      v1::LeaseTrialRequest request;
      request.set_worker_id(worker_id_);
      v1::LeaseTrialResponse response;
      if (Call(kLease, &v1::WorkerService::Stub::LeaseTrial, request, &response) &&
          response.granted()) {
        trial = response.trial();
        break;
      }
      ++result_.idle_leases;
      IdleUntil(Clock::now() +
                    std::chrono::milliseconds(std::max(10, response.retry_after_ms())),
                0);
      if (run_->TimeIsUp()) return false;
    }

    v1::ReportMetricsRequest report;
    report.set_worker_id(worker_id_);
    report.set_trial_id(trial.trial_id());
    report.set_attempt(trial.attempt());
    for (int m = 0; m < run_->options().metrics_per_epoch; ++m) {
      v1::Metric* metric = report.add_metrics();
      // Shaped like the trainer's names: <metric>/<target>/<layer>.
      metric->set_name(absl::StrCat("bench_metric_", m, "/fine/embedding"));
    }
    for (int epoch = 0; epoch < run_->options().epochs; ++epoch) {
      if (run_->TimeIsUp()) return true;
      if (report_interval_.count() > 0) {
        IdleUntil(next_report_, trial.trial_id());
        if (run_->TimeIsUp()) return true;
        next_report_ += report_interval_;
      }
      HeartbeatIfDue(trial.trial_id());
      report.set_epoch(epoch);
      for (int m = 0; m < report.metrics_size(); ++m) {
        report.mutable_metrics(m)->set_value(1.0 / (1 + epoch) + 0.001 * m);
      }
      v1::ReportMetricsResponse response;
      if (!Call(kReport, &v1::WorkerService::Stub::ReportMetrics, report, &response)) {
        return true;  // the trial is lost to this worker (e.g. a stale attempt)
      }
      result_.rows += response.rows_written();
      run_->AddRows(response.rows_written());
    }
    HeartbeatIfDue(trial.trial_id());
    v1::FinishTrialRequest finish;
    finish.set_worker_id(worker_id_);
    finish.set_trial_id(trial.trial_id());
    finish.set_attempt(trial.attempt());
    v1::FinishTrialResponse finished;
    if (Call(kFinish, &v1::WorkerService::Stub::FinishTrial, finish, &finished)) {
      ++result_.trials;
    }
    return true;
  }

  Run* const run_;
  const int index_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  std::string worker_id_;
  std::chrono::milliseconds heartbeat_interval_{5000};
  Clock::time_point next_heartbeat_;
  Clock::duration report_interval_{0};  // with --rate
  Clock::time_point next_report_;
  WorkerResult result_;
};

struct LatencySummary {
  double p50 = 0, p99 = 0, max = 0;
  size_t n = 0;
};

LatencySummary Summarize(std::vector<float> values) {
  LatencySummary s;
  s.n = values.size();
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  auto at = [&](double q) {
    return values[std::min(values.size() - 1, static_cast<size_t>(q * values.size()))];
  };
  s.p50 = at(0.5);
  s.p99 = at(0.99);
  s.max = values.back();
  return s;
}

std::string Json(const LatencySummary& s) {
  return absl::StrFormat(R"({"p50":%.3f,"p99":%.3f,"max":%.3f,"n":%d})", s.p50, s.p99,
                         s.max, s.n);
}

int RunLoad(const LoadOptions& options) {
  Run run(options);
  std::vector<WorkerResult> results(options.workers);
  std::vector<std::thread> threads;
  threads.reserve(options.workers);
  for (int i = 0; i < options.workers; ++i) {
    threads.emplace_back(
        [&run, &results, i] { results[i] = SimulatedWorker(&run, i).Work(); });
  }
  for (std::thread& thread : threads) thread.join();
  const double seconds =
      std::chrono::duration<double>(Clock::now() - run.start()).count();

  std::vector<float> latencies[kRpcCount];
  std::map<std::string, int64_t> errors;
  int64_t rows = 0, trials = 0, idle_leases = 0, error_count = 0;
  int unregistered = 0;
  std::string first_error;
  for (WorkerResult& r : results) {
    for (int rpc = 0; rpc < kRpcCount; ++rpc) {
      latencies[rpc].insert(latencies[rpc].end(), r.latency_ms[rpc].begin(),
                            r.latency_ms[rpc].end());
    }
    for (const auto& [key, count] : r.errors) {
      errors[key] += count;
      error_count += count;
    }
    if (first_error.empty()) first_error = r.first_error;
    rows += r.rows;
    trials += r.trials;
    idle_leases += r.idle_leases;
    if (!r.registered) ++unregistered;
  }
  // The slowest whole second; the last, partial one is left out.
  int64_t min_rows_per_second = -1;
  for (size_t i = 0; i + 1 < static_cast<size_t>(seconds); ++i) {
    const int64_t in_second = run.RowsInSecond(i);
    if (min_rows_per_second < 0 || in_second < min_rows_per_second) {
      min_rows_per_second = in_second;
    }
  }
  LatencySummary summary[kRpcCount];
  for (int rpc = 0; rpc < kRpcCount; ++rpc) summary[rpc] = Summarize(latencies[rpc]);
  const double rows_per_s = seconds > 0 ? rows / seconds : 0;

  std::string error_kinds;
  for (const auto& [key, count] : errors) {
    absl::StrAppend(&error_kinds, error_kinds.empty() ? "" : ",", "\"", key,
                    "\":", count);
  }
  std::cout
      << absl::StrFormat(
             R"({"system":"sslsweep","workers":%d,"epochs":%d,"metrics_per_epoch":%d,"rate":%.1f,)"
             R"("seconds":%.3f,"trials":%d,"rows":%d,"rows_per_s":%.1f,)"
             R"("rows_per_s_min_1s":%d,"lease_ms":%s,"report_ms":%s,"finish_ms":%s,)"
             R"("heartbeat_ms":%s,"register_ms":%s,"idle_leases":%d,"errors":%d,)"
             R"("error_kinds":{%s}})",
             options.workers, options.epochs, options.metrics_per_epoch, options.rate,
             seconds, trials, rows, rows_per_s, min_rows_per_second,
             Json(summary[kLease]), Json(summary[kReport]), Json(summary[kFinish]),
             Json(summary[kHeartbeat]), Json(summary[kRegister]), idle_leases,
             error_count, error_kinds)
      << std::endl;
  if (options.table) {
    std::cerr << absl::StrFormat(
        "sslsweep coordinator at %s, %d workers x (%d epochs x %d metrics): %d trials, "
        "%d rows in %.1f s = %.0f rows/s (slowest second %d; %s)\n",
        options.coordinator, options.workers, options.epochs, options.metrics_per_epoch,
        trials, rows, seconds, rows_per_s, min_rows_per_second,
        options.rate > 0 ? absl::StrFormat("%.0f rows/s offered", options.rate)
                         : std::string("as fast as it answers"));
    for (int rpc : {kLease, kReport, kFinish, kHeartbeat}) {
      std::cerr << absl::StrFormat(
          "  %-14s p50 %8.2f ms   p99 %8.2f ms   max %8.2f ms   n %d\n", kRpcNames[rpc],
          summary[rpc].p50, summary[rpc].p99, summary[rpc].max, summary[rpc].n);
    }
    if (idle_leases > 0) {
      std::cerr << "  " << idle_leases
                << " leases found no pending trial: submit a sweep with more trials\n";
    }
    for (const auto& [key, count] : errors) {
      std::cerr << "  error x" << count << ": " << key << "\n";
    }
    if (!first_error.empty()) std::cerr << "  first error: " << first_error << "\n";
  }
  if (unregistered > 0) {
    std::cerr << "sslsweep-bench-coordinator: " << unregistered
              << " workers could not register with " << options.coordinator
              << (first_error.empty() ? "" : absl::StrCat(" (", first_error, ")"))
              << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace sslsweep

int main(int argc, char** argv) {
  sslsweep::LoadOptions options;
  CLI::App app{"sslsweep coordinator load benchmark: simulated workers, no training"};
  app.add_option("--coordinator", options.coordinator, "coordinator HOST:PORT")
      ->required();
  app.add_option("--workers", options.workers, "simulated workers (threads)")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--epochs", options.epochs, "epochs per trial")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--metrics-per-epoch", options.metrics_per_epoch,
                 "metric rows in each epoch's ReportMetrics")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--duration", options.duration_s, "seconds to run; 0: until --trials")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  app.add_option("--trials", options.trials, "trials to run in all; 0: until --duration")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--rate", options.rate,
                 "metric rows per second offered by all workers together; 0: as fast as "
                 "the coordinator answers")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--heartbeat-ms", options.heartbeat_ms,
                 "heartbeat interval; 0: the one the coordinator hands out")
      ->check(CLI::Range(0, 3600000))
      ->capture_default_str();
  app.add_flag("--table", options.table, "also print a table to stderr");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (options.duration_s <= 0 && options.trials <= 0) {
    std::cerr << "sslsweep-bench-coordinator: give --duration or --trials (or both)\n";
    return 2;
  }
  return sslsweep::RunLoad(options);
}
