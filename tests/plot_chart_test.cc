// plot_chart.h and plot_series.h: nice ticks, XML escaping, the exact SVG
// of a small chart, lines and the categorical layer axis built from
// aggregated rows; png_render.h: the PNG's signature and size.

#include "cli/plot_chart.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cli/plot_command.h"
#include "cli/plot_series.h"
#include "cli/png_render.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/aggregated_rows_test_util.h"
#include "tests/test_util.h"

namespace sslsweep {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Labels(const AxisTicks& ticks) {
  std::vector<std::string> labels;
  for (double v : ticks.values) labels.push_back(FormatTick(v, ticks.decimals));
  return labels;
}

TEST(NiceTicksTest, RoundStepsCoverTheRange) {
  AxisTicks t = NiceTicks(0.1, 0.82);
  EXPECT_DOUBLE_EQ(t.step, 0.2);
  EXPECT_THAT(Labels(t), ElementsAre("0.0", "0.2", "0.4", "0.6", "0.8", "1.0"));
  EXPECT_THAT(Labels(NiceTicks(0, 15, 8, 1)), ElementsAre("0", "5", "10", "15"));
  EXPECT_THAT(Labels(NiceTicks(0, 3, 8, 1)), ElementsAre("0", "1", "2", "3"));
  // An epoch axis never gets fractional ticks.
  EXPECT_THAT(Labels(NiceTicks(0, 1, 8, 1)), ElementsAre("0", "1"));
  EXPECT_THAT(Labels(NiceTicks(-3.2, 47)), ElementsAre("-20", "0", "20", "40", "60"));
  EXPECT_THAT(Labels(NiceTicks(0.912, 0.934)),
              ElementsAre("0.910", "0.915", "0.920", "0.925", "0.930", "0.935"));
  EXPECT_THAT(Labels(NiceTicks(1200, 98765)),
              ElementsAre("0", "20000", "40000", "60000", "80000", "100000"));
  EXPECT_THAT(Labels(NiceTicks(-0.3, -0.1)), ElementsAre("-0.30", "-0.25", "-0.20", "-0.15",
                                                         "-0.10"));
  // A single value is widened around it; nothing at all gives [0, 1].
  EXPECT_THAT(Labels(NiceTicks(0.5, 0.5)),
              ElementsAre("0.44", "0.46", "0.48", "0.50", "0.52", "0.54", "0.56"));
  EXPECT_THAT(Labels(NiceTicks(0, 0)), ElementsAre("-0.6", "-0.4", "-0.2", "0.0", "0.2", "0.4",
                                                   "0.6"));
  EXPECT_THAT(Labels(NiceTicks(NAN, 1)), ElementsAre("0.0", "0.2", "0.4", "0.6", "0.8", "1.0"));
}

TEST(NiceTicksTest, LogTicksArePowersOfTen) {
  std::vector<std::string> labels;
  for (double v : LogTicks(0.0976, 571.4).values) labels.push_back(FormatLogTick(v));
  EXPECT_THAT(labels, ElementsAre("0.01", "0.1", "1", "10", "100", "1000"));
  labels.clear();
  for (double v : LogTicks(0.3, 4).values) labels.push_back(FormatLogTick(v));
  EXPECT_THAT(labels, ElementsAre("0.1", "0.2", "0.5", "1", "2", "5", "10"));
  labels.clear();
  for (double v : LogTicks(-1, 4).values) labels.push_back(FormatLogTick(v));
  EXPECT_THAT(labels, ElementsAre("1", "2", "5", "10"));

  // On a log axis 1, 10 and 100 are equally far apart; 0 sits on the axis.
  ChartSpec chart;
  chart.log_y = true;
  chart.series = {{"cdnv", {{0, 1, NAN, 1}, {1, 10, NAN, 1}, {2, 100, NAN, 1}, {3, 0, NAN, 1}}}};
  const std::string svg = RenderLineChartSvg(chart);
  EXPECT_THAT(svg, HasSubstr("<polyline points=\"76.00,384.00 262.67,214.00 449.33,44.00 "
                             "636.00,384.00\""));
  EXPECT_THAT(svg, HasSubstr(">100</text>"));
}

TEST(NiceTicksTest, TickLabelsNeverReadMinusZero) {
  EXPECT_EQ(FormatTick(-0.0001, 2), "0.00");
  EXPECT_EQ(FormatTick(-0.0, 0), "0");
  EXPECT_EQ(FormatTick(3 * 0.2, 1), "0.6");
  EXPECT_EQ(FormatTick(-0.25, 2), "-0.25");
}

TEST(XmlEscapeTest, EscapesMarkupAndDropsControlCharacters) {
  EXPECT_EQ(XmlEscape("a <b> & \"c\" 'd'"), "a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;");
  EXPECT_EQ(XmlEscape(std::string("x\x01y", 3)), "x y");
  EXPECT_EQ(XmlEscape("plain µ ± text"), "plain µ ± text");
}

ChartSpec TwoSeriesChart() {
  ChartSpec chart;
  chart.title = "sweep <1> & \"friends\"";
  chart.x_label = "epoch";
  chart.y_label = "ncc_test_acc/fine/embedding";
  ChartSeries seeds{"lr=0.1", {{0, 0.2, 0.05, 3}, {1, 0.5, 0.1, 3}, {2, 0.7, 0.05, 3}}};
  ChartSeries single{"lr=0.01", {{0, 0.1, NAN, 1}, {1, 0.3, NAN, 1}, {2, 0.4, NAN, 1}}};
  chart.series = {seeds, single};
  return chart;
}

constexpr char kTwoSeriesSvg[] = R"svg(<svg xmlns="http://www.w3.org/2000/svg" width="747.00" height="440.00" viewBox="0 0 747.00 440.00" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">
<title>sweep &lt;1&gt; &amp; &quot;friends&quot;</title>
<rect width="747.00" height="440.00" fill="#ffffff"/>
<text x="373.50" y="26.00" text-anchor="middle" font-size="15" font-weight="bold">sweep &lt;1&gt; &amp; &quot;friends&quot;</text>
<g stroke="#dddddd" stroke-width="1">
<line x1="76.00" y1="384.00" x2="636.00" y2="384.00"/>
<line x1="76.00" y1="299.00" x2="636.00" y2="299.00"/>
<line x1="76.00" y1="214.00" x2="636.00" y2="214.00"/>
<line x1="76.00" y1="129.00" x2="636.00" y2="129.00"/>
<line x1="76.00" y1="44.00" x2="636.00" y2="44.00"/>
</g>
<g text-anchor="end">
<text x="70.00" y="388.00">0.0</text>
<text x="70.00" y="303.00">0.2</text>
<text x="70.00" y="218.00">0.4</text>
<text x="70.00" y="133.00">0.6</text>
<text x="70.00" y="48.00">0.8</text>
</g>
<g stroke="#333333" stroke-width="1">
<line x1="76.00" y1="384.00" x2="76.00" y2="389.00"/>
<line x1="356.00" y1="384.00" x2="356.00" y2="389.00"/>
<line x1="636.00" y1="384.00" x2="636.00" y2="389.00"/>
</g>
<g text-anchor="middle">
<text x="76.00" y="404.00">0</text>
<text x="356.00" y="404.00">1</text>
<text x="636.00" y="404.00">2</text>
</g>
<rect x="76.00" y="44.00" width="560.00" height="340.00" fill="none" stroke="#333333" stroke-width="1"/>
<text x="356.00" y="428.00" text-anchor="middle" font-size="13">epoch</text>
<text x="20.00" y="214.00" text-anchor="middle" font-size="13" transform="rotate(-90 20 214.00)">ncc_test_acc/fine/embedding</text>
<polygon points="76.00,277.75 356.00,129.00 636.00,65.25 636.00,107.75 356.00,214.00 76.00,320.25" fill="#0072B2" fill-opacity="0.2" stroke="none"/>
<g fill="#0072B2">
<polyline points="76.00,299.00 356.00,171.50 636.00,86.50" fill="none" stroke="#0072B2" stroke-width="2"/>
<circle cx="76.00" cy="299.00" r="3"/>
<circle cx="356.00" cy="171.50" r="3"/>
<circle cx="636.00" cy="86.50" r="3"/>
</g>
<rect x="656.00" y="48.00" width="24" height="12" fill="#0072B2" fill-opacity="0.2"/>
<line x1="656.00" y1="54.00" x2="680.00" y2="54.00" stroke="#0072B2" stroke-width="2"/>
<text x="686.00" y="58.00">lr=0.1</text>
<g fill="#D55E00">
<polyline points="76.00,341.50 356.00,256.50 636.00,214.00" fill="none" stroke="#D55E00" stroke-width="2"/>
<circle cx="76.00" cy="341.50" r="3"/>
<circle cx="356.00" cy="256.50" r="3"/>
<circle cx="636.00" cy="214.00" r="3"/>
</g>
<line x1="656.00" y1="72.00" x2="680.00" y2="72.00" stroke="#D55E00" stroke-width="2"/>
<text x="686.00" y="76.00">lr=0.01</text>
</svg>
)svg";

