// LineChart: the pure half of `sslsweep plot` and `report`: lines with
// error bands, drawn as an SVG document (text; no gRPC, no files).
//
// The chart has a title, a plot area with horizontal grid lines, y ticks at
// "nice" round values (1, 2 or 5 times a power of ten), an x axis that is
// numeric (epochs: whole-number ticks) or categorical (layers, in the order
// given), axis labels, one polyline with point markers per series, a
// semi-transparent band mean ± std where some point aggregates n >= 2
// values, and a legend on the right. Colours are the Okabe-Ito palette
// (colour-blind safe), from its darkest hue; after eight series the colours
// repeat with a dash pattern. Every user-supplied text is XML-escaped.
// Numbers are printed with fixed formats, so the same chart is the same
// bytes.
//
// Thread contract: plain values and pure functions.

#ifndef SSLSWEEP_CLI_PLOT_CHART_H_
#define SSLSWEEP_CLI_PLOT_CHART_H_

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace sslsweep {

struct ChartPoint {
  double x = 0;        // the epoch, or the index into ChartSpec::categories
  double mean = 0;
  double std = NAN;    // NaN when n < 2: no band at this point
  int n = 1;
};

struct ChartSeries {
  std::string name;                // the legend's text
  std::vector<ChartPoint> points;  // in increasing x
};

struct ChartSpec {
  std::string title;
  std::string x_label;
  std::string y_label;
  // Non-empty: a categorical x axis with these labels, left to right, and
  // ChartPoint::x is an index into it. Empty: a numeric x axis with ticks at
  // whole numbers (epochs).
  std::vector<std::string> categories;
  std::vector<ChartSeries> series;
  // A log10 y axis (for values over orders of magnitude, e.g. CDNV), ticks
  // at powers of ten (and 2 and 5 times them over at most two decades).
  // Values <= 0, and band edges below the lowest tick, sit on the axis.
  bool log_y = false;
};

// Round tick values covering [min, max]: steps of 1, 2 or 5 times a power
// of ten, at most about `max_ticks` ticks, the first at or below min and the
// last at or above max. `min_step` > 0 bounds the step from below (1 for
// epochs). A degenerate range (min == max) is widened around the value;
// non-finite input gives [0, 1].
struct AxisTicks {
  double step = 1;
  std::vector<double> values;
  int decimals = 0;  // digits after the point that print every tick exactly
};
AxisTicks NiceTicks(double min, double max, int max_ticks = 6, double min_step = 0);

// Log-axis ticks covering [min, max] (both > 0; otherwise [1, 10]): from
// the power of ten at or below min to the one at or above max. `decimals`
// is that of the smallest tick; FormatLogTick prints each exactly.
AxisTicks LogTicks(double min, double max);
std::string FormatLogTick(double value);

// A tick label: `value` with `decimals` digits, never "-0".
std::string FormatTick(double value, int decimals);

// Escapes & < > " ' for XML text and attribute values.
std::string XmlEscape(absl::string_view text);

// The chart as an SVG document (ends with "\n"). A chart without any point
// still draws its axes, and its legend says "no data".
std::string RenderLineChartSvg(const ChartSpec& chart);

}  // namespace sslsweep

#endif  // SSLSWEEP_CLI_PLOT_CHART_H_
