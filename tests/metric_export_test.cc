// ExportMetrics: every metric row of a sweep in key order, paged (pages of
// 3 rows here, so ten rows cross four chunks), its errors (an unknown
// sweep, a glob that matches nothing, SQL in a glob, which is only ever a
// bound value), and `sslsweep export`'s exact CSV and JSON Lines over real
// gRPC, to stdout and through FILE.tmp to a file.

#include <filesystem>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cli/export_command.h"
#include "cli/metric_export.h"
#include "coordinator/grpc_services.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator_test_util.h"
#include "tests/store_test_util.h"

namespace sslsweep {
namespace {

using ::testing::HasSubstr;

constexpr char kSweep[] = R"(name: export
method: grid
parameters:
  optim.lr: {values: [0.01, 1e-3]}
trial:
  epochs: 2
  data: {dataset: synthetic, train_samples: 64}
  optim: {batch_size: 32}
)";

constexpr char kCsv[] =
    "trial_id,state,optim.lr,epoch,metric,target,layer,name,value\n"
    "1,succeeded,0.01,0,loss,,,loss/total,1.5\n"
    "1,succeeded,0.01,0,ncc_test_acc,fine,embedding,ncc_test_acc/fine/embedding,0.25\n"
    "1,succeeded,0.01,0,probe,\"a,b\",embedding,\"probe/a,b/embedding\",0.125\n"
    "1,succeeded,0.01,1,loss,,,loss/total,1.25\n"
    "1,succeeded,0.01,1,ncc_test_acc,fine,embedding,ncc_test_acc/fine/embedding,0.5\n"
    "1,succeeded,0.01,1,probe,\"a,b\",embedding,\"probe/a,b/embedding\",0.375\n"
    "2,running,1e-3,0,loss,,,loss/total,2\n"
    "2,running,1e-3,0,ncc_test_acc,fine,embedding,ncc_test_acc/fine/embedding,0.1\n"
    "2,running,1e-3,1,loss,,,loss/total,1.75\n"
    "2,running,1e-3,1,ncc_test_acc,fine,embedding,ncc_test_acc/fine/embedding,0.2\n";

class MetricExportTest : public CoordinatorFixture {
 protected:
  void SetUp() override {
    options_.export_page_rows = 3;
    CoordinatorFixture::SetUp();
    sweep_id_ = Submit(kSweep);
    const std::string worker = Register();
    const v1::TrialAssignment first = Lease(worker);
    ReportMany(worker, first, 0,
               {{"ncc_test_acc/fine/embedding", 0.25}, {"loss/total", 1.5},
                {"probe/a,b/embedding", 0.125}});
    ReportMany(worker, first, 1,
               {{"probe/a,b/embedding", 0.375}, {"loss/total", 1.25},
                {"ncc_test_acc/fine/embedding", 0.5}});
    ASSERT_TRUE(Finish(worker, first).ok());
    const v1::TrialAssignment second = Lease(worker);  // stays running
    ReportMany(worker, second, 0, {{"loss/total", 2}, {"ncc_test_acc/fine/embedding", 0.1}});
    ReportMany(worker, second, 1, {{"loss/total", 1.75}, {"ncc_test_acc/fine/embedding", 0.2}});
  }

  void ReportMany(const std::string& worker, const v1::TrialAssignment& trial, int epoch,
                  const std::vector<std::pair<std::string, double>>& values) {
    v1::ReportMetricsRequest request;
    request.set_worker_id(worker);
    request.set_trial_id(trial.trial_id());
    request.set_attempt(trial.attempt());
    request.set_epoch(epoch);
    for (const auto& [name, value] : values) {
      v1::Metric* m = request.add_metrics();
      m->set_name(name);
      m->set_value(value);
    }
    auto response = coordinator_->ReportMetrics(request);
    ASSERT_TRUE(response.ok()) << response.status();
  }

  // The chunks of an export, or its error.
  absl::StatusOr<std::vector<v1::ExportMetricsChunk>> Export(
      int64_t sweep_id, const std::vector<std::string>& globs = {}) {
    v1::ExportMetricsRequest request;
    request.set_sweep_id(sweep_id);
    for (const std::string& glob : globs) request.add_metrics(glob);
    std::vector<v1::ExportMetricsChunk> chunks;
    absl::Status status = coordinator_->ExportMetrics(request, [&](const auto& chunk) {
      chunks.push_back(chunk);
      return true;
    });
    if (!status.ok()) return status;
    return chunks;
  }

  // `sslsweep export` against a server on loopback.
  int ExportCommandOn(const ExportCommandOptions& options, std::string* out, std::string* err) {
    auto server = CoordinatorServer::Start(coordinator_.get(), "127.0.0.1:0");
    EXPECT_TRUE(server.ok()) << server.status();
    SweepClient client("127.0.0.1:" + std::to_string((*server)->port()));
    std::ostringstream out_stream;
    std::ostringstream err_stream;
    const int code = ExportCommand(client, options, out_stream, err_stream);
    *out = out_stream.str();
    *err = err_stream.str();
    return code;
  }