TEST(RenderLineChartSvgTest, TwoSeriesWithBandsIsExactlyThisSvg) {
  EXPECT_EQ(RenderLineChartSvg(TwoSeriesChart()), kTwoSeriesSvg);
}

TEST(RenderLineChartSvgTest, EscapesTheTitleAndLegend) {
  ChartSpec chart = TwoSeriesChart();
  chart.series[0].name = "</text><script>alert(1)</script>";
  const std::string svg = RenderLineChartSvg(chart);
  EXPECT_THAT(svg, HasSubstr("<title>sweep &lt;1&gt; &amp; &quot;friends&quot;</title>"));
  EXPECT_THAT(svg, HasSubstr(">&lt;/text&gt;&lt;script&gt;alert(1)&lt;/script&gt;</text>"));
  EXPECT_THAT(svg, ::testing::Not(HasSubstr("<script>")));
}

TEST(RenderLineChartSvgTest, AChartWithoutPointsStillDrawsItsAxes) {
  ChartSpec chart;
  chart.title = "empty";
  const std::string svg = RenderLineChartSvg(chart);
  EXPECT_THAT(svg, HasSubstr(">no data</text>"));
  EXPECT_THAT(svg, HasSubstr(">1.0</text>"));
  EXPECT_THAT(svg, ::testing::Not(HasSubstr("<polyline")));
}

