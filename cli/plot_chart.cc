#include "cli/plot_chart.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace sslsweep {
namespace {

// Okabe & Ito (2008), "Color Universal Design": distinguishable with every
// common colour-vision deficiency; yellow last, as it is faint on white.
constexpr const char* kPalette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                    "#E69F00", "#56B4E9", "#000000", "#F0E442"};
constexpr int kPaletteSize = 8;
constexpr const char* kDashes[] = {"", "6 3", "2 3", "8 3 2 3"};

// Layout in pixels. Text widths are estimated (7 px per character at 12 px),
// which is what keeps the output independent of installed fonts.
constexpr double kPlotWidth = 560;
constexpr double kPlotHeight = 340;
constexpr double kLeft = 76;
constexpr double kTop = 44;
constexpr double kBottom = 56;
constexpr double kBottomRotated = 96;
constexpr double kCharWidth = 7;
constexpr double kLegendGap = 20;
constexpr double kLegendRow = 18;

std::string Num(double v) {
  if (std::fabs(v) < 0.005) v = 0;  // no "-0.00"
  return absl::StrFormat("%.2f", v);
}

double NiceStep(double raw) {
  const double exponent = std::floor(std::log10(raw));
  const double base = std::pow(10.0, exponent);
  // The slack keeps 0.1 / 5 (2.0000000000000004 times 0.01) a step of 0.02.
  const double fraction = raw / base * (1 - 1e-9);
  const double nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
  return nice * base;
}

struct Range {
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  void Add(double v) {
    if (!std::isfinite(v)) return;
    min = std::min(min, v);
    max = std::max(max, v);
  }
  bool empty() const { return min > max; }
};

double BandHalfWidth(const ChartPoint& p) {
  return p.n >= 2 && std::isfinite(p.std) ? p.std : 0;
}

bool HasBand(const ChartSeries& s) {
  return std::any_of(s.points.begin(), s.points.end(),
                     [](const ChartPoint& p) { return BandHalfWidth(p) > 0; });
}

std::string Text(double x, double y, absl::string_view text, absl::string_view attributes = "") {
  return absl::StrCat("<text x=\"", Num(x), "\" y=\"", Num(y), "\"",
                      attributes.empty() ? "" : " ", attributes, ">", XmlEscape(text),
                      "</text>\n");
}

}  // namespace

