// The CLI's tables in each --format, exactly as printed, from fixed
// coordinator responses: aligned text, JSON (numbers typed, null for none)
// and CSV (RFC 4180 quoting).

#include <cmath>
#include <string>

#include "cli/output_table.h"
#include "cli/tables.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sslsweep {
namespace {

// Two trials of a 1-parameter sweep, one without metrics.
v1::GetResultsResponse Results() {
  v1::GetResultsResponse results;
  results.add_param_columns("optim.lr");
  results.add_metric_columns("loss/total");
  results.add_metric_columns("ncc_test_acc/fine/embedding");
  v1::ResultRow* a = results.add_rows();
  a->set_trial_id(1);
  a->set_state(v1::TRIAL_SUCCEEDED);
  a->add_params("1e-3");
  a->set_epoch(8);
  a->add_metrics(18.72981234);
  a->add_metrics(0.624);
  v1::ResultRow* b = results.add_rows();
  b->set_trial_id(2);
  b->set_state(v1::TRIAL_FAILED);
  b->add_params("0.01, \"big\"");
  b->set_epoch(-1);
  b->add_metrics(NAN);
  b->add_metrics(NAN);
  return results;
}

TEST(CliTablesTest, ResultsAsAlignedText) {
  EXPECT_EQ(RenderTable(ResultsTable(Results(), {}, OutputFormat::kTable), OutputFormat::kTable),
            "trial  state      optim.lr     epoch  loss/total  ncc_test_acc/fine/embedding\n"
            "1      succeeded  1e-3         8      18.7298     0.6240\n"
            "2      failed     0.01, \"big\"  -      -           -\n");
}

TEST(CliTablesTest, ResultsAsJsonWithTypedNumbersAndNulls) {
  EXPECT_EQ(RenderTable(ResultsTable(Results(), {"ncc_*"}, OutputFormat::kJson),
                        OutputFormat::kJson),
            R"([
  {
    "trial": 1,
    "state": "succeeded",
    "optim.lr": "1e-3",
    "epoch": 8,
    "ncc_test_acc/fine/embedding": 0.624
  },
  {
    "trial": 2,
    "state": "failed",
    "optim.lr": "0.01, \"big\"",
    "epoch": null,
    "ncc_test_acc/fine/embedding": null
  }
]
)");
}

TEST(CliTablesTest, ResultsAsCsvQuoteWhatNeedsIt) {
  EXPECT_EQ(RenderTable(ResultsTable(Results(), {}, OutputFormat::kCsv), OutputFormat::kCsv),
            "trial,state,optim.lr,epoch,loss/total,ncc_test_acc/fine/embedding\n"
            "1,succeeded,1e-3,8,18.72981234,0.624\n"
            "2,failed,\"0.01, \"\"big\"\"\",-,-,-\n");
}