TEST(BuildPlotSeriesTest, LayersAreCategoriesInNetworkOrder) {
  v1::QueryResultsResponse results;
  results.add_group_columns("trials");
  for (const char* layer :
       {"projector1", "stage2", "embedding", "stage10", "stage1", "pool", "projector2"}) {
    *results.add_rows() = Row({"all"}, 5, std::string("ncc_test_acc/random/") + layer, 0.1, 0.01, 3);
    *results.add_rows() = Row({"all"}, 5, std::string("ncc_test_acc/fine/") + layer, 0.5, 0.02, 3);
  }
  *results.add_rows() = Row({"all"}, 5, "loss/total", 3.5, 0.1, 3);
  const PlotSeries series = BuildPlotSeries(results, PlotAxis::kLayer);
  EXPECT_THAT(series.chart.categories, ElementsAre("stage1", "stage2", "stage10", "embedding",
                                                   "projector1", "projector2", "pool"));
  EXPECT_THAT(series.x_positions, ElementsAre(0, 1, 2, 3, 4, 5, 6));
  EXPECT_THAT(series.left_out, ElementsAre("loss/total"));
  EXPECT_EQ(series.chart.x_label, "layer");
  EXPECT_EQ(series.chart.y_label, "ncc_test_acc");
  ASSERT_EQ(series.chart.series.size(), 2u);
  EXPECT_EQ(series.chart.series[0].name, "fine");  // fine before random
  EXPECT_EQ(series.chart.series[1].name, "random");
  EXPECT_EQ(series.chart.series[0].points[3].x, 3);
  EXPECT_DOUBLE_EQ(series.chart.series[0].points[3].std, 0.02);

  // The SVG labels the slots left to right in that order.
  const std::string svg = RenderLineChartSvg(series.chart);
  size_t at = 0;
  for (const char* layer : {">stage1<", ">stage2<", ">stage10<", ">embedding<", ">projector1<",
                            ">projector2<", ">pool<"}) {
    const size_t next = svg.find(layer, at);
    ASSERT_NE(next, std::string::npos) << layer;
    at = next;
  }
}

