// ParseSweptParameters: reads the `parameters:` section of a sweep file into
// SweptParameters, checking each against the trial configuration schema.
//
// Names are dotted paths (`optim.lr`) or W&B nesting
// (`optim: {parameters: {lr: ...}}`), mixed freely. Each spec is one of
// `value`, `values`, `distribution` with the keys it reads, or nested
// `parameters`; W&B's inference from a bare `min`/`max` applies. Every value
// a parameter can take is checked against its key before any trial exists:
// listed values one by one, bounded distributions at both ends, the normal
// family at its median.
//
// Thread contract: a pure function; may be called from any thread.

#ifndef SSLSWEEP_COORDINATOR_SWEPT_PARAMETER_PARSER_H_
#define SSLSWEEP_COORDINATOR_SWEPT_PARAMETER_PARSER_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "coordinator/parameter_distribution.h"
#include "coordinator/sweep_yaml_reader.h"

namespace sslsweep {

// Returns the parameters in declaration order (depth first through nesting).
// On failure returns InvalidArgument located at the offending node by
// `reader`: unknown path (with the nearest valid ones), a section where a key
// is needed, a path given twice, an empty or non-scalar value, a value the
// schema rejects, bad bounds, or, for method "grid", a continuous
// distribution.
// REQUIRES: `parameters` is a mapping; `method` is "grid" or "random".
absl::StatusOr<std::vector<SweptParameter>> ParseSweptParameters(
    const YAML::Node& parameters, absl::string_view method,
    const SweepYamlReader& reader);

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_SWEPT_PARAMETER_PARSER_H_
