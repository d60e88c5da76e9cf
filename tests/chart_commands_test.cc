// `plot` and `report` against a real coordinator on a loopback port, its
// SQLite store filled by reports: the files they write, and the errors of
// bad input (unknown metric, injection attempts, bad paths), which change
// nothing.

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/plot_command.h"
#include "cli/report_command.h"
#include "cli/sweep_client.h"
#include "coordinator/grpc_services.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator_test_util.h"

namespace sslsweep {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class ChartCommandsTest : public CoordinatorFixture {
 protected:
  void SetUp() override {
    CoordinatorFixture::SetUp();
    sweep_id_ = Submit(LrBySeedSweep("charts"));
    const std::string worker = Register();
    // Trials i = 0..3: (0.01, 1), (0.01, 2), (0.001, 1), (0.001, 2). At
    // epoch e, layer l (stage1 0, embedding 1): fine 0.5 + 0.1 e + 0.1 l +
    // 0.01 i, random 0.1 + 0.01 i, cdnv of fine 2 - e.
    for (int i = 0; i < 4; ++i) {
      const v1::TrialAssignment trial = Lease(worker);
      for (int epoch = 0; epoch < 2; ++epoch) {
        std::vector<std::pair<std::string, double>> metrics;
        for (int l = 0; l < 2; ++l) {
          const std::string layer = l == 0 ? "stage1" : "embedding";
          metrics.emplace_back("ncc_test_acc/fine/" + layer, 0.5 + 0.1 * epoch + 0.1 * l + 0.01 * i);
          metrics.emplace_back("ncc_test_acc/random/" + layer, 0.1 + 0.01 * i);
          metrics.emplace_back("ncc_train_acc/fine/" + layer,
                               0.55 + 0.1 * epoch + 0.1 * l + 0.01 * i);
          metrics.emplace_back("ncc_train_acc/random/" + layer, 0.2 + 0.01 * i);
        }
        metrics.emplace_back("cdnv/fine/embedding", 2.0 - epoch);
        metrics.emplace_back("loss/total", 3.0 - epoch);
        ASSERT_TRUE(Report(worker, trial, epoch, metrics).ok());
      }
      ASSERT_TRUE(Finish(worker, trial).ok());
    }
    auto server = CoordinatorServer::Start(coordinator_.get(), "127.0.0.1:0");
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_ = std::make_unique<SweepClient>(absl::StrCat("127.0.0.1:", server_->port()));
    dir_ = FreshTempDir("charts");
  }

  void TearDown() override {
    client_.reset();
    if (server_ != nullptr) server_->Shutdown();
  }

  PlotOptions Plot(const std::string& file) const {
    PlotOptions options;
    options.sweep_id = sweep_id_;
    options.metrics = {"ncc_test_acc/*/embedding"};
    options.out_path = dir_ + "/" + file;
    return options;
  }

