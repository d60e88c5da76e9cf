// Integration: the real sslsweep-coordinator, sslsweep-worker, sslsweep-train
// and sslsweep binaries as processes on loopback ports, a real SQLite file,
// tiny synthetic data. The database is checked with SQLite directly.

#include <fstream>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/process_test_util.h"

namespace sslsweep {
namespace {

using ::testing::HasSubstr;

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

class EndToEndTest : public ProcessFixture {
 protected:
  void SetUp() override {
    ProcessFixture::SetUp();
    StartCoordinator({"--heartbeat-ms", "500"});
  }
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

TEST_F(EndToEndTest, ResultsAggregatesSeedsPerGroup) {
  StartWorker();
  const std::string sweep = WriteFile(dir_ + "/lr.yaml", R"(name: lr
method: grid
parameters:
  optim.lr: {values: [0.002, 0.004]}
  seed: {values: [1, 2]}
trial:
  epochs: 1
  threads: 1
  data: {dataset: synthetic, train_samples: 128, test_samples: 64, synthetic_classes: 4,
         synthetic_superclasses: 2}
  backbone: {depth: 1, width: 4}
  projector: {hidden: 16, out: 16}
  optim: {batch_size: 64}
  analysis: {layers: embedding, targets: fine, metrics: ncc}
)");
  ASSERT_EQ(Cli({"submit", sweep}).exit_code, 0);
  ASSERT_EQ(AwaitSweep(1).sweep().trials_succeeded(), 4);

  // The default metrics, one row per learning rate over its two seeds.
  CommandResult grouped = Cli({"results", "1", "--group-by", "optim.lr", "--format", "csv"});
  ASSERT_EQ(grouped.exit_code, 0) << grouped.err;
  std::vector<std::string> lines = absl::StrSplit(grouped.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << grouped.out;
  EXPECT_EQ(lines[0],
            "optim.lr,epoch,loss/total.mean,loss/total.std,loss/total.n,"
            "ncc_test_acc/fine/embedding.mean,ncc_test_acc/fine/embedding.std,"
            "ncc_test_acc/fine/embedding.n");
  EXPECT_THAT(lines[1], ::testing::StartsWith("0.002,1,"));
  EXPECT_THAT(lines[1], ::testing::EndsWith(",2"));
  EXPECT_THAT(lines[2], ::testing::StartsWith("0.004,1,"));

  // The coordinator's refusals: a message on stderr, nothing on stdout, exit 2.
  CommandResult unknown = Cli({"results", "1", "--group-by", "optim.momentum"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_EQ(unknown.out, "");
  EXPECT_THAT(unknown.err, HasSubstr("sslsweep: group_by: unknown parameter 'optim.momentum'"));
  CommandResult sort = Cli({"results", "1", "--group-by", "optim.lr", "--sort", "accuracy"});
  EXPECT_EQ(sort.exit_code, 2);
  EXPECT_EQ(sort.out, "");
  EXPECT_THAT(sort.err, HasSubstr("sslsweep: --sort 'accuracy': no such column"));
}

TEST_F(EndToEndTest, WatchFollowsTheSweepAndExportWritesEveryRow) {
  const std::string sweep = WriteFile(dir_ + "/watch.yaml", R"(name: watched
method: grid
metric: {name: ncc_test_acc/fine/embedding, goal: maximize}
parameters:
  seed: {values: [1, 2]}
trial:
  epochs: 2
  threads: 1
  data: {dataset: synthetic, train_samples: 128, test_samples: 64, synthetic_classes: 4,
         synthetic_superclasses: 2}
  backbone: {depth: 1, width: 4}
  projector: {hidden: 16, out: 16}
  optim: {batch_size: 64, lr: 0.002}
  analysis: {layers: embedding, targets: fine, metrics: ncc}
)");
  ASSERT_EQ(Cli({"submit", sweep}).exit_code, 0);
  StartWorker();
  // stdout is a pipe: plain lines, one per event, until the sweep ends.
  CommandResult watched = Cli({"watch", "1"});
  ASSERT_EQ(watched.exit_code, 0) << watched.err << watched.out;
  EXPECT_EQ(watched.out.find('\x1b'), std::string::npos) << watched.out;
  std::vector<std::string> lines = absl::StrSplit(watched.out, '\n', absl::SkipEmpty());
  ASSERT_GE(lines.size(), 2u) << watched.out;
  const std::string time = "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z ";
  for (const std::string& line : lines) EXPECT_THAT(line, ::testing::MatchesRegex(time + ".*"));
  for (int trial : {1, 2}) {
    for (int epoch : {0, 1, 2}) {
      EXPECT_THAT(lines, ::testing::Contains(::testing::MatchesRegex(absl::StrCat(
                             time, "trial ", trial, " epoch ", epoch,
                             "/2 ncc_test_acc/fine/embedding=[01]\\.[0-9]{4}"))))
          << watched.out;
    }
    EXPECT_THAT(lines, ::testing::Contains(::testing::MatchesRegex(
                           absl::StrCat(time, "trial ", trial, " succeeded at epoch 2/2 .*"))))
        << watched.out;
  }
  EXPECT_THAT(lines.back(),
              ::testing::MatchesRegex(
                  time + "sweep 1 finished: 2 trials: 2 succeeded, 0 failed, 0 pruned, 0 cancelled"));

  CommandResult exported = Cli({"export", "1", "--format", "csv"});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  std::vector<std::string> rows = absl::StrSplit(exported.out, '\n', absl::SkipEmpty());
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0], "trial_id,state,seed,epoch,metric,target,layer,name,value");
  EXPECT_EQ(std::to_string(rows.size() - 1), QueryValue("SELECT count(*) FROM metrics"));
  EXPECT_THAT(rows[1], ::testing::StartsWith("1,succeeded,1,0,"));

  CommandResult unknown = Cli({"export", "1", "--metric", "nope/*"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_EQ(unknown.out, "");
  EXPECT_THAT(unknown.err, HasSubstr("sslsweep: metrics: 'nope/*' matches no metric of sweep 1"));
  CommandResult missing = Cli({"watch", "9"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.err, "sslsweep: no sweep 9\n");
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
  // A missing data file may be this node's problem: retried up to the
  // default max_attempts (3), then failed with the trainer's reason.
  EXPECT_EQ(status.trials(1).attempt(), 3);
  EXPECT_EQ(status.trials(1).failures(), 3);
  EXPECT_THAT(status.trials(1).failure_reason(), HasSubstr("exit code"));
  EXPECT_THAT(status.trials(1).failure_reason(),
              HasSubstr("/nonexistent/fashion/train-images-idx3-ubyte.gz"));
  EXPECT_FALSE(workers_[0]->TryWait().has_value()) << "the worker must survive";
}

TEST_F(EndToEndTest, LocalRunsAGangOfTwoWorkersAndRefusesTooFewWorkers) {
  const std::string sweep = WriteFile(dir_ + "/gang.yaml", R"(name: gang
method: grid
resources: {ranks: 2}
parameters:
  seed: {values: [1, 2]}
trial:
  epochs: 2
  data: {dataset: synthetic, train_samples: 256, test_samples: 128, synthetic_classes: 4,
         synthetic_superclasses: 2}
  backbone: {depth: 2, width: 8}
  projector: {hidden: 32, out: 32}
  optim: {batch_size: 64}
  analysis: {layers: embedding, targets: fine, metrics: ncc}
)");
  CommandResult refused = Cli({"local", sweep, "--db", dir_ + "/refused.db", "--workers", "1"});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_THAT(refused.err, HasSubstr("gang.yaml: its trials run on 2 ranks (resources.ranks), "
                                     "one worker each, but --workers is 1"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/refused.db"));

  // Both trials run, one after the other, each on both workers as a gang.
  CommandResult local = Cli({"local", sweep, "--db", dir_ + "/gang.db", "--workers", "2"});
  EXPECT_EQ(local.exit_code, 0) << local.err;
  EXPECT_THAT(local.out, HasSubstr("2 succeeded"));
  db_ = dir_ + "/gang.db";
  EXPECT_EQ(Query("SELECT t.state, t.ranks, a.worker_id <> r.worker_id, a.master_address "
                  "FROM trials t JOIN attempts a ON a.trial_id = t.id "
                  "JOIN attempt_ranks r ON r.trial_id = t.id AND r.attempt = a.attempt "
                  "ORDER BY t.idx"),
            (std::vector<std::vector<std::string>>{{"succeeded", "2", "1", "127.0.0.1"},
                                                   {"succeeded", "2", "1", "127.0.0.1"}}));
  EXPECT_EQ(Query("SELECT COUNT(DISTINCT epoch) FROM metrics GROUP BY trial_id"),
            (std::vector<std::vector<std::string>>{{"3"}, {"3"}}));
  // The two workers share the work directory; each rank trains in its own.
  for (const char* rank : {"rank-0", "rank-1"}) {
    const std::filesystem::path rank_dir =
        std::filesystem::path(dir_) / "gang.db.work" / "trial-2" / "attempt-1" / rank;
    EXPECT_TRUE(std::filesystem::exists(rank_dir / "checkpoint.pt")) << rank_dir;
  }
}

TEST_F(EndToEndTest, HyperbandPrunesTheTrialsFarBehind) {
  // sweeps/hyperband-demo.yaml through `sslsweep local`: two workers, the two
  // good learning rates first; the two tiny ones fall below the best half at
  // a band and are pruned, with the reason; the run still counts as a success.
  CommandResult local = Cli({"local", std::string(SSLSWEEP_SOURCE_DIR) +
                                          "/sweeps/hyperband-demo.yaml",
                             "--db", dir_ + "/hyperband.db", "--workers", "2"});
  EXPECT_EQ(local.exit_code, 0) << local.err;
  EXPECT_THAT(local.out, HasSubstr("2 succeeded"));
  EXPECT_THAT(local.out, HasSubstr("2 pruned"));
  db_ = dir_ + "/hyperband.db";
  EXPECT_EQ(Query("SELECT state FROM trials ORDER BY idx"),
            (std::vector<std::vector<std::string>>{
                {"succeeded"}, {"succeeded"}, {"pruned"}, {"pruned"}}));
  for (const auto& row : Query("SELECT failure_reason, (SELECT MAX(epoch) FROM metrics "
                               "WHERE trial_id = trials.id) FROM trials WHERE state = 'pruned'")) {
    EXPECT_THAT(row[0], HasSubstr("hyperband: ncc_test_acc/fine/embedding"));
    EXPECT_LT(std::stoi(row[1]), 6) << "pruned before its last epoch";
  }
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
  spawn.argv = {kBinDir + "/sslsweep", "--coordinator", "127.0.0.1:1", "status", "1"};
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