TEST(BuildPlotSeriesTest, EpochLinesPerGroupAndMetricNamedByWhatDiffers) {
  v1::QueryResultsResponse results;
  results.add_group_columns("optim.lr");
  results.add_group_columns("method");
  for (int epoch : {2, 0, 1}) {
    *results.add_rows() = Row({"0.01", "vicreg"}, epoch, "ncc_test_acc/fine/embedding",
                              0.1 * epoch, 0.01, 2);
    *results.add_rows() = Row({"0.1", "simclr"}, epoch, "ncc_test_acc/fine/embedding",
                              0.2 * epoch, NAN, 1);
  }
  *results.add_rows() = Row({"0.1", "simclr"}, 3, "ncc_test_acc/fine/embedding", NAN, NAN, 0);
  const PlotSeries series = BuildPlotSeries(results, PlotAxis::kEpoch);
  EXPECT_TRUE(series.chart.categories.empty());
  EXPECT_THAT(series.x_labels, ElementsAre("0", "1", "2"));
  EXPECT_EQ(series.chart.y_label, "ncc_test_acc/fine/embedding");
  ASSERT_EQ(series.chart.series.size(), 2u);
  EXPECT_EQ(series.chart.series[0].name, "optim.lr=0.01, method=vicreg");
  EXPECT_EQ(series.chart.series[1].name, "optim.lr=0.1, method=simclr");
  ASSERT_EQ(series.chart.series[1].points.size(), 3u);  // the NaN mean is skipped
  EXPECT_EQ(series.chart.series[1].points[2].x, 2);
  EXPECT_DOUBLE_EQ(series.chart.series[1].points[2].mean, 0.4);
  EXPECT_TRUE(std::isnan(series.chart.series[1].points[2].std));

  *results.add_rows() = Row({"0.01", "vicreg"}, 0, "ncc_test_acc/coarse/embedding", 0.3, 0.0, 2);
  const PlotSeries two_targets = BuildPlotSeries(results, PlotAxis::kEpoch);
  ASSERT_EQ(two_targets.chart.series.size(), 3u);
  EXPECT_EQ(two_targets.chart.series[0].name, "optim.lr=0.01, method=vicreg: fine");
  EXPECT_EQ(two_targets.chart.series[1].name, "optim.lr=0.01, method=vicreg: coarse");
  EXPECT_EQ(two_targets.chart.y_label, "ncc_test_acc");
}

TEST(ImageFormatTest, TheExtensionPicksTheFormat) {
  EXPECT_EQ(*ImageFormatOf("a/b.svg"), ImageFormat::kSvg);
  EXPECT_EQ(*ImageFormatOf("B.PNG"), ImageFormat::kPng);
  const absl::StatusOr<ImageFormat> bad = ImageFormatOf("chart.pdf");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr(".svg or .png"));
}

uint32_t BigEndian32(const std::string& bytes, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

TEST(PngRenderTest, WritesAPngOfTheSvgSize) {
  const std::string path = FreshTempDir("png") + "/chart.png";
  ASSERT_TRUE(WriteChart(RenderLineChartSvg(TwoSeriesChart()), ImageFormat::kPng, path).ok());
  const std::string png = ReadFile(path);
  ASSERT_GT(png.size(), 33u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  // The SVG is 747 x 440: 636 + 20 + 30 + 7 * 7 + 12 wide ("lr=0.01" is 7 characters).
  EXPECT_EQ(BigEndian32(png, 16), 747u);
  EXPECT_EQ(BigEndian32(png, 20), 440u);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  const absl::StatusOr<std::string> doubled = RenderSvgToPng(RenderLineChartSvg(TwoSeriesChart()), 2);
  ASSERT_TRUE(doubled.ok()) << doubled.status();
  EXPECT_EQ(BigEndian32(*doubled, 16), 1494u);
  EXPECT_EQ(BigEndian32(*doubled, 20), 880u);
}

TEST(PngRenderTest, UnparsableSvgAndUnwritablePathAreErrors) {
  EXPECT_EQ(RenderSvgToPng("<svg").status().code(), absl::StatusCode::kInvalidArgument);
  const absl::Status status =
      WriteChart("<svg/>", ImageFormat::kSvg, "/nonexistent-dir/for/sure/chart.svg");
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(status.message(), HasSubstr("/nonexistent-dir/for/sure/chart.svg"));
}

}  // namespace
}  // namespace sslsweep
