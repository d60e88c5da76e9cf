// `sslsweep ls` and `results` end to end in every --format: a fixture sweep
// reported into a real SQLite store through the Coordinator, served over
// gRPC on loopback, printed by the commands exactly as a user sees them.
// The values are chosen so that each aggregate is checked by hand.

#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/sweep_client.h"
#include "coordinator/grpc_services.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator_test_util.h"

namespace sslsweep {
namespace {

class ResultsCommandTest : public CoordinatorFixture {
 protected:
  void SetUp() override {
    CoordinatorFixture::SetUp();
    Submit(LrBySeedSweep("fixture"));
    const std::string worker = Register();
    // Trial i + 1 (i = 0..3: lr 0.01, 0.01, 0.001, 0.001; seed 1, 2, 1, 2)
    // at epoch e: fine at stage1 0.5 + 0.1 e + 0.01 i, at the embedding
    // 0.6 + 0.1 e + 0.01 i; random at the embedding 0.1 + 0.01 i; loss
    // 3 - e + 0.1 i.
    for (int i = 0; i < 4; ++i) {
      const v1::TrialAssignment trial = Lease(worker);
      for (int epoch = 0; epoch <= 2; ++epoch) {
        ASSERT_TRUE(Report(worker, trial, epoch,
                           {{"ncc_test_acc/fine/stage1", 0.5 + 0.1 * epoch + 0.01 * i},
                            {"ncc_test_acc/fine/embedding", 0.6 + 0.1 * epoch + 0.01 * i},
                            {"ncc_test_acc/random/embedding", 0.1 + 0.01 * i},
                            {"loss/total", 3.0 - epoch + 0.1 * i}})
                        .ok());
      }
      ASSERT_TRUE(Finish(worker, trial).ok());
    }
    auto server = CoordinatorServer::Start(coordinator_.get(), "127.0.0.1:0");
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_ = std::make_unique<SweepClient>(absl::StrCat("127.0.0.1:", server_->port()));
  }

  void TearDown() override {
    client_.reset();
    if (server_ != nullptr) server_->Shutdown();
  }

