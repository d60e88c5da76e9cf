// Helpers shared by the Store tests (store_test.cc for sweeps, trials,
// leasing, metrics and results; store_recovery_test.cc for reopening, stale
// attempts, refused files, migration, failed commits and concurrent writers;
// store_lease_test.cc for scheduling, expiry, retries, quarantine and group
// commit): status
// matchers, DirectSql (a second connection to the store's file, to check what
// is really stored), builders for sweeps and trials, and the StoreTest fixture
// that opens a fresh store in its own temporary directory for every test.

#ifndef SSLSWEEP_TESTS_STORE_TEST_UTIL_H_
#define SSLSWEEP_TESTS_STORE_TEST_UTIL_H_

#include <sqlite3.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "coordinator/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sslsweep {

inline const absl::Status& StatusOf(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& result) {
  return result.status();
}

MATCHER(IsOk, "is OK") {
  *result_listener << StatusOf(arg);
  return StatusOf(arg).ok();
}

MATCHER_P2(StatusIs, code, substring, "") {
  const absl::Status& status = StatusOf(arg);
  *result_listener << status;
  return status.code() == code && absl::StrContains(status.message(), substring);
}

// A second connection to the store's file, as a `sqlite3 DB` user has.
class DirectSql {
 public:
  explicit DirectSql(const std::string& path) {
    sqlite3* db = nullptr;
    sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
    db_.reset(db);
    sqlite3_busy_timeout(db, 5000);
  }

  int64_t Int(const std::string& sql) {
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt = Prepare(sql);
    EXPECT_EQ(sqlite3_step(stmt.get()), SQLITE_ROW) << sql << ": " << sqlite3_errmsg(db_.get());
    return sqlite3_column_int64(stmt.get(), 0);
  }

  std::string Text(const std::string& sql) {
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt = Prepare(sql);
    EXPECT_EQ(sqlite3_step(stmt.get()), SQLITE_ROW) << sql << ": " << sqlite3_errmsg(db_.get());
    const unsigned char* text = sqlite3_column_text(stmt.get(), 0);
    return text == nullptr ? "NULL" : reinterpret_cast<const char*>(text);
  }