  // Every stored row of the sweep, as the coordinator answers it.
  std::string Everything() {
    v1::QueryResultsRequest request;
    request.set_sweep_id(sweep_id_);
    request.set_epoch("all");
    auto response = coordinator_->QueryResults(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->SerializeAsString() : "";
  }

  int64_t sweep_id_ = 0;
  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<SweepClient> client_;
  std::string dir_;
  std::ostringstream out_, err_;
};

TEST_F(ChartCommandsTest, PlotWritesAnSvgWithALineAndBandPerTarget) {
  const PlotOptions options = Plot("ncc.svg");
  ASSERT_EQ(PlotCommand(*client_, options, out_, err_), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), options.out_path + "\n");
  EXPECT_EQ(err_.str(), "");
  const std::string svg = ReadFile(options.out_path);
  EXPECT_THAT(svg, StartsWith("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_THAT(svg, HasSubstr("<title>charts: ncc_test_acc/*/embedding</title>"));
  EXPECT_THAT(svg, HasSubstr(">fine</text>"));
  EXPECT_THAT(svg, HasSubstr(">random</text>"));
  EXPECT_THAT(svg, HasSubstr(">epoch</text>"));
  EXPECT_THAT(svg, HasSubstr("<polygon"));  // four seeds: a band
  EXPECT_FALSE(std::filesystem::exists(options.out_path + ".tmp"));
}

TEST_F(ChartCommandsTest, PlotByLayerPerGroupAsPng) {
  PlotOptions options = Plot("layers.PNG");
  options.metrics = {"ncc_test_acc/*/*", "loss/total"};
  options.x = PlotAxis::kLayer;
  options.group_by = {"optim.lr"};
  options.where = {"seed=1"};
  options.epoch = "0";
  options.title = "a <title>";
  ASSERT_EQ(PlotCommand(*client_, options, out_, err_), kExitOk) << err_.str();
  EXPECT_EQ(err_.str(),
            "sslsweep: note: --x layer leaves out loss/total (not named "
            "<metric>/<target>/<layer>)\n");
  const std::string png = ReadFile(options.out_path);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}

TEST_F(ChartCommandsTest, UnknownMetricIsBadInputNamingTheStoredOnes) {
  PlotOptions options = Plot("x.svg");
  options.metrics = {"accuracy"};
  EXPECT_EQ(PlotCommand(*client_, options, out_, err_), kExitBadInput);
  EXPECT_THAT(err_.str(), HasSubstr("'accuracy' matches no metric of sweep"));
  EXPECT_THAT(err_.str(), HasSubstr("stored names include cdnv/fine/embedding"));
  EXPECT_EQ(out_.str(), "");
  EXPECT_FALSE(std::filesystem::exists(options.out_path));
}

TEST_F(ChartCommandsTest, InjectionAttemptsAreErrorsAndChangeNothing) {
  const std::string before = Everything();
  PlotOptions metric = Plot("x.svg");
  metric.metrics = {"x' OR 1=1; DROP TABLE metrics; --"};
  PlotOptions group = Plot("x.svg");
  group.group_by = {"optim.lr) FROM trials; DROP TABLE trials; --"};
  PlotOptions where = Plot("x.svg");
  where.where = {"seed=1' OR '1'='1"};
  for (const PlotOptions& options : {metric, group, where}) {
    std::ostringstream out, err;
    EXPECT_EQ(PlotCommand(*client_, options, out, err), kExitBadInput) << err.str();
    EXPECT_THAT(err.str(), StartsWith("sslsweep: "));
    EXPECT_EQ(out.str(), "");
  }
  ReportOptions report;
  report.sweep_id = sweep_id_;
  report.out_dir = dir_ + "/report";
  report.group_by = {"seed; DELETE FROM metrics"};
  EXPECT_EQ(ReportCommand(*client_, report, out_, err_), kExitBadInput);
  EXPECT_THAT(err_.str(), HasSubstr("group_by: unknown parameter"));
  report.group_by.clear();
  report.where = {"seed=1' OR '1'='1"};
  std::ostringstream where_err;
  EXPECT_EQ(ReportCommand(*client_, report, out_, where_err), kExitBadInput);
  EXPECT_THAT(where_err.str(), HasSubstr("seed"));
  EXPECT_EQ(Everything(), before);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/x.svg"));
  EXPECT_FALSE(std::filesystem::exists(report.out_dir));
}

TEST_F(ChartCommandsTest, BadFlagsPathsAndSweepsAreBadInput) {
  PlotOptions options = Plot("chart.pdf");
  EXPECT_EQ(PlotCommand(*client_, options, out_, err_), kExitBadInput);
  EXPECT_THAT(err_.str(), HasSubstr("chart.pdf': the extension picks the format: .svg or .png"));

  options = Plot("x.svg");
  options.epoch = "final";
  EXPECT_EQ(PlotCommand(*client_, options, out_, err_), kExitBadInput);
  options.x = PlotAxis::kLayer;
  options.epoch = "all";
  EXPECT_EQ(PlotCommand(*client_, options, out_, err_), kExitBadInput);
  options = Plot("x.svg");
  options.metrics.clear();
  EXPECT_EQ(PlotCommand(*client_, options, out_, err_), kExitBadInput);

  options = Plot("no/such/dir/x.svg");
  std::ostringstream err;
  EXPECT_EQ(PlotCommand(*client_, options, out_, err), kExitBadInput);
  EXPECT_THAT(err.str(), HasSubstr("cannot write " + options.out_path));

  options = Plot("x.svg");
  options.sweep_id = sweep_id_ + 1;
  EXPECT_EQ(PlotCommand(*client_, options, out_, err_), kExitBadInput);

  const int64_t empty = Submit(LrBySeedSweep("charts"));
  options.sweep_id = empty;
  std::ostringstream no_metrics;
  EXPECT_EQ(PlotCommand(*client_, options, out_, no_metrics), kExitBadInput);
  EXPECT_THAT(no_metrics.str(), HasSubstr("has no metrics yet"));
  ReportOptions report;
  report.sweep_id = empty;
  report.out_dir = dir_ + "/empty";
  std::ostringstream report_err;
  EXPECT_EQ(ReportCommand(*client_, report, out_, report_err), kExitBadInput);
  EXPECT_EQ(report_err.str(), absl::StrCat("sslsweep: no metrics yet for sweep ", empty, "\n"));
  EXPECT_EQ(out_.str(), "");
}

TEST_F(ChartCommandsTest, AnUnreachableCoordinatorIsExitThree) {
  const int port = server_->port();
  server_->Shutdown();
  server_.reset();
  SweepClient gone(absl::StrCat("127.0.0.1:", port), 2000);
  EXPECT_EQ(PlotCommand(gone, Plot("x.svg"), out_, err_), kExitUnreachable);
}

TEST_F(ChartCommandsTest, ReportWritesThePageAndItsFigures) {
  ReportOptions options;
  options.sweep_id = sweep_id_;
  options.out_dir = dir_ + "/report";
  ASSERT_EQ(ReportCommand(*client_, options, out_, err_), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), options.out_dir + "/report.md\n");
  const std::string md = ReadFile(options.out_dir + "/report.md");
  EXPECT_THAT(md, StartsWith("# Sweep report: charts\n\n- Sweep 1, finished; 4 trials: 4 "
                             "succeeded.\n- Swept parameters: `optim.lr` (0.01, 0.001); `seed` "
                             "(1, 2).\n"));
  EXPECT_THAT(md, HasSubstr("every trial with metrics is one group (n = 4)"));
  // Train NCC at the embedding, epoch 1: fine 0.75 + 0.01 i, random
  // 0.2 + 0.01 i, so every trial's gap is 0.55; the cdnv of every trial is 1.
  EXPECT_THAT(md, HasSubstr("| layer | fine | random | fine − random |\n| --- | ---: | ---: | "
                            "---: |\n| stage1 | 0.6650 ± 0.0129 | 0.2150 ± 0.0129 | 0.4500 ± "
                            "0.0000 |\n| embedding | 0.7650 ± 0.0129 | 0.2150 ± 0.0129 | "
                            "0.5500 ± 0.0000 |\n"));
  EXPECT_THAT(md, HasSubstr("| layer | fine |\n| --- | ---: |\n| embedding | 1.0000 ± 0.0000 |\n"));
  EXPECT_THAT(md, HasSubstr("| epoch | fine | random |\n| --- | ---: | ---: |\n| 0 | 0.6150 ± "
                            "0.0129 | 0.1150 ± 0.0129 |\n| 1 | 0.7150 ± 0.0129 | 0.1150 ± "
                            "0.0129 |\n"));
  EXPECT_THAT(md, HasSubstr("Skipped: this sweep has no `knn_test_acc/<target>/<layer>`"));
  for (const char* stem : {"ncc_over_epochs", "ncc_over_layers", "cdnv_over_layers"}) {
    EXPECT_THAT(md, HasSubstr(absl::StrCat("](", stem, ".png)")));
    EXPECT_THAT(ReadFile(options.out_dir + "/" + stem + ".svg"), StartsWith("<svg"));
    EXPECT_EQ(ReadFile(options.out_dir + "/" + stem + ".png").substr(1, 3), "PNG");
  }

  // --where keeps the trials of one learning rate in every query: n = 2, and
  // the gaps come from those two trials alone (i = 0, 1 for lr 0.01).
  ReportOptions filtered = options;
  filtered.out_dir = dir_ + "/report-lr";
  filtered.where = {"optim.lr=0.01"};
  std::ostringstream filtered_out;
  ASSERT_EQ(ReportCommand(*client_, filtered, filtered_out, err_), kExitOk) << err_.str();
  const std::string lr = ReadFile(filtered.out_dir + "/report.md");
  EXPECT_THAT(lr, HasSubstr("- Only the trials with `optim.lr=0.01` (the trial counts above are "
                            "the whole sweep's).\n"));
  EXPECT_THAT(lr, HasSubstr("every trial with metrics is one group (n = 2)"));
  EXPECT_THAT(lr, HasSubstr("| embedding | 0.7550 ± 0.0071 | 0.2050 ± 0.0071 | 0.5500 ± "
                            "0.0000 |\n"));
  filtered.where = {"optim.lr=0.5"};
  std::ostringstream bad;
  EXPECT_EQ(ReportCommand(*client_, filtered, filtered_out, bad), kExitBadInput);
  EXPECT_THAT(bad.str(), HasSubstr("optim.lr"));

  // An existing directory is fine; one that cannot be made is exit 2, named.
  std::ostringstream again;
  EXPECT_EQ(ReportCommand(*client_, options, again, err_), kExitOk);
  std::ofstream(dir_ + "/file") << "x";
  options.out_dir = dir_ + "/file/report";
  std::ostringstream err;
  EXPECT_EQ(ReportCommand(*client_, options, again, err), kExitBadInput);
  EXPECT_THAT(err.str(), HasSubstr("cannot create the report directory " + options.out_dir));
}

}  // namespace
}  // namespace sslsweep