AxisTicks NiceTicks(double min, double max, int max_ticks, double min_step) {
  if (!std::isfinite(min) || !std::isfinite(max) || min > max) {
    min = 0;
    max = 1;
  }
  if (max - min < 1e-12 * std::max(1.0, std::fabs(max))) {
    const double pad = min == 0 ? 0.5 : std::fabs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  max_ticks = std::max(max_ticks, 2);
  AxisTicks ticks;
  ticks.step = std::max(NiceStep((max - min) / (max_ticks - 1)), min_step);
  const double first = std::floor(min / ticks.step + 1e-9);
  const double last = std::ceil(max / ticks.step - 1e-9);
  for (double i = first; i <= last; ++i) ticks.values.push_back(i * ticks.step);
  ticks.decimals = std::max(0, -static_cast<int>(std::floor(std::log10(ticks.step) + 1e-9)));
  return ticks;
}

AxisTicks LogTicks(double min, double max) {
  if (!(min > 0) || !(max > 0) || !std::isfinite(min) || !std::isfinite(max) || min > max) {
    min = 1;
    max = 10;
  }
  const int low = static_cast<int>(std::floor(std::log10(min) + 1e-9));
  int high = static_cast<int>(std::ceil(std::log10(max) - 1e-9));
  if (high <= low) high = low + 1;
  AxisTicks ticks;
  ticks.step = 10;
  const std::vector<double> multiples =
      high - low <= 2 ? std::vector<double>{1, 2, 5} : std::vector<double>{1};
  for (int e = low; e <= high; ++e) {
    for (double m : multiples) {
      if (e == high && m > 1) break;
      ticks.values.push_back(m * std::pow(10.0, e));
    }
  }
  ticks.decimals = std::max(0, -low);
  return ticks;
}

std::string FormatLogTick(double value) {
  return FormatTick(value, std::max(0, -static_cast<int>(std::floor(std::log10(value) + 1e-9))));
}

std::string FormatTick(double value, int decimals) {
  std::string text = absl::StrFormat("%.*f", decimals, value);
  if (text.find_first_not_of("-0.") == std::string::npos && text[0] == '-') text.erase(0, 1);
  return text;
}

std::string XmlEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters are not allowed in XML 1.0 at all.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') {
          out += ' ';
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string RenderLineChartSvg(const ChartSpec& chart) {
  const bool categorical = !chart.categories.empty();

  // Data ranges, bands included.
  Range xs, ys;
  for (const ChartSeries& s : chart.series) {
    for (const ChartPoint& p : s.points) {
      xs.Add(p.x);
      for (double v : {p.mean - BandHalfWidth(p), p.mean, p.mean + BandHalfWidth(p)}) {
        if (!chart.log_y || v > 0) ys.Add(v);
      }
    }
  }
  const AxisTicks y_ticks = chart.log_y  ? LogTicks(ys.min, ys.max)
                            : ys.empty() ? NiceTicks(0, 1)
                                         : NiceTicks(ys.min, ys.max);
  AxisTicks x_ticks;
  if (!categorical) x_ticks = xs.empty() ? NiceTicks(0, 1, 8, 1) : NiceTicks(xs.min, xs.max, 8, 1);

  size_t longest_category = 0;
  for (const std::string& c : chart.categories) longest_category = std::max(longest_category, c.size());
  const bool rotate = categorical && chart.categories.size() * (longest_category * kCharWidth + 8) >
                                         kPlotWidth;
  size_t longest_name = 7;  // "no data"
  for (const ChartSeries& s : chart.series) longest_name = std::max(longest_name, s.name.size());

  const double x0 = kLeft, x1 = kLeft + kPlotWidth, y0 = kTop, y1 = kTop + kPlotHeight;
  const double width = x1 + kLegendGap + 30 + longest_name * kCharWidth + 12;
  const double height = y1 + (rotate ? kBottomRotated : kBottom);
  const auto scale = [&](double v) {
    return chart.log_y ? std::log10(std::max(v, y_ticks.values.front())) : v;
  };
  const double y_lo = scale(y_ticks.values.front()), y_hi = scale(y_ticks.values.back());
  const auto py = [&](double v) { return y1 - (scale(v) - y_lo) / (y_hi - y_lo) * kPlotHeight; };
  const double slot = categorical ? kPlotWidth / chart.categories.size() : 0;
  const auto px = [&](double x) {
    if (categorical) return x0 + (x + 0.5) * slot;
    const double lo = x_ticks.values.front(), hi = x_ticks.values.back();
    return x0 + (x - lo) / (hi - lo) * kPlotWidth;
  };

  std::string svg = absl::StrCat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", Num(width), "\" height=\"",
      Num(height), "\" viewBox=\"0 0 ", Num(width), " ", Num(height),
      "\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">\n<title>",
      XmlEscape(chart.title), "</title>\n<rect width=\"", Num(width), "\" height=\"", Num(height),
      "\" fill=\"#ffffff\"/>\n");
  absl::StrAppend(&svg, Text(width / 2, 26, chart.title,
                             "text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\""));

  // Grid, y ticks and their labels.
  absl::StrAppend(&svg, "<g stroke=\"#dddddd\" stroke-width=\"1\">\n");
  for (double v : y_ticks.values) {
    absl::StrAppend(&svg, "<line x1=\"", Num(x0), "\" y1=\"", Num(py(v)), "\" x2=\"", Num(x1),
                    "\" y2=\"", Num(py(v)), "\"/>\n");
  }
  absl::StrAppend(&svg, "</g>\n<g text-anchor=\"end\">\n");
  for (double v : y_ticks.values) {
    absl::StrAppend(&svg, Text(x0 - 6, py(v) + 4,
                               chart.log_y ? FormatLogTick(v) : FormatTick(v, y_ticks.decimals)));
  }
  absl::StrAppend(&svg, "</g>\n");

  // X ticks: positions and labels.
  std::vector<std::pair<double, std::string>> x_marks;
  if (categorical) {
    for (size_t i = 0; i < chart.categories.size(); ++i) {
      x_marks.emplace_back(px(static_cast<double>(i)), chart.categories[i]);
    }
  } else {
    for (double v : x_ticks.values) x_marks.emplace_back(px(v), FormatTick(v, x_ticks.decimals));
  }
  absl::StrAppend(&svg, "<g stroke=\"#333333\" stroke-width=\"1\">\n");
  for (const auto& [x, label] : x_marks) {
    absl::StrAppend(&svg, "<line x1=\"", Num(x), "\" y1=\"", Num(y1), "\" x2=\"", Num(x),
                    "\" y2=\"", Num(y1 + 5), "\"/>\n");
  }
  absl::StrAppend(&svg, "</g>\n<g text-anchor=\"", rotate ? "end" : "middle", "\">\n");
  for (const auto& [x, label] : x_marks) {
    if (rotate) {
      absl::StrAppend(&svg, Text(x + 4, y1 + 16, label,
                                 absl::StrCat("transform=\"rotate(-35 ", Num(x + 4), " ",
                                              Num(y1 + 16), ")\"")));
    } else {
      absl::StrAppend(&svg, Text(x, y1 + 20, label));
    }
  }
  absl::StrAppend(&svg, "</g>\n");
  absl::StrAppend(&svg, "<rect x=\"", Num(x0), "\" y=\"", Num(y0), "\" width=\"", Num(kPlotWidth),
                  "\" height=\"", Num(kPlotHeight),
                  "\" fill=\"none\" stroke=\"#333333\" stroke-width=\"1\"/>\n");
  absl::StrAppend(&svg, Text((x0 + x1) / 2, height - 12, chart.x_label,
                             "text-anchor=\"middle\" font-size=\"13\""));
  absl::StrAppend(&svg, Text(20, (y0 + y1) / 2, chart.y_label,
                             absl::StrCat("text-anchor=\"middle\" font-size=\"13\" "
                                          "transform=\"rotate(-90 20 ",
                                          Num((y0 + y1) / 2), ")\"")));

  // Bands first, so that every line is drawn over every band.
  for (size_t i = 0; i < chart.series.size(); ++i) {
    const ChartSeries& s = chart.series[i];
    if (!HasBand(s)) continue;
    std::vector<std::string> points;
    for (const ChartPoint& p : s.points) {
      points.push_back(absl::StrCat(Num(px(p.x)), ",", Num(py(p.mean + BandHalfWidth(p)))));
    }
    for (auto p = s.points.rbegin(); p != s.points.rend(); ++p) {
      points.push_back(absl::StrCat(Num(px(p->x)), ",", Num(py(p->mean - BandHalfWidth(*p)))));
    }
    absl::StrAppend(&svg, "<polygon points=\"", absl::StrJoin(points, " "), "\" fill=\"",
                    kPalette[i % kPaletteSize], "\" fill-opacity=\"0.2\" stroke=\"none\"/>\n");
  }
  for (size_t i = 0; i < chart.series.size(); ++i) {
    const ChartSeries& s = chart.series[i];
    const char* colour = kPalette[i % kPaletteSize];
    const char* dash = kDashes[(i / kPaletteSize) % 4];
    const std::string dash_attribute =
        *dash == '\0' ? "" : absl::StrCat(" stroke-dasharray=\"", dash, "\"");
    std::vector<std::string> points;
    for (const ChartPoint& p : s.points) {
      points.push_back(absl::StrCat(Num(px(p.x)), ",", Num(py(p.mean))));
    }
    absl::StrAppend(&svg, "<g fill=\"", colour, "\">\n");
    if (points.size() > 1) {
      absl::StrAppend(&svg, "<polyline points=\"", absl::StrJoin(points, " "),
                      "\" fill=\"none\" stroke=\"", colour, "\" stroke-width=\"2\"",
                      dash_attribute, "/>\n");
    }
    for (const ChartPoint& p : s.points) {
      absl::StrAppend(&svg, "<circle cx=\"", Num(px(p.x)), "\" cy=\"", Num(py(p.mean)),
                      "\" r=\"3\"/>\n");
    }
    absl::StrAppend(&svg, "</g>\n");
    // The legend entry.
    const double ly = y0 + 10 + kLegendRow * static_cast<double>(i);
    const double lx = x1 + kLegendGap;
    if (HasBand(s)) {
      absl::StrAppend(&svg, "<rect x=\"", Num(lx), "\" y=\"", Num(ly - 6), "\" width=\"24\" "
                      "height=\"12\" fill=\"", colour, "\" fill-opacity=\"0.2\"/>\n");
    }
    absl::StrAppend(&svg, "<line x1=\"", Num(lx), "\" y1=\"", Num(ly), "\" x2=\"", Num(lx + 24),
                    "\" y2=\"", Num(ly), "\" stroke=\"", colour, "\" stroke-width=\"2\"",
                    dash_attribute, "/>\n");
    absl::StrAppend(&svg, Text(lx + 30, ly + 4, s.name));
  }
  if (chart.series.empty()) {
    absl::StrAppend(&svg, Text(x1 + kLegendGap + 30, y0 + 14, "no data"));
  }
  absl::StrAppend(&svg, "</svg>\n");
  return svg;
}

}  // namespace sslsweep
