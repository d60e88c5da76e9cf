// SweepYamlReader: reads typed values out of a sweep file's YAML nodes, and
// turns each mistake into an InvalidArgument message that starts with the
// offending node's position, "<source>:<line>:<column>: ".
//
// Shared by the sweep parser (sweep_spec.cc) and the parameter parser
// (swept_parameter_parser.cc) so both word and locate their errors alike.
//
// Thread contract: a SweepYamlReader is immutable after construction; its
// methods may be called from any thread. YAML nodes themselves are not
// thread-safe: keep one document on one thread.

#ifndef SSLSWEEP_COORDINATOR_SWEEP_YAML_READER_H_
#define SSLSWEEP_COORDINATOR_SWEEP_YAML_READER_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "worker/trial_config.h"
#include "yaml-cpp/yaml.h"

namespace sslsweep {

// YamlLocation and IsPlainScalar come from the trial configuration schema,
// so sweep and trial errors read the same.

// One entry of a mapping: the key's node (for its position) and the value.
struct MappingEntry {
  YAML::Node key;
  YAML::Node value;
};
// A mapping's entries by key name.
using Mapping = std::map<std::string, MappingEntry>;

class SweepYamlReader {
 public:
  explicit SweepYamlReader(absl::string_view source) : source_(source) {}

  const std::string& source() const { return source_; }

  // "<source>:<line>:<column>" of `node`.
  std::string Where(const YAML::Node& node) const {
    return YamlLocation(source_, node.Mark());
  }

  // InvalidArgument "<where node is>: <parts...>".
  template <typename... Parts>
  absl::Status ErrorAt(const YAML::Node& node, const Parts&... parts) const {
    return absl::InvalidArgumentError(absl::StrCat(Where(node), ": ", parts...));
  }

  // `node` as a mapping whose keys are non-empty scalars, each given once.
  // `what` names the mapping in messages ("metric").
  absl::StatusOr<Mapping> ReadMapping(const YAML::Node& node,
                                      absl::string_view what) const;
  // A scalar's text. Fails for mappings, lists and nulls.
  absl::StatusOr<std::string> ReadString(const YAML::Node& node,
                                         absl::string_view what) const;
  // An unquoted finite number (`1e-5`, `0.3`, `-2`).
  absl::StatusOr<double> ReadNumber(const YAML::Node& node, absl::string_view what) const;
  // An unquoted integer that fits in 64 bits.
  absl::StatusOr<int64_t> ReadInteger(const YAML::Node& node,
                                      absl::string_view what) const;

 private:
  const std::string source_;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_SWEEP_YAML_READER_H_
