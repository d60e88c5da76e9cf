#include "coordinator/parameter_distribution.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/trial_config.h"
#include "yaml-cpp/yaml.h"

namespace sslsweep {
namespace {

constexpr int kMaxDrawsPerValue = 1000;
constexpr double kPi = 3.14159265358979323846;

struct NamedDistribution {
  Distribution distribution;
  absl::string_view name;
};

// W&B's order of presentation.
constexpr NamedDistribution kDistributionNames[] = {
    {Distribution::kConstant, "constant"},
    {Distribution::kCategorical, "categorical"},
    {Distribution::kIntUniform, "int_uniform"},
    {Distribution::kUniform, "uniform"},
    {Distribution::kQUniform, "q_uniform"},
    {Distribution::kLogUniform, "log_uniform"},
    {Distribution::kLogUniformValues, "log_uniform_values"},
    {Distribution::kQLogUniform, "q_log_uniform"},
    {Distribution::kQLogUniformValues, "q_log_uniform_values"},
    {Distribution::kInvLogUniform, "inv_log_uniform"},
    {Distribution::kInvLogUniformValues, "inv_log_uniform_values"},
    {Distribution::kNormal, "normal"},
    {Distribution::kQNormal, "q_normal"},
    {Distribution::kLogNormal, "log_normal"},
    {Distribution::kQLogNormal, "q_log_normal"},
};

std::string ShortestText(double value) {
  char buffer[64];
  std::to_chars_result result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

double RoundToSignificantDigits(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*g", digits, value);
  return std::strtod(buffer, nullptr);
}

double Quantize(double value, double q) { return std::round(value / q) * q; }

// [0, 1) with 53 random bits.
double UniformUnit(std::mt19937_64& generator) {
  return static_cast<double>(generator() >> 11) * 0x1.0p-53;
}

double UniformReal(std::mt19937_64& generator, double low, double high) {
  return low + (high - low) * UniformUnit(generator);
}

// Uniform over [low, high], without modulo bias.
int64_t UniformInteger(std::mt19937_64& generator, int64_t low, int64_t high) {
  const uint64_t span = static_cast<uint64_t>(high) - static_cast<uint64_t>(low) + 1;
  if (span == 0) return static_cast<int64_t>(generator());  // the whole range
  const uint64_t limit =
      std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % span;
  uint64_t draw = generator();
  while (draw >= limit) draw = generator();
  return static_cast<int64_t>(static_cast<uint64_t>(low) + draw % span);
}

// Box-Muller; 1 - u keeps the logarithm's argument in (0, 1].
double StandardNormal(std::mt19937_64& generator) {
  const double radius = std::sqrt(-2.0 * std::log(1.0 - UniformUnit(generator)));
  const double angle = 2.0 * kPi * UniformUnit(generator);
  return radius * std::cos(angle);
}

// One draw, as text, before the schema has had its say; nullopt for a value
// no key could hold (infinite, or too large to round to an integer).
std::optional<std::string> Draw(const SweptParameter& p, std::mt19937_64& generator) {
  switch (p.distribution) {
    case Distribution::kConstant:
      return p.values.front();
    case Distribution::kCategorical:
      return p.values[UniformInteger(generator, 0,
                                     static_cast<int64_t>(p.values.size()) - 1)];
    case Distribution::kIntUniform:
      return absl::StrCat(
          UniformInteger(generator, std::llround(p.min), std::llround(p.max)));
    default:
      break;
  }
  double value = 0.0;
  switch (p.distribution) {
    case Distribution::kUniform:
      value = UniformReal(generator, p.min, p.max);
      break;
    case Distribution::kQUniform:
      value = Quantize(UniformReal(generator, p.min, p.max), p.q);
      break;
    case Distribution::kLogUniform:
      value = std::exp(UniformReal(generator, p.min, p.max));
      break;
    case Distribution::kLogUniformValues:
      value = std::exp(UniformReal(generator, std::log(p.min), std::log(p.max)));
      break;
    case Distribution::kQLogUniform:
      value = Quantize(std::exp(UniformReal(generator, p.min, p.max)), p.q);
      break;
    case Distribution::kQLogUniformValues:
      value = Quantize(std::exp(UniformReal(generator, std::log(p.min), std::log(p.max))),
                       p.q);
      break;
    case Distribution::kInvLogUniform:
      value = std::exp(-UniformReal(generator, p.min, p.max));
      break;
    case Distribution::kInvLogUniformValues:
      value = std::exp(-UniformReal(generator, -std::log(p.max), -std::log(p.min)));
      break;
    case Distribution::kNormal:
      value = p.mu + p.sigma * StandardNormal(generator);
      break;
    case Distribution::kQNormal:
      value = Quantize(p.mu + p.sigma * StandardNormal(generator), p.q);
      break;
    case Distribution::kLogNormal:
      value = std::exp(p.mu + p.sigma * StandardNormal(generator));
      break;
    case Distribution::kQLogNormal:
      value = Quantize(std::exp(p.mu + p.sigma * StandardNormal(generator)), p.q);
      break;
    default:
      break;
  }
  if (!std::isfinite(value)) return std::nullopt;
  if (p.integer_key && std::fabs(value) > 9.0e18) return std::nullopt;
  return FormatParameterNumber(p, value);
}

}  // namespace

absl::string_view DistributionName(Distribution distribution) {
  for (const NamedDistribution& entry : kDistributionNames) {
    if (entry.distribution == distribution) return entry.name;
  }
  return "unknown";
}

std::optional<Distribution> DistributionFromName(absl::string_view name) {
  for (const NamedDistribution& entry : kDistributionNames) {
    if (entry.name == name) return entry.distribution;
  }
  return std::nullopt;
}

std::string SupportedDistributionNames() {
  return absl::StrJoin(kDistributionNames, ", ",
                       [](std::string* out, const NamedDistribution& entry) {
                         absl::StrAppend(out, entry.name);
                       });
}

bool UsesMinMax(Distribution d) {
  return d != Distribution::kConstant && d != Distribution::kCategorical &&
         !UsesMuSigma(d);
}

bool UsesMuSigma(Distribution d) {
  return d == Distribution::kNormal || d == Distribution::kQNormal ||
         d == Distribution::kLogNormal || d == Distribution::kQLogNormal;
}

bool UsesQ(Distribution d) {
  return d == Distribution::kQUniform || d == Distribution::kQLogUniform ||
         d == Distribution::kQLogUniformValues || d == Distribution::kQNormal ||
         d == Distribution::kQLogNormal;
}

bool IsGridDistribution(Distribution d) {
  return d == Distribution::kConstant || d == Distribution::kCategorical ||
         d == Distribution::kIntUniform || d == Distribution::kQUniform;
}

bool IsIntegerTrialKey(absl::string_view path) {
  return TrialValueTypeOf(path) == TrialValueType::kInteger;
}

std::optional<ValueRange> ReachableRange(const SweptParameter& p) {
  switch (p.distribution) {
    case Distribution::kIntUniform:
    case Distribution::kUniform:
    case Distribution::kLogUniformValues:
    case Distribution::kInvLogUniformValues:
      return ValueRange{p.min, p.max};
    case Distribution::kQUniform:
    case Distribution::kQLogUniformValues:
      return ValueRange{Quantize(p.min, p.q), Quantize(p.max, p.q)};
    case Distribution::kLogUniform:
      return ValueRange{std::exp(p.min), std::exp(p.max)};
    case Distribution::kQLogUniform:
      return ValueRange{Quantize(std::exp(p.min), p.q), Quantize(std::exp(p.max), p.q)};
    case Distribution::kInvLogUniform:
      return ValueRange{std::exp(-p.max), std::exp(-p.min)};
    default:
      return std::nullopt;
  }
}

std::string FormatParameterNumber(const SweptParameter& p, double value) {
  if (p.integer_key || p.distribution == Distribution::kIntUniform) {
    return absl::StrCat(std::llround(value));
  }
  if (UsesQ(p.distribution)) value = RoundToSignificantDigits(value, 15);
  return ShortestText(value);
}

int64_t GridSize(const SweptParameter& p) {
  switch (p.distribution) {
    case Distribution::kConstant:
    case Distribution::kCategorical:
      return static_cast<int64_t>(p.values.size());
    case Distribution::kIntUniform:
      return std::llround(p.max) - std::llround(p.min) + 1;
    case Distribution::kQUniform: {
      // Tolerate the rounding in (0.3 - 0.1) / 0.1 = 1.9999999999999998.
      const double steps = (p.max - p.min) / p.q;
      return static_cast<int64_t>(std::floor(steps + 1e-9 * std::max(1.0, steps))) + 1;
    }
    default:
      return 0;
  }
}

std::string GridValueAt(const SweptParameter& p, int64_t k) {
  switch (p.distribution) {
    case Distribution::kConstant:
    case Distribution::kCategorical:
      return p.values[k];
    case Distribution::kIntUniform:
      return absl::StrCat(std::llround(p.min) + k);
    default:
      return FormatParameterNumber(p, p.min + static_cast<double>(k) * p.q);
  }
}

absl::StatusOr<std::string> SampleParameterValue(const SweptParameter& parameter,
                                                 std::mt19937_64& generator) {
  absl::Status last_rejection;
  for (int draw = 0; draw < kMaxDrawsPerValue; ++draw) {
    std::optional<std::string> text = Draw(parameter, generator);
    if (!text.has_value()) {
      last_rejection = absl::InvalidArgumentError("a value too large to hold");
      continue;
    }
    last_rejection = ValidateTrialValue(parameter.path, YAML::Node(*text));
    if (last_rejection.ok()) return *std::move(text);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(parameter.location, ": ", parameter.path, ": ", kMaxDrawsPerValue,
                   " draws in a row from ", DistributionName(parameter.distribution),
                   " were rejected by the schema (last: ", last_rejection.message(),
                   "); use a distribution that stays inside the key's range"));
}

}  // namespace sslsweep
