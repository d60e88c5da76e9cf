// A fixture for integration tests with real processes: the sslsweep-
// coordinator, sslsweep-worker and sslsweep binaries from build/bin, on
// loopback ports, over a real SQLite file that the test reads with SQLite
// directly. The coordinator can be killed and restarted on the same
// database and port; workers can be killed, stopped and continued.

#ifndef SSLSWEEP_TESTS_PROCESS_TEST_UTIL_H_
#define SSLSWEEP_TESTS_PROCESS_TEST_UTIL_H_

#include <signal.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/sslsweep.grpc.pb.h"
#include "tests/test_util.h"
#include "worker/agent/subprocess.h"

namespace sslsweep {

inline const std::string kBinDir = SSLSWEEP_BIN_DIR;

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class ProcessFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTempDir("processes");
    db_ = dir_ + "/sweeps.db";
  }

  void TearDown() override {
    for (auto& worker : workers_) {
      if (worker == nullptr) continue;
      worker->Signal(SIGCONT);
      worker->Signal(SIGKILL);
      worker->Wait();
    }
    stub_.reset();
    if (coordinator_) {
      coordinator_->Signal(SIGTERM);
      EXPECT_TRUE(coordinator_->Wait().success());
    }
  }

  // Starts the coordinator on the fixture's database, on a free port the
  // first time and on the same port after a restart, and waits until it
  // serves. `flags` are added to its command line.
  void StartCoordinator(const std::vector<std::string>& flags = {}) {
    coordinator_flags_ = flags;
    const std::string port_file = dir_ + "/port";
    std::filesystem::remove(port_file);
    SubprocessOptions spawn;
    spawn.argv = {kBinDir + "/sslsweep-coordinator", "--listen",
                  port_ > 0 ? "127.0.0.1:" + std::to_string(port_) : "127.0.0.1:0", "--db", db_,
                  "--port-file", port_file};
    spawn.argv.insert(spawn.argv.end(), flags.begin(), flags.end());
    spawn.stderr_file = dir_ + "/coordinator.log";
    spawn.stdout_file = dir_ + "/coordinator.out";
    auto coordinator = Subprocess::Spawn(spawn);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = std::move(*coordinator);
    // Readiness, not elapsed time: the port file appears once it serves.
    for (int i = 0; i < 400 && !std::filesystem::exists(port_file); ++i) {
      ASSERT_FALSE(coordinator_->TryWait().has_value())
          << "coordinator exited early: " << ReadFile(dir_ + "/coordinator.log");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    int port = 0;
    std::ifstream(port_file) >> port;
    ASSERT_GT(port, 0);
    port_ = port;
    address_ = "127.0.0.1:" + std::to_string(port);
    stub_ = v1::SweepService::NewStub(
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  }

  // kill -9 and a restart on the same database, port and flags.
  void KillAndRestartCoordinator() {
    stub_.reset();
    coordinator_->Signal(SIGKILL);
    coordinator_->Wait();
    coordinator_.reset();
    StartCoordinator(coordinator_flags_);
  }

  // Starts worker number workers_.size(); its log is worker-<n>.log. Returns n.
  size_t StartWorker(const std::vector<std::string>& flags = {}) {
    const size_t n = workers_.size();
    SubprocessOptions spawn;
    spawn.argv = {kBinDir + "/sslsweep-worker", "--coordinator", address_, "--work-dir",
                  dir_ + "/work-" + std::to_string(n), "--trainer-threads", "1"};
    spawn.argv.insert(spawn.argv.end(), flags.begin(), flags.end());
    spawn.stderr_file = WorkerLog(n);
    auto worker = Subprocess::Spawn(spawn);
    EXPECT_TRUE(worker.ok()) << worker.status();
    workers_.push_back(worker.ok() ? std::move(*worker) : nullptr);
    return n;
  }

  std::string WorkerLog(size_t n) const { return dir_ + "/worker-" + std::to_string(n) + ".log"; }

  CommandResult Cli(std::vector<std::string> args) {
    SubprocessOptions spawn;
    spawn.argv = {kBinDir + "/sslsweep", "--coordinator", address_};
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
    result.err = ReadFile(err_file);
    return result;
  }

  // Polls the sweep's state until it leaves `running` (the trainings take
  // real time; the deadline only bounds a hung run).
  v1::GetSweepStatusResponse AwaitSweep(int64_t sweep_id, int timeout_s = 240) {
    v1::GetSweepStatusResponse status;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      v1::GetSweepStatusRequest request;
      request.set_sweep_id(sweep_id);
      grpc::Status s = stub_->GetSweepStatus(&context, request, &status);
      if (s.ok() && status.sweep().state() != v1::SWEEP_RUNNING) return status;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ADD_FAILURE() << "sweep " << sweep_id << " did not finish: " << status.DebugString();
    return status;
  }

  // Polls until `done()` or the deadline; returns whether it became true.
  static bool AwaitCondition(const std::function<bool()>& done, int timeout_s = 120) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return done();
  }

  // Rows of a query on the database (read-only, while the coordinator may
  // be writing: WAL), each column as text; NULL as "NULL".
  std::vector<std::vector<std::string>> Query(const std::string& sql) const {
    sqlite3* db = nullptr;
    std::vector<std::vector<std::string>> rows;
    if (sqlite3_open_v2(db_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      sqlite3_close(db);
      return rows;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db) << " in " << sql;
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

  // The single value of a query, or "" if it returned no row.
  std::string QueryValue(const std::string& sql) const {
    auto rows = Query(sql);
    return rows.empty() || rows[0].empty() ? "" : rows[0][0];
  }

  std::string dir_;
  std::string db_;
  std::string address_;
  int port_ = 0;
  std::vector<std::string> coordinator_flags_;
  std::unique_ptr<Subprocess> coordinator_;
  std::vector<std::unique_ptr<Subprocess>> workers_;
  std::unique_ptr<v1::SweepService::Stub> stub_;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_TESTS_PROCESS_TEST_UTIL_H_