  void Exec(const std::string& sql) {
    ASSERT_EQ(sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
        << sql << ": " << sqlite3_errmsg(db_.get());
  }

 private:
  struct Closer {
    void operator()(sqlite3* db) const { sqlite3_close(db); }
  };

  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> Prepare(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_.get(), sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
        << sql << ": " << sqlite3_errmsg(db_.get());
    return {stmt, &sqlite3_finalize};
  }

  std::unique_ptr<sqlite3, Closer> db_;
};

inline NewSweep MakeSweep(const std::string& name) {
  NewSweep sweep;
  sweep.name = name;
  sweep.source_yaml = "name: " + name + "\nmethod: grid\n";
  sweep.metric_name = "ncc_test_acc/fine/embedding";
  sweep.metric_goal = "maximize";
  return sweep;
}

inline NewTrial MakeTrial(int32_t index, const std::string& lr) {
  NewTrial trial;
  trial.index = index;
  trial.params = {{"optim.lr", lr}, {"backbone.depth", "3"}};
  trial.config_yaml = "optim:\n  lr: " + lr + "\n";
  trial.epochs = 5;
  return trial;
}

// `count` trials of `epochs` epochs each (metrics go up to that epoch).
inline std::vector<NewTrial> MakeTrials(int count, int32_t epochs = 5) {
  std::vector<NewTrial> trials;
  for (int i = 0; i < count; ++i) {
    trials.push_back(MakeTrial(i, std::to_string(i + 1) + "e-3"));
    trials.back().epochs = epochs;
  }
  return trials;
}

inline constexpr int64_t kLeaseMs = 10000;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "store_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/sweeps.db";
    store_ = OpenStore();
    ASSERT_NE(store_, nullptr);
  }

  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<Store> OpenStore() {
    StoreOptions options;
    options.path = path_;
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options);
    EXPECT_THAT(store, IsOk());
    return store.ok() ? *std::move(store) : nullptr;
  }

  void Reopen() {
    store_.reset();
    store_ = OpenStore();
    ASSERT_NE(store_, nullptr);
  }

  int64_t CreateSweep(const std::string& name, const std::vector<NewTrial>& trials) {
    absl::StatusOr<int64_t> id = store_->CreateSweep(MakeSweep(name), trials, 1000);
    EXPECT_THAT(id, IsOk());
    return id.value_or(-1);
  }

  std::string Register(const std::string& hostname = "gpu-node") {
    absl::StatusOr<std::string> id = store_->RegisterWorker(hostname, 4242, 1000);
    EXPECT_THAT(id, IsOk());
    return id.value_or("");
  }

  TrialRecord Lease(const std::string& worker_id, int64_t now_ms = 2000) {
    absl::StatusOr<std::optional<TrialRecord>> lease =
        store_->LeaseNextTrial(worker_id, now_ms, kLeaseMs);
    EXPECT_THAT(lease, IsOk());
    if (!lease.ok() || !lease->has_value()) {
      ADD_FAILURE() << "nothing leased";
      return TrialRecord();
    }
    return **lease;
  }

  // The trial's worker goes silent: ExpireLeases ends the attempt (lost)
  // and the trial goes back to the queue.
  void LoseLease(const TrialRecord& trial) {
    FailurePolicy never_quarantine;
    never_quarantine.quarantine_after = 0;
    absl::StatusOr<std::vector<ExpiredLease>> expired =
        store_->ExpireLeases(trial.lease_expires_ms + 1, never_quarantine);
    ASSERT_THAT(expired, IsOk());
    ASSERT_EQ(expired->size(), 1u);
    EXPECT_EQ((*expired)[0].trial_id, trial.id);
    EXPECT_TRUE((*expired)[0].requeued);
  }

  // Reports of the trial's current attempt, from the worker holding it.
  absl::StatusOr<RecordedMetrics> Report(const TrialRecord& trial, int32_t epoch,
                                         const std::vector<MetricValue>& metrics) {
    return store_->RecordMetrics(trial.worker_id, trial.id, trial.attempt, epoch, metrics);
  }
  absl::Status Finish(const TrialRecord& trial, int64_t now_ms = 3000) {
    return store_->FinishTrial(trial.worker_id, trial.id, trial.attempt, now_ms);
  }
  absl::StatusOr<FailOutcome> Fail(const TrialRecord& trial, FailureKind kind,
                                   const std::string& reason, int64_t now_ms = 3000,
                                   const FailurePolicy& policy = FailurePolicy()) {
    return store_->FailTrial(trial.worker_id, trial.id, trial.attempt, kind, reason, now_ms,
                             policy);
  }

  std::vector<int64_t> RunningTrialsOf(const std::string& worker_id) {
    absl::StatusOr<WorkerRecord> worker = store_->GetWorker(worker_id);
    EXPECT_THAT(worker, IsOk());
    return worker.ok() ? worker->running_trial_ids : std::vector<int64_t>{};
  }

  int64_t CreateSweepWith(const std::string& name, int trials, int32_t priority,
                          int32_t max_concurrent = 0, int32_t max_attempts = 3) {
    NewSweep sweep = MakeSweep(name);
    sweep.priority = priority;
    sweep.max_concurrent = max_concurrent;
    sweep.max_attempts = max_attempts;
    absl::StatusOr<int64_t> id = store_->CreateSweep(sweep, MakeTrials(trials), 1000);
    EXPECT_THAT(id, IsOk());
    return id.value_or(-1);
  }

  std::optional<TrialRecord> TryLease(const std::string& worker_id, int64_t now_ms = 2000) {
    absl::StatusOr<std::optional<TrialRecord>> lease =
        store_->LeaseNextTrial(worker_id, now_ms, kLeaseMs);
    EXPECT_THAT(lease, IsOk());
    return lease.ok() ? *lease : std::nullopt;
  }

  TrialRecord Trial(int64_t trial_id) {
    absl::StatusOr<TrialRecord> trial = store_->GetTrial(trial_id);
    EXPECT_THAT(trial, IsOk());
    return trial.value_or(TrialRecord());
  }

  WorkerRecord Worker(const std::string& worker_id) {
    absl::StatusOr<WorkerRecord> worker = store_->GetWorker(worker_id);
    EXPECT_THAT(worker, IsOk());
    return worker.value_or(WorkerRecord());
  }

  std::string AttemptColumn(const TrialRecord& trial, int32_t attempt, const std::string& column) {
    return DirectSql(path_).Text("SELECT " + column + " FROM attempts WHERE trial_id = " +
                                 std::to_string(trial.id) +
                                 " AND attempt = " + std::to_string(attempt));
  }

  static FailurePolicy QuarantineAfter(int32_t failures) {
    FailurePolicy policy;
    policy.quarantine_after = failures;
    return policy;
  }

  int64_t Count(const std::string& table) {
    return DirectSql(path_).Int("SELECT count(*) FROM " + table);
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_TESTS_STORE_TEST_UTIL_H_
