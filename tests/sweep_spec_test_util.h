// Helpers shared by the sweep spec tests (sweep_spec_test.cc for the sweeps
// that parse and expand, sweep_spec_errors_test.cc for the ones that are
// rejected). Every test sweep is parsed under the file name kSource, so the
// expected messages can name "sweep.yaml:LINE:COL"; Text() drops the newline
// after R"( so that line 1 of the sweep is the line after R"(.

#ifndef SSLSWEEP_TESTS_SWEEP_SPEC_TEST_UTIL_H_
#define SSLSWEEP_TESTS_SWEEP_SPEC_TEST_UTIL_H_

#include <string>

#include "absl/strings/string_view.h"

namespace sslsweep {

inline constexpr char kSource[] = "sweep.yaml";

// Test sweeps are raw strings that start on the line after R"( for
// readability; line 1 of the file is the line after that.
inline std::string Text(absl::string_view yaml) {
  if (!yaml.empty() && yaml.front() == '\n') yaml.remove_prefix(1);
  return std::string(yaml);
}

}  // namespace sslsweep

#endif  // SSLSWEEP_TESTS_SWEEP_SPEC_TEST_UTIL_H_
