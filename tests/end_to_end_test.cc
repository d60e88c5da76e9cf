// Integration: the real sslsweep-coordinator, sslsweep-worker, sslsweep-train
// and sslsweep binaries as processes on loopback ports, a real SQLite file,
// tiny synthetic data. The database is checked with SQLite directly.

#include <signal.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/sslsweep.grpc.pb.h"
#include "tests/test_util.h"
#include "worker/agent/subprocess.h"

namespace sslsweep {
namespace {

using ::testing::HasSubstr;

const std::string kBin = SSLSWEEP_BIN_DIR;

constexpr char kTwoTrialSweep[] = R"(name: e2e
method: grid
parameters:
  seed: {values: [1, 2]}
trial:
  epochs: 2
  threads: 1
  data: {dataset: synthetic, train_samples: 256, test_samples: 128, synthetic_classes: 4,
         synthetic_superclasses: 2}
  backbone: {depth: 2, width: 8}
  projector: {hidden: 64, out: 64}
  optim: {batch_size: 64, lr: 0.002}
)";

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class EndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTempDir("e2e");
    db_ = dir_ + "/sweeps.db";
    const std::string port_file = dir_ + "/port";
    SubprocessOptions spawn;
    spawn.argv = {kBin + "/sslsweep-coordinator", "--listen", "127.0.0.1:0", "--db", db_,
                  "--port-file", port_file, "--heartbeat-ms", "500"};
    spawn.stderr_file = dir_ + "/coordinator.log";
    spawn.stdout_file = dir_ + "/coordinator.out";
    auto coordinator = Subprocess::Spawn(spawn);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = std::move(*coordinator);
    // Wait for the process to report its port (readiness, not elapsed time).
    for (int i = 0; i < 400 && !std::filesystem::exists(port_file); ++i) {
      ASSERT_FALSE(coordinator_->TryWait().has_value()) << "coordinator exited early";
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    int port = 0;
    std::ifstream(port_file) >> port;
    ASSERT_GT(port, 0);
    address_ = "127.0.0.1:" + std::to_string(port);
    stub_ = v1::SweepService::NewStub(
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (worker_) {
      worker_->Signal(SIGKILL);
      worker_->Wait();
    }
    stub_.reset();
    if (coordinator_) {
      coordinator_->Signal(SIGTERM);
      EXPECT_TRUE(coordinator_->Wait().success());
    }
  }

  void StartWorker() {
    SubprocessOptions spawn;
    spawn.argv = {kBin + "/sslsweep-worker", "--coordinator", address_, "--work-dir",
                  dir_ + "/work", "--trainer-threads", "1"};
    spawn.stderr_file = dir_ + "/worker.log";
    auto worker = Subprocess::Spawn(spawn);
    ASSERT_TRUE(worker.ok()) << worker.status();
    worker_ = std::move(*worker);
  }

  CommandResult Cli(std::vector<std::string> args) {
    SubprocessOptions spawn;
    spawn.argv = {kBin + "/sslsweep", "--coordinator", address_};
    spawn.argv.insert(spawn.argv.end(), args.begin(), args.end());
    spawn.capture_stdout = true;
    const std::string err_file = dir_ + "/cli.err";
    std::filesystem::remove(err_file);
    spawn.stderr_file = err_file;
    CommandResult result;
    auto cli = Subprocess::Spawn(spawn);
    if (!cli.ok()) return result;
    std::string line;
    while ((*cli)->ReadLine(&line)) result.out += line + "\n";
    ExitStatus status = (*cli)->Wait();
    result.exit_code = status.exited ? status.code : 128 + status.signal;
    std::ifstream err(err_file);
    result.err.assign(std::istreambuf_iterator<char>(err), std::istreambuf_iterator<char>());
    return result;
  }

  // Polls the sweep's state until it leaves `running` (the trainings take
  // real time; the deadline only bounds a hung run).
  v1::GetSweepStatusResponse AwaitSweep(int64_t sweep_id) {
    v1::GetSweepStatusResponse status;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
    while (std::chrono::steady_clock::now() < deadline) {
      grpc::ClientContext context;
      v1::GetSweepStatusRequest request;
      request.set_sweep_id(sweep_id);
      grpc::Status s = stub_->GetSweepStatus(&context, request, &status);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (s.ok() && status.sweep().state() != v1::SWEEP_RUNNING) return status;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ADD_FAILURE() << "sweep " << sweep_id << " did not finish";
    return status;
  }

  // Rows of a query on the database, each column as text.
  std::vector<std::vector<std::string>> Query(const std::string& sql) {
    sqlite3* db = nullptr;
    std::vector<std::vector<std::string>> rows;
    EXPECT_EQ(sqlite3_open_v2(db_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    while (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
        const unsigned char* text = sqlite3_column_text(stmt, i);
        row.push_back(text ? reinterpret_cast<const char*>(text) : "NULL");
      }
      rows.push_back(std::move(row));
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return rows;
  }

  std::string dir_;
  std::string db_;
  std::string address_;
  std::unique_ptr<Subprocess> coordinator_;
  std::unique_ptr<Subprocess> worker_;
  std::unique_ptr<v1::SweepService::Stub> stub_;
};

TEST_F(EndToEndTest, TwoTrialSweepRunsAndStoresEveryMetricOnce) {
  StartWorker();
  const std::string sweep = WriteFile(dir_ + "/sweep.yaml", kTwoTrialSweep);
  CommandResult submitted = Cli({"submit", sweep});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  EXPECT_EQ(submitted.out, "sweep 1 submitted: 2 trials\n");

  v1::GetSweepStatusResponse status = AwaitSweep(1);
  EXPECT_EQ(status.sweep().state(), v1::SWEEP_FINISHED);
  EXPECT_EQ(status.sweep().trials_succeeded(), 2) << status.DebugString();

  // Every trial succeeded on its first attempt.
  auto trials = Query("SELECT id, state, attempt FROM trials ORDER BY id");
  ASSERT_EQ(trials.size(), 2u);
  for (const auto& t : trials) {
    EXPECT_EQ(t[1], "succeeded");
    EXPECT_EQ(t[2], "1");
  }
  // One row per (trial, epoch, metric), and nothing twice.
  auto counts = Query("SELECT COUNT(*), COUNT(DISTINCT trial_id || '/' || epoch || '/' || name) "
                      "FROM metrics");
  ASSERT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts[0][0], counts[0][1]);
  auto epochs = Query("SELECT trial_id, group_concat(DISTINCT epoch) FROM "
                      "(SELECT * FROM metrics ORDER BY epoch) GROUP BY trial_id ORDER BY trial_id");
  ASSERT_EQ(epochs.size(), 2u);
  EXPECT_EQ(epochs[0][1], "0,1,2");
  EXPECT_EQ(epochs[1][1], "0,1,2");
  // Per trial and measured epoch (0, 1, 2), the default analysis: 6 layers
  // (stage1, stage2, embedding, projector1..3) x 4 targets (sample, fine,
  // coarse, random) x 7 metrics = 168 values; at epochs 1 and 2 also the 4
  // loss values and the epoch time. 3 x 168 + 2 x 5 = 514.
  auto per_trial = Query("SELECT trial_id, COUNT(*), COUNT(DISTINCT name) FROM metrics "
                         "GROUP BY trial_id");
  ASSERT_EQ(per_trial.size(), 2u);
  for (const auto& row : per_trial) {
    EXPECT_EQ(row[1], "514") << "trial " << row[0];
    EXPECT_EQ(row[2], "173") << "trial " << row[0];
  }
  for (const char* name : {"cdnv/random/projector3", "knn_test_acc/sample/stage1",
                           "nc1/coarse/embedding", "linear_test_acc/fine/stage2"}) {
    EXPECT_EQ(Query(absl::StrCat("SELECT COUNT(*) FROM metrics WHERE name = '", name, "'")),
              (std::vector<std::vector<std::string>>{{"6"}}))
        << name;
  }
  auto ncc = Query("SELECT value FROM metrics WHERE name = 'ncc_test_acc/fine/embedding' "
                   "AND epoch = 2 ORDER BY trial_id");
  ASSERT_EQ(ncc.size(), 2u);
  for (const auto& row : ncc) {
    EXPECT_GT(std::stod(row[0]), 0.5) << "synthetic data with 4 classes is easy";
    EXPECT_LE(std::stod(row[0]), 1.0);
  }

  CommandResult results = Cli({"results", "1", "--metrics", "ncc_test_acc/*"});
  ASSERT_EQ(results.exit_code, 0) << results.err;
  EXPECT_THAT(results.out, HasSubstr("ncc_test_acc/fine/embedding"));
  EXPECT_THAT(results.out, HasSubstr("succeeded"));
  EXPECT_EQ(std::count(results.out.begin(), results.out.end(), '\n'), 3);  // header + 2
}

TEST_F(EndToEndTest, CrashedTrainerFailsTheAttemptNotTheWorker) {
  StartWorker();
  // Trial 0 trains on synthetic data; trial 1 points at files that do not
  // exist, so its trainer exits with an error.
  const std::string sweep = WriteFile(dir_ + "/sweep.yaml", R"(name: crash
method: grid
parameters:
  data.dataset: {values: [synthetic, fashion_mnist]}
trial:
  epochs: 1
  data: {root: /nonexistent/fashion, train_samples: 128, test_samples: 64}
  backbone: {depth: 1, width: 4}
  projector: {hidden: 16, out: 16}
  optim: {batch_size: 64}
)");
  ASSERT_EQ(Cli({"submit", sweep}).exit_code, 0);
  v1::GetSweepStatusResponse status = AwaitSweep(1);
  ASSERT_EQ(status.trials_size(), 2);
  EXPECT_EQ(status.trials(0).state(), v1::TRIAL_SUCCEEDED);
  EXPECT_EQ(status.trials(1).state(), v1::TRIAL_FAILED);
  EXPECT_THAT(status.trials(1).failure_reason(), HasSubstr("exit code"));
  EXPECT_THAT(status.trials(1).failure_reason(),
              HasSubstr("/nonexistent/fashion/train-images-idx3-ubyte.gz"));
  EXPECT_FALSE(worker_->TryWait().has_value()) << "the worker must survive";
}

TEST_F(EndToEndTest, BadSweepGetsPositionAndChangesNothing) {
  const std::string bad = WriteFile(dir_ + "/bad.yaml",
                                    "name: bad\nmethod: grid\nparameters:\n"
                                    "  optim.lr: {values: [0.1, -0.01]}\n");
  CommandResult result = Cli({"submit", bad});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("bad.yaml:4:"));
  EXPECT_THAT(result.err, HasSubstr("optim.lr"));

  const std::string malformed = WriteFile(dir_ + "/malformed.yaml", "name: [unclosed\n");
  result = Cli({"submit", malformed});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("malformed.yaml:"));

  result = Cli({"submit", dir_ + "/missing.yaml"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("missing.yaml: No such file"));

  EXPECT_TRUE(Query("SELECT id FROM sweeps").empty());
  EXPECT_TRUE(Query("SELECT id FROM trials").empty());
}

TEST_F(EndToEndTest, UnreachableCoordinatorIsAClearError) {
  SubprocessOptions spawn;
  spawn.argv = {kBin + "/sslsweep", "--coordinator", "127.0.0.1:1", "status", "1"};
  spawn.stderr_file = dir_ + "/unreachable.err";
  auto cli = Subprocess::Spawn(spawn);
  ASSERT_TRUE(cli.ok());
  ExitStatus status = (*cli)->Wait();
  EXPECT_TRUE(status.exited);
  EXPECT_EQ(status.code, 3);
  std::ifstream err(dir_ + "/unreachable.err");
  std::string text((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
  EXPECT_THAT(text, HasSubstr("cannot reach the coordinator at 127.0.0.1:1"));
}

}  // namespace
}  // namespace sslsweep