TEST(CliTablesTest, StatusSweepsAndWorkersInEveryFormat) {
  v1::GetSweepStatusResponse status;
  status.mutable_sweep()->set_max_attempts(3);
  v1::TrialStatus* t = status.add_trials();
  t->set_trial_id(7);
  t->set_state(v1::TRIAL_RUNNING);
  t->set_attempt(2);
  t->set_failures(1);
  t->set_ranks(2);
  t->add_rank_worker_ids("w-2");
  t->add_rank_worker_ids("w-1");
  t->set_worker_id("w-2");
  t->set_epoch(3);
  t->set_epochs_total(8);
  t->set_checkpoint_epoch(3);
  t->set_metric_value(0.62341);
  t->set_started_at_ms(1'000);
  t->set_eta_seconds(125.2);
  v1::Param* p = t->add_params();
  p->set_path("seed");
  p->set_value("1");
  v1::TrialStatus* pending = status.add_trials();
  pending->set_trial_id(8);
  pending->set_state(v1::TRIAL_PENDING);
  pending->set_epochs_total(8);
  pending->set_checkpoint_epoch(-1);
  pending->set_metric_value(NAN);
  pending->set_eta_seconds(-1);
  status.mutable_sweep()->set_metric_name("ncc");
  EXPECT_EQ(RenderTable(StatusTable(status, 66'000), OutputFormat::kTable),
            "trial  state    attempt  failures  worker   epoch  ncc     elapsed  eta    "
            "checkpoint  params  reason\n"
            "7      running  2        1/3       w-2,w-1  3/8    0.6234  1m05s    2m05s  "
            "3           seed=1\n"
            "8      pending  0        0/3       -        0/8    -       -        -      -\n");
  EXPECT_EQ(RenderTable(StatusTable(status, 66'000), OutputFormat::kCsv),
            "trial,state,attempt,failures,worker,epoch,ncc,elapsed,eta,checkpoint,params,reason\n"
            "7,running,2,1/3,\"w-2,w-1\",3/8,0.6234,1m05s,2m05s,3,seed=1,\n"
            "8,pending,0,0/3,-,0/8,-,-,-,-,,\n");
  EXPECT_EQ(ShortDuration(7'620), "2h07m");
  EXPECT_EQ(ShortDuration(45), "45s");

  v1::ListSweepsResponse sweeps;
  v1::SweepSummary* s = sweeps.add_sweeps();
  s->set_sweep_id(1);
  s->set_name("quickstart");
  s->set_state(v1::SWEEP_FINISHED);
  s->set_trials_total(4);
  s->set_trials_succeeded(4);
  EXPECT_EQ(RenderTable(SweepsTable(sweeps), OutputFormat::kJson),
            R"([
  {
    "sweep": 1,
    "name": "quickstart",
    "state": "finished",
    "trials": 4,
    "succeeded": 4,
    "running": 0,
    "failed": 0
  }
]
)");

  v1::ListWorkersResponse workers;
  v1::WorkerInfo* w = workers.add_workers();
  w->set_worker_id("w-1");
  w->set_hostname("node-a");
  w->set_state(v1::WORKER_QUARANTINED);
  w->set_last_heartbeat_ms(1'000);
  w->add_running_trial_ids(7);
  w->set_consecutive_failures(3);
  w->set_quarantine_reason("3 failed attempts in a row; last: x");
  EXPECT_EQ(RenderTable(WorkersTable(workers, 3'500), OutputFormat::kTable),
            "worker  host    state        last heartbeat  trials  failures in a row  "
            "quarantine reason\n"
            "w-1     node-a  quarantined  2.5s ago        7       3                  "
            "3 failed attempts in a row; last: x\n");
}

TEST(CliTablesTest, ADryRunListsThePlannedTrials) {
  v1::SubmitSweepResponse planned;
  planned.set_trial_count(2);
  for (int i = 0; i < 2; ++i) {
    v1::PlannedTrial* t = planned.add_trials();
    t->set_index(i);
    t->set_ranks(2);
    t->set_epochs(8);
    v1::Param* lr = t->add_params();
    lr->set_path("optim.lr");
    lr->set_value(i == 0 ? "1e-3" : "3e-3");
    v1::Param* seed = t->add_params();
    seed->set_path("seed");
    seed->set_value("0");
  }
  EXPECT_EQ(RenderTable(PlannedTrialsTable(planned), OutputFormat::kTable),
            "index  ranks  epochs  optim.lr  seed\n"
            "0      2      8       1e-3      0\n"
            "1      2      8       3e-3      0\n");
  EXPECT_EQ(RenderTable(PlannedTrialsTable(planned), OutputFormat::kCsv),
            "index,ranks,epochs,optim.lr,seed\n0,2,8,1e-3,0\n1,2,8,3e-3,0\n");
}

TEST(CliTablesTest, AnEmptyTableIsItsHeaderOrAnEmptyArray) {
  const OutputTable empty = SweepsTable(v1::ListSweepsResponse());
  EXPECT_EQ(RenderTable(empty, OutputFormat::kTable),
            "sweep  name  state  trials  succeeded  running  failed\n");
  EXPECT_EQ(RenderTable(empty, OutputFormat::kJson), "[]\n");
  EXPECT_EQ(RenderTable(empty, OutputFormat::kCsv),
            "sweep,name,state,trials,succeeded,running,failed\n");
}

TEST(CliTablesTest, OnlyTheThreeFormatsParse) {
  EXPECT_EQ(*ParseOutputFormat("csv"), OutputFormat::kCsv);
  absl::StatusOr<OutputFormat> bad = ParseOutputFormat("yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "--format 'yaml': expected table, json or csv");
}

}  // namespace
}  // namespace sslsweep