  int64_t sweep_id_ = 0;
};

TEST_F(MetricExportTest, PagesCrossChunksInKeyOrder) {
  auto chunks = Export(sweep_id_);
  ASSERT_TRUE(chunks.ok()) << chunks.status();
  ASSERT_EQ(chunks->size(), 4u);
  EXPECT_EQ((*chunks)[0].rows_size(), 3);
  EXPECT_EQ((*chunks)[1].rows_size(), 3);
  EXPECT_EQ((*chunks)[2].rows_size(), 3);
  EXPECT_EQ((*chunks)[3].rows_size(), 1);
  const v1::ExportMetricsChunk& head = (*chunks)[0];
  ASSERT_EQ(head.param_columns_size(), 1);
  EXPECT_EQ(head.param_columns(0), "optim.lr");
  ASSERT_EQ(head.trials_size(), 2);
  EXPECT_EQ(head.trials(0).trial_id(), 1);
  EXPECT_EQ(head.trials(0).state(), v1::TRIAL_SUCCEEDED);
  EXPECT_EQ(head.trials(0).params(0), "0.01");
  EXPECT_EQ(head.trials(1).state(), v1::TRIAL_RUNNING);
  EXPECT_EQ(head.trials(1).params(0), "1e-3");
  for (size_t i = 1; i < chunks->size(); ++i) {
    EXPECT_EQ((*chunks)[i].trials_size(), 0) << i;
    EXPECT_EQ((*chunks)[i].param_columns_size(), 0) << i;
  }
  std::vector<std::string> keys;
  for (const auto& chunk : *chunks) {
    for (const auto& row : chunk.rows()) {
      keys.push_back(absl::StrCat(row.trial_id(), "/", row.epoch(), "/", row.name(), "=",
                                  row.value()));
    }
  }
  EXPECT_THAT(keys, ::testing::ElementsAre(
                        "1/0/loss/total=1.5", "1/0/ncc_test_acc/fine/embedding=0.25",
                        "1/0/probe/a,b/embedding=0.125", "1/1/loss/total=1.25",
                        "1/1/ncc_test_acc/fine/embedding=0.5", "1/1/probe/a,b/embedding=0.375",
                        "2/0/loss/total=2", "2/0/ncc_test_acc/fine/embedding=0.1",
                        "2/1/loss/total=1.75", "2/1/ncc_test_acc/fine/embedding=0.2"));
}

TEST_F(MetricExportTest, GlobsSelectRowsAndAFullLastPageSendsNoEmptyChunk) {
  auto chunks = Export(sweep_id_, {"ncc_*", "probe/*"});
  ASSERT_TRUE(chunks.ok()) << chunks.status();
  ASSERT_EQ(chunks->size(), 2u);  // 6 rows: two full pages
  EXPECT_EQ((*chunks)[0].rows(0).name(), "ncc_test_acc/fine/embedding");
  EXPECT_EQ((*chunks)[0].rows(1).name(), "probe/a,b/embedding");
  EXPECT_EQ((*chunks)[1].rows(2).trial_id(), 2);
  EXPECT_EQ((*chunks)[1].rows(2).epoch(), 1);
  EXPECT_EQ((*chunks)[1].rows(2).value(), 0.2);
}

TEST_F(MetricExportTest, BadRequestsAreErrorsAndSqlInAGlobIsOnlyAGlob) {
  EXPECT_THAT(Export(99), StatusIs(absl::StatusCode::kNotFound, "no sweep 99"));
  EXPECT_THAT(Export(0), StatusIs(absl::StatusCode::kInvalidArgument,
                                  "sweep_id: expected a positive id, got 0"));
  EXPECT_THAT(Export(sweep_id_, {"nope/*"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "metrics: 'nope/*' matches no metric of sweep 1"));
  EXPECT_THAT(Export(sweep_id_, {""}),
              StatusIs(absl::StatusCode::kInvalidArgument, "metrics: expected 1 to 256 bytes"));
  const std::string injection = "x'; DROP TABLE metrics; --";
  EXPECT_THAT(Export(sweep_id_, {injection}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "metrics: '" + injection + "' matches no metric of sweep 1"));
  DirectSql sql(db_path_);
  EXPECT_EQ(sql.Int("SELECT count(*) FROM metrics"), 10);
  auto chunks = Export(sweep_id_);
  ASSERT_TRUE(chunks.ok()) << chunks.status();
  EXPECT_EQ(chunks->size(), 4u);
}

TEST_F(MetricExportTest, ExportCommandWritesCsvAndJsonLines) {
  ExportCommandOptions options;
  options.sweep_id = sweep_id_;
  std::string out;
  std::string err;
  EXPECT_EQ(ExportCommandOn(options, &out, &err), 0) << err;
  EXPECT_EQ(out, kCsv);
  EXPECT_EQ(err, "");

  options.format = "json";
  options.metric_globs = {"loss/*", "probe/*"};
  EXPECT_EQ(ExportCommandOn(options, &out, &err), 0) << err;
  EXPECT_EQ(out,
            R"({"trial_id":1,"state":"succeeded","optim.lr":"0.01","epoch":0,"metric":"loss","target":null,"layer":null,"name":"loss/total","value":1.5}
{"trial_id":1,"state":"succeeded","optim.lr":"0.01","epoch":0,"metric":"probe","target":"a,b","layer":"embedding","name":"probe/a,b/embedding","value":0.125}
{"trial_id":1,"state":"succeeded","optim.lr":"0.01","epoch":1,"metric":"loss","target":null,"layer":null,"name":"loss/total","value":1.25}
{"trial_id":1,"state":"succeeded","optim.lr":"0.01","epoch":1,"metric":"probe","target":"a,b","layer":"embedding","name":"probe/a,b/embedding","value":0.375}
{"trial_id":2,"state":"running","optim.lr":"1e-3","epoch":0,"metric":"loss","target":null,"layer":null,"name":"loss/total","value":2.0}
{"trial_id":2,"state":"running","optim.lr":"1e-3","epoch":1,"metric":"loss","target":null,"layer":null,"name":"loss/total","value":1.75}
)");

  options.metric_globs = {"x'; DROP TABLE metrics; --"};
  EXPECT_EQ(ExportCommandOn(options, &out, &err), 2);
  EXPECT_EQ(out, "");
  EXPECT_THAT(err, HasSubstr("sslsweep: metrics: 'x'; DROP TABLE metrics; --' matches no "
                             "metric of sweep 1"));
  options.metric_globs = {};
  options.sweep_id = 7;
  EXPECT_EQ(ExportCommandOn(options, &out, &err), 2);
  EXPECT_EQ(err, "sslsweep: no sweep 7\n");
  options.format = "xml";
  EXPECT_EQ(ExportCommandOn(options, &out, &err), 2);
  EXPECT_EQ(err, "sslsweep: --format 'xml': expected csv or json (JSON Lines)\n");
}

TEST_F(MetricExportTest, OutWritesThroughATemporaryFileAndLeavesNoHalfFile) {
  const std::filesystem::path dir = TempDir("export");
  ExportCommandOptions options;
  options.sweep_id = sweep_id_;
  options.out_path = (dir / "sweep1.csv").string();
  std::string out;
  std::string err;
  EXPECT_EQ(ExportCommandOn(options, &out, &err), 0) << err;
  EXPECT_EQ(out, "");
  EXPECT_EQ(ReadFile(dir / "sweep1.csv"), kCsv);
  EXPECT_FALSE(std::filesystem::exists(dir / "sweep1.csv.tmp"));
  EXPECT_EQ(err, "sslsweep: exported 10 rows of sweep 1 to " + options.out_path + "\n");

  // A refused export leaves neither the file nor its .tmp.
  options.out_path = (dir / "refused.csv").string();
  options.metric_globs = {"nope"};
  EXPECT_EQ(ExportCommandOn(options, &out, &err), 2);
  EXPECT_FALSE(std::filesystem::exists(dir / "refused.csv"));
  EXPECT_FALSE(std::filesystem::exists(dir / "refused.csv.tmp"));

  options.metric_globs = {};
  options.out_path = (dir / "no-such-dir" / "x.csv").string();
  EXPECT_EQ(ExportCommandOn(options, &out, &err), 2);
  EXPECT_EQ(err, "sslsweep: --out '" + options.out_path + "': cannot write " +
                     options.out_path + ".tmp: No such file or directory\n");
}

TEST(MetricExportWriterTest, ParameterNamedLikeAColumnNaNAndUnknownTrials) {
  v1::ExportMetricsChunk chunk;
  chunk.add_param_columns("epoch");
  v1::ExportedTrial* trial = chunk.add_trials();
  trial->set_trial_id(4);
  trial->set_state(v1::TRIAL_PRUNED);
  trial->add_params("10");
  v1::ExportedMetric* row = chunk.add_rows();
  row->set_trial_id(4);
  row->set_epoch(3);
  row->set_name("knn_acc");
  row->set_value(NAN);
  MetricExportWriter csv(ExportFormat::kCsv);
  auto text = csv.Write(chunk);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text,
            "trial_id,state,param:epoch,epoch,metric,target,layer,name,value\n"
            "4,pruned,10,3,knn_acc,,,knn_acc,\n");
  MetricExportWriter json(ExportFormat::kJsonLines);
  text = json.Write(chunk);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text,
            R"({"trial_id":4,"state":"pruned","param:epoch":"10","epoch":3,"metric":"knn_acc","target":null,"layer":null,"name":"knn_acc","value":null})"
            "\n");
  EXPECT_EQ(json.rows_written(), 1);

  v1::ExportMetricsChunk stray;
  stray.add_rows()->set_trial_id(5);
  EXPECT_THAT(json.Write(stray),
              StatusIs(absl::StatusCode::kDataLoss, "a row of trial 5 came before"));
}

}  // namespace
}  // namespace sslsweep
