#include "coordinator/sweep_yaml_reader.h"

#include <cmath>

#include "absl/strings/numbers.h"

namespace sslsweep {

absl::StatusOr<Mapping> SweepYamlReader::ReadMapping(const YAML::Node& node,
                                                     absl::string_view what) const {
  if (!node.IsMap()) return ErrorAt(node, what, " must be a mapping");
  Mapping mapping;
  for (const auto& entry : node) {
    if (!entry.first.IsScalar() || entry.first.Scalar().empty()) {
      return ErrorAt(entry.first, "keys of ", what, " must be plain names");
    }
    const std::string& key = entry.first.Scalar();
    auto [it, inserted] = mapping.emplace(key, MappingEntry{entry.first, entry.second});
    if (!inserted) {
      return ErrorAt(entry.first, "'", key, "' is given twice in ", what, " (first at ",
                     Where(it->second.key), "); give it once");
    }
  }
  return mapping;
}

absl::StatusOr<std::string> SweepYamlReader::ReadString(const YAML::Node& node,
                                                        absl::string_view what) const {
  if (!node.IsScalar()) return ErrorAt(node, what, ": expected a string");
  return node.Scalar();
}

absl::StatusOr<double> SweepYamlReader::ReadNumber(const YAML::Node& node,
                                                   absl::string_view what) const {
  double value = 0.0;
  if (!IsPlainScalar(node) || !absl::SimpleAtod(node.Scalar(), &value) ||
      !std::isfinite(value)) {
    return ErrorAt(
        node, what, ": expected a finite number, got ",
        node.IsScalar() ? absl::StrCat("'", node.Scalar(), "'") : "a non-scalar");
  }
  return value;
}

absl::StatusOr<int64_t> SweepYamlReader::ReadInteger(const YAML::Node& node,
                                                     absl::string_view what) const {
  int64_t value = 0;
  if (!IsPlainScalar(node) || !absl::SimpleAtoi(node.Scalar(), &value)) {
    return ErrorAt(
        node, what, ": expected an integer, got ",
        node.IsScalar() ? absl::StrCat("'", node.Scalar(), "'") : "a non-scalar");
  }
  return value;
}

}  // namespace sslsweep
