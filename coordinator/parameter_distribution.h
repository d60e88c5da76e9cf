// SweptParameter: one parameter of a sweep (a dotted path into the trial
// configuration and the values it takes), and the arithmetic behind it: the
// W&B distributions, their grid enumeration, sampling, and the text a value is
// written as.
//
// sweep_spec.cc builds these from YAML and checks them; this file assumes a
// parameter that passed those checks (REQUIRES lines below say which).
// Sampling draws only from the generator it is handed, so a seeded generator
// gives the same values on every platform: no std:: distribution (their
// algorithms are implementation-defined) is used.
//
// Thread contract: the functions are pure apart from the generator they are
// handed, and may be called from any thread.

#ifndef SSLSWEEP_COORDINATOR_PARAMETER_DISTRIBUTION_H_
#define SSLSWEEP_COORDINATOR_PARAMETER_DISTRIBUTION_H_

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sslsweep {

// The W&B distribution names, plus `constant` (`value:`) and `categorical`
// (`values:`).
enum class Distribution {
  kConstant,             // value
  kCategorical,          // one of values, uniformly
  kIntUniform,           // integer in [min, max]
  kUniform,              // real in [min, max]
  kQUniform,             // round(uniform(min, max) / q) * q
  kLogUniform,           // exp(uniform(min, max)): min, max are exponents
  kLogUniformValues,     // exp(uniform(ln min, ln max)): min, max are values
  kQLogUniform,          // round(log_uniform / q) * q
  kQLogUniformValues,    // round(log_uniform_values / q) * q
  kInvLogUniform,        // exp(-uniform(min, max)): min, max are exponents
  kInvLogUniformValues,  // exp(-uniform(-ln max, -ln min)): values in [min, max]
  kNormal,               // normal(mu, sigma)
  kQNormal,              // round(normal / q) * q
  kLogNormal,            // exp(normal(mu, sigma))
  kQLogNormal,           // round(log_normal / q) * q
};

absl::string_view DistributionName(Distribution distribution);
std::optional<Distribution> DistributionFromName(absl::string_view name);
// "constant, categorical, int_uniform, ..." for messages.
std::string SupportedDistributionNames();

// Which keys a distribution reads besides `distribution`.
bool UsesMinMax(Distribution distribution);
bool UsesMuSigma(Distribution distribution);
bool UsesQ(Distribution distribution);
// constant, categorical, int_uniform and q_uniform have finitely many values
// and can be enumerated by a grid; the others are continuous.
bool IsGridDistribution(Distribution distribution);

struct SweptParameter {
  std::string path;      // dotted path into the trial configuration
  std::string location;  // "<source>:<line>:<col>" of its spec, for messages
  Distribution distribution = Distribution::kConstant;
  // constant: the one value; categorical: every value, as written.
  std::vector<std::string> values;
  // As written: exponents for log_uniform, q_log_uniform, inv_log_uniform.
  double min = 0.0;
  double max = 0.0;
  double mu = 0.0;
  double sigma = 1.0;
  double q = 1.0;
  // The schema key holds an integer: every value is rounded to one.
  bool integer_key = false;
};

// True if the schema stores `path` as an integer (`backbone.depth`), false
// for reals, strings and unknown paths.
bool IsIntegerTrialKey(absl::string_view path);

// The smallest and largest values a bounded distribution can produce (after
// transformation and quantization, before rounding for integer keys), or
// nullopt for the normal family, whose support is unbounded.
// REQUIRES: UsesMinMax(parameter.distribution), min <= max, q > 0.
struct ValueRange {
  double lowest;
  double highest;
};
std::optional<ValueRange> ReachableRange(const SweptParameter& parameter);

// The text a drawn or enumerated number is written as: an integer for integer
// keys (rounded) and for int_uniform, otherwise the shortest text that reads
// back as the same double; quantized values are first rounded to 15
// significant digits so that 3 * 0.1 reads "0.3".
std::string FormatParameterNumber(const SweptParameter& parameter, double value);

// The number of values a grid enumerates for `parameter`, and the k-th of
// them. int_uniform: min, min+1, ..., max. q_uniform: min, min+q, ... up to
// and including max when it falls on that lattice (W&B stops before max).
// REQUIRES: IsGridDistribution(parameter.distribution); for int_uniform and
// q_uniform, min <= max and q > 0; 0 <= k < GridSize(parameter).
int64_t GridSize(const SweptParameter& parameter);
std::string GridValueAt(const SweptParameter& parameter, int64_t k);

// Draws one value and returns its text. A draw that the schema rejects for
// the key (a normal sample below a key's minimum, say) is redrawn, which
// truncates the distribution to the key's range. Fails with InvalidArgument,
// at parameter.location, if 1000 draws in a row are rejected.
absl::StatusOr<std::string> SampleParameterValue(const SweptParameter& parameter,
                                                 std::mt19937_64& generator);

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_PARAMETER_DISTRIBUTION_H_