  // What `results` prints for these options and format; fails the test on
  // a non-zero exit.
  std::string Results(ResultsCommandOptions options, OutputFormat format) {
    options.query.set_sweep_id(1);
    options.view.format = format;
    options.view.epoch = options.query.epoch();
    std::ostringstream out;
    std::ostringstream err;
    EXPECT_EQ(ResultsCommand(*client_, options, out, err), kExitOk) << err.str();
    return out.str();
  }

  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<SweepClient> client_;
};

TEST_F(ResultsCommandTest, PerTrialInEveryFormat) {
  ResultsCommandOptions options;
  options.query.add_metrics("ncc_test_acc/*/embedding");
  options.query.add_metrics("loss/total");
  EXPECT_EQ(Results(options, OutputFormat::kTable),
            "trial  state      optim.lr  seed  epoch  loss/total  ncc_test_acc/fine/embedding  "
            "ncc_test_acc/random/embedding\n"
            "1      succeeded  0.01      1     2      1.0000      0.8000                       "
            "0.1000\n"
            "2      succeeded  0.01      2     2      1.1000      0.8100                       "
            "0.1100\n"
            "3      succeeded  0.001     1     2      1.2000      0.8200                       "
            "0.1200\n"
            "4      succeeded  0.001     2     2      1.3000      0.8300                       "
            "0.1300\n");
  EXPECT_EQ(Results(options, OutputFormat::kCsv),
            "trial,state,optim.lr,seed,epoch,loss/total,ncc_test_acc/fine/embedding,"
            "ncc_test_acc/random/embedding\n"
            "1,succeeded,0.01,1,2,1,0.8,0.1\n"
            "2,succeeded,0.01,2,2,1.1,0.81,0.11\n"
            "3,succeeded,0.001,1,2,1.2,0.82,0.12\n"
            "4,succeeded,0.001,2,2,1.3,0.83,0.13\n");
}

TEST_F(ResultsCommandTest, GroupedBySeedsMeanStdAndNInEveryFormat) {
  // lr 0.01: trials 1, 2; lr 0.001: trials 3, 4. Each pair differs by 0.01
  // (0.1 for the loss): sample std 0.01 / sqrt(2) = 0.0071 (0.0707).
  ResultsCommandOptions options;
  options.query.add_metrics("ncc_test_acc/fine/embedding");
  options.query.add_metrics("loss/total");
  options.query.add_group_by("optim.lr");
  EXPECT_EQ(Results(options, OutputFormat::kTable),
            "optim.lr  epoch  loss/total           ncc_test_acc/fine/embedding\n"
            "0.001     2      1.2500 ± 0.0707 (2)  0.8250 ± 0.0071 (2)\n"
            "0.01      2      1.0500 ± 0.0707 (2)  0.8050 ± 0.0071 (2)\n");
  EXPECT_EQ(Results(options, OutputFormat::kCsv),
            "optim.lr,epoch,loss/total.mean,loss/total.std,loss/total.n,"
            "ncc_test_acc/fine/embedding.mean,ncc_test_acc/fine/embedding.std,"
            "ncc_test_acc/fine/embedding.n\n"
            "0.001,2,1.25,0.07071067812,2,0.825,0.007071067812,2\n"
            "0.01,2,1.05,0.07071067812,2,0.805,0.007071067812,2\n");
  // Parameter values as stored (YAML text), metrics as numbers.
  EXPECT_EQ(Results(options, OutputFormat::kJson),
            R"([
  {
    "optim.lr": "0.001",
    "epoch": 2,
    "loss/total.mean": 1.25,
    "loss/total.std": 0.07071067812,
    "loss/total.n": 2,
    "ncc_test_acc/fine/embedding.mean": 0.825,
    "ncc_test_acc/fine/embedding.std": 0.007071067812,
    "ncc_test_acc/fine/embedding.n": 2
  },
  {
    "optim.lr": "0.01",
    "epoch": 2,
    "loss/total.mean": 1.05,
    "loss/total.std": 0.07071067812,
    "loss/total.n": 2,
    "ncc_test_acc/fine/embedding.mean": 0.805,
    "ncc_test_acc/fine/embedding.std": 0.007071067812,
    "ncc_test_acc/fine/embedding.n": 2
  }
]
)");
}

TEST_F(ResultsCommandTest, PivotedByLayerAndByEpoch) {
  ResultsCommandOptions options;
  options.query.add_metrics("ncc_test_acc/fine/*");
  options.query.add_group_by("optim.lr");
  options.view.pivot = ResultsPivot::kLayer;
  EXPECT_EQ(Results(options, OutputFormat::kTable),
            "optim.lr  epoch  metric        target  stage1               embedding\n"
            "0.001     2      ncc_test_acc  fine    0.7250 ± 0.0071 (2)  0.8250 ± 0.0071 (2)\n"
            "0.01      2      ncc_test_acc  fine    0.7050 ± 0.0071 (2)  0.8050 ± 0.0071 (2)\n");
  // Every trial in one group, every epoch as a column: the seeds' curve.
  ResultsCommandOptions curve;
  curve.query.add_metrics("ncc_test_acc/fine/embedding");
  curve.query.set_one_group(true);
  curve.query.set_epoch("all");
  curve.view.pivot = ResultsPivot::kEpoch;
  // Over i = 0..3: mean 0.015 above the base, std 0.01291.
  EXPECT_EQ(Results(curve, OutputFormat::kTable),
            "trials  metric                       0                    1                    2\n"
            "all     ncc_test_acc/fine/embedding  0.6150 ± 0.0129 (4)  0.7150 ± 0.0129 (4)  "
            "0.8150 ± 0.0129 (4)\n");
}

TEST_F(ResultsCommandTest, ListInEveryFormat) {
  std::ostringstream table, csv, json, err;
  EXPECT_EQ(ListCommand(*client_, OutputFormat::kTable, table, err), kExitOk);
  EXPECT_EQ(ListCommand(*client_, OutputFormat::kCsv, csv, err), kExitOk);
  EXPECT_EQ(ListCommand(*client_, OutputFormat::kJson, json, err), kExitOk);
  EXPECT_EQ(table.str(),
            "sweep  name     state     trials  succeeded  running  failed\n"
            "1      fixture  finished  4       4          0        0\n");
  EXPECT_EQ(csv.str(),
            "sweep,name,state,trials,succeeded,running,failed\n"
            "1,fixture,finished,4,4,0,0\n");
  EXPECT_EQ(json.str(), R"([
  {
    "sweep": 1,
    "name": "fixture",
    "state": "finished",
    "trials": 4,
    "succeeded": 4,
    "running": 0,
    "failed": 0
  }
]
)");
  EXPECT_EQ(err.str(), "");
}

}  // namespace
}  // namespace sslsweep
