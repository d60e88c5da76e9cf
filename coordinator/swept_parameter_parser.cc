#include "coordinator/swept_parameter_parser.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/trial_config.h"

namespace sslsweep {
namespace {

constexpr absl::string_view kParameterKeys[] = {
    "value", "values", "distribution", "min", "max", "mu", "sigma", "q", "parameters"};

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min(
          {row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

absl::string_view LastComponent(absl::string_view path) {
  const size_t dot = path.rfind('.');
  return dot == absl::string_view::npos ? path : path.substr(dot + 1);
}

// Every leaf path under `section` ("" for the whole schema).
std::vector<std::string> LeavesUnder(absl::string_view section) {
  std::vector<std::string> leaves;
  for (const std::string& leaf : TrialConfigPaths()) {
    if (section.empty() || absl::StartsWith(leaf, absl::StrCat(section, "."))) {
      leaves.push_back(leaf);
    }
  }
  return leaves;
}

// "unknown trial configuration path 'optim.learning_rate'; did you mean
// optim.lr?; valid paths under optim: optim.name, optim.lr, ...". A path is
// near a leaf if either it or its last component is a few edits away, so a
// bare `lr` finds optim.lr.
std::string DescribeUnknownPath(absl::string_view path) {
  std::vector<std::pair<size_t, std::string>> nearest;
  const size_t tolerance = std::max<size_t>(2, LastComponent(path).size() / 3);
  for (const std::string& leaf : TrialConfigPaths()) {
    const size_t distance = std::min(
        EditDistance(path, leaf), EditDistance(LastComponent(path), LastComponent(leaf)));
    if (distance <= tolerance) nearest.emplace_back(distance, leaf);
  }
  std::stable_sort(nearest.begin(), nearest.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  if (nearest.size() > 3) nearest.resize(3);

  std::string section(path);
  while (!section.empty() && !IsTrialConfigPath(section)) {
    const size_t dot = section.rfind('.');
    section = dot == std::string::npos ? "" : section.substr(0, dot);
  }
  std::string message = absl::StrCat("unknown trial configuration path '", path, "'");
  if (!nearest.empty()) {
    absl::StrAppend(&message, "; did you mean ",
                    absl::StrJoin(nearest, " or ",
                                  [](std::string* out, const auto& entry) {
                                    absl::StrAppend(out, entry.second);
                                  }),
                    "?");
  }
  absl::StrAppend(&message, "; valid paths",
                  section.empty() ? "" : absl::StrCat(" under ", section), ": ",
                  absl::StrJoin(LeavesUnder(section), ", "));
  return message;
}

const YAML::Node* Field(const Mapping& fields, absl::string_view key) {
  auto it = fields.find(std::string(key));
  return it == fields.end() ? nullptr : &it->second.value;
}

bool IsIntegerText(const YAML::Node* node) {
  int64_t ignored = 0;
  return node != nullptr && IsPlainScalar(*node) &&
         absl::SimpleAtoi(node->Scalar(), &ignored);
}

// Walks the parameters section depth first, collecting leaf parameters.
class SweptParameterParser {
 public:
  SweptParameterParser(absl::string_view method, const SweepYamlReader& reader)
      : grid_(method == "grid"), reader_(reader) {}

  absl::Status ParseLevel(const YAML::Node& mapping, const std::string& prefix);
  std::vector<SweptParameter> TakeParameters() { return std::move(parameters_); }

 private:
  // Each step reads or checks one aspect of the leaf at `name`; `fields` are
  // its spec's entries.
  absl::Status ParseLeaf(const std::string& path, const YAML::Node& name,
                         const Mapping& fields);
  absl::Status ChooseDistribution(const YAML::Node& name, const Mapping& fields,
                                  SweptParameter& parameter) const;
  absl::Status CheckKeysApply(const Mapping& fields,
                              const SweptParameter& parameter) const;
  absl::Status ReadListedValues(const YAML::Node& name, const Mapping& fields,
                                SweptParameter& parameter) const;
  absl::Status ReadBounds(const YAML::Node& name, const Mapping& fields,
                          SweptParameter& parameter) const;
  absl::Status ReadShape(const Mapping& fields, SweptParameter& parameter) const;
  absl::Status CheckReachableValues(const YAML::Node& anchor, const Mapping& fields,
                                    const SweptParameter& parameter) const;
  absl::Status CheckAgainstKey(const SweptParameter& parameter, const YAML::Node& where,
                               absl::string_view bound, double value) const;
  absl::Status CheckGridCanEnumerate(const YAML::Node& anchor,
                                     const SweptParameter& parameter) const;

  const bool grid_;
  const SweepYamlReader& reader_;
  std::map<std::string, std::string> declared_paths_;  // path -> location
  std::vector<SweptParameter> parameters_;
};

absl::Status SweptParameterParser::ParseLevel(const YAML::Node& mapping,
                                              const std::string& prefix) {
  if (!mapping.IsMap()) {
    return reader_.ErrorAt(
        mapping, prefix.empty() ? "parameters" : absl::StrCat(prefix, ".parameters"),
        " must be a mapping of parameter name to spec");
  }
  // The node itself, not a Mapping, keeps declaration order.
  for (const auto& entry : mapping) {
    const YAML::Node& name = entry.first;
    if (!name.IsScalar() || name.Scalar().empty()) {
      return reader_.ErrorAt(name, "parameter names must be plain dotted paths");
    }
    const std::string path =
        prefix.empty() ? name.Scalar() : absl::StrCat(prefix, ".", name.Scalar());
    if (!IsTrialConfigPath(path)) {
      return reader_.ErrorAt(name, DescribeUnknownPath(path));
    }
    if (entry.second.IsNull()) {  // `optim.lr:` and nothing under it
      return reader_.ErrorAt(name, "parameter '", path, "' has no spec; give value, ",
                             "values, distribution or nested parameters");
    }
    absl::StatusOr<Mapping> fields = reader_.ReadMapping(
        entry.second, absl::StrCat("the spec of parameter '", path, "'"));
    if (!fields.ok()) return fields.status();
    for (const auto& [key, field] : *fields) {
      if (std::find(std::begin(kParameterKeys), std::end(kParameterKeys), key) ==
          std::end(kParameterKeys)) {
        return reader_.ErrorAt(field.key, "unknown key '", key, "' in parameter '", path,
                               "'; accepted: ", absl::StrJoin(kParameterKeys, ", "));
      }
    }
    if (const YAML::Node* nested = Field(*fields, "parameters")) {
      if (fields->size() > 1) {
        return reader_.ErrorAt(
            name, "parameter '", path, "' has nested parameters and other keys; ",
            "give either nested parameters or one of value, values, distribution");
      }
      if (IsTrialConfigLeaf(path)) {
        return reader_.ErrorAt(name, "'", path,
                               "' is a key of the trial configuration, not a ",
                               "section; give it value, values or a distribution");
      }
      if (absl::Status s = ParseLevel(*nested, path); !s.ok()) return s;
      continue;
    }
    if (!IsTrialConfigLeaf(path)) {
      return reader_.ErrorAt(
          name, "'", path, "' is a section of the trial configuration, not a ",
          "key; sweep its keys instead: ", absl::StrJoin(LeavesUnder(path), ", "));
    }
    auto [first, inserted] = declared_paths_.emplace(path, reader_.Where(name));
    if (!inserted) {
      return reader_.ErrorAt(name, "parameter '", path, "' is given twice (first at ",
                             first->second, "); give each path once");
    }
    if (absl::Status s = ParseLeaf(path, name, *fields); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status SweptParameterParser::ParseLeaf(const std::string& path,
                                             const YAML::Node& name,
                                             const Mapping& fields) {
  SweptParameter parameter;
  parameter.path = path;
  parameter.location = reader_.Where(name);
  parameter.integer_key = IsIntegerTrialKey(path);
  if (absl::Status s = ChooseDistribution(name, fields, parameter); !s.ok()) return s;
  if (absl::Status s = CheckKeysApply(fields, parameter); !s.ok()) return s;

  const Distribution distribution = parameter.distribution;
  absl::Status read;
  if (distribution == Distribution::kConstant ||
      distribution == Distribution::kCategorical) {
    read = ReadListedValues(name, fields, parameter);
  } else if (UsesMinMax(distribution)) {
    read = ReadBounds(name, fields, parameter);
  }
  if (!read.ok()) return read;
  if (absl::Status s = ReadShape(fields, parameter); !s.ok()) return s;

  // Errors about the distribution as a whole point at `distribution:`, or at
  // the name when it was inferred.
  const YAML::Node* distribution_node = Field(fields, "distribution");
  const YAML::Node& anchor = distribution_node ? *distribution_node : name;
  if (absl::Status s = CheckReachableValues(anchor, fields, parameter); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckGridCanEnumerate(anchor, parameter); !s.ok()) return s;
  parameters_.push_back(std::move(parameter));
  return absl::OkStatus();
}

absl::Status SweptParameterParser::ChooseDistribution(const YAML::Node& name,
                                                      const Mapping& fields,
                                                      SweptParameter& parameter) const {
  const std::string& path = parameter.path;
  if (const YAML::Node* node = Field(fields, "distribution")) {
    absl::StatusOr<std::string> text = reader_.ReadString(*node, "distribution");
    if (!text.ok()) return text.status();
    std::optional<Distribution> distribution = DistributionFromName(*text);
    if (!distribution.has_value()) {
      return reader_.ErrorAt(*node, "unknown distribution '", *text,
                             "'; supported: ", SupportedDistributionNames());
    }
    parameter.distribution = *distribution;
  } else if (Field(fields, "value") != nullptr && Field(fields, "values") != nullptr) {
    return reader_.ErrorAt(*Field(fields, "values"), "parameter '", path,
                           "' has both value and values; give one of value, ",
                           "values, distribution");
  } else if (Field(fields, "value") != nullptr) {
    parameter.distribution = Distribution::kConstant;
  } else if (Field(fields, "values") != nullptr) {
    parameter.distribution = Distribution::kCategorical;
  } else if (Field(fields, "min") != nullptr || Field(fields, "max") != nullptr) {
    // W&B: integer bounds mean int_uniform, any real bound uniform.
    parameter.distribution =
        IsIntegerText(Field(fields, "min")) && IsIntegerText(Field(fields, "max"))
            ? Distribution::kIntUniform
            : Distribution::kUniform;
  } else {
    return reader_.ErrorAt(
        name, "parameter '", path, "' needs one of value, values, distribution ",
        "(normal, q_normal, log_normal and q_log_normal take mu and sigma; the ",
        "others min and max) or nested parameters");
  }
  return absl::OkStatus();
}

absl::Status SweptParameterParser::CheckKeysApply(const Mapping& fields,
                                                  const SweptParameter& parameter) const {
  const Distribution distribution = parameter.distribution;
  for (const auto& [key, field] : fields) {
    const bool applies =
        key == "distribution" ||
        (key == "value" && distribution == Distribution::kConstant) ||
        (key == "values" && distribution == Distribution::kCategorical) ||
        ((key == "min" || key == "max") && UsesMinMax(distribution)) ||
        ((key == "mu" || key == "sigma") && UsesMuSigma(distribution)) ||
        (key == "q" && UsesQ(distribution));
    if (applies) continue;
    const char* takes = distribution == Distribution::kConstant      ? "value"
                        : distribution == Distribution::kCategorical ? "values"
                        : UsesMinMax(distribution)                   ? "min, max"
                                                                     : "mu, sigma";
    return reader_.ErrorAt(field.key, "'", key, "' does not apply to the ",
                           DistributionName(distribution), " distribution of '",
                           parameter.path, "'; it takes ", takes,
                           UsesQ(distribution) ? ", q" : "");
  }
  return absl::OkStatus();
}

absl::Status SweptParameterParser::ReadListedValues(const YAML::Node& name,
                                                    const Mapping& fields,
                                                    SweptParameter& parameter) const {
  const std::string& path = parameter.path;
  const bool constant = parameter.distribution == Distribution::kConstant;
  const char* key = constant ? "value" : "values";
  const YAML::Node* given = Field(fields, key);
  if (given == nullptr) {
    return reader_.ErrorAt(name, "parameter '", path, "': the ",
                           DistributionName(parameter.distribution),
                           " distribution needs '", key, "'");
  }
  std::vector<YAML::Node> elements;
  if (constant) {
    elements.push_back(*given);
  } else {
    if (!given->IsSequence()) {
      return reader_.ErrorAt(*given, "values of '", path,
                             "' must be a list, like [1, 2]");
    }
    if (given->size() == 0) {
      return reader_.ErrorAt(*given, "values of '", path,
                             "' is empty, which makes an empty grid; give at "
                             "least one value");
    }
    for (const auto& element : *given) elements.push_back(element);
  }
  for (const YAML::Node& element : elements) {
    if (!element.IsScalar()) {
      return reader_.ErrorAt(element, "'", path, "' takes scalar values, not a ",
                             element.IsMap()        ? "mapping"
                             : element.IsSequence() ? "list"
                                                    : "null");
    }
    if (absl::Status s = ValidateTrialValue(path, element); !s.ok()) {
      return reader_.ErrorAt(element, s.message());
    }
    parameter.values.push_back(element.Scalar());
  }
  return absl::OkStatus();
}

absl::Status SweptParameterParser::ReadBounds(const YAML::Node& name,
                                              const Mapping& fields,
                                              SweptParameter& parameter) const {
  const absl::string_view distribution = DistributionName(parameter.distribution);
  const YAML::Node* min_node = Field(fields, "min");
  const YAML::Node* max_node = Field(fields, "max");
  if (min_node == nullptr || max_node == nullptr) {
    return reader_.ErrorAt(name, "parameter '", parameter.path, "': the ", distribution,
                           " distribution needs both min and max");
  }
  for (auto [node, target] :
       {std::pair{min_node, &parameter.min}, std::pair{max_node, &parameter.max}}) {
    const std::string what = absl::StrCat(parameter.path, ": ", distribution,
                                          node == min_node ? " min" : " max");
    if (parameter.distribution == Distribution::kIntUniform) {
      absl::StatusOr<int64_t> value = reader_.ReadInteger(*node, what);
      if (!value.ok()) return value.status();
      *target = static_cast<double>(*value);
    } else {
      absl::StatusOr<double> value = reader_.ReadNumber(*node, what);
      if (!value.ok()) return value.status();
      *target = *value;
    }
  }
  if (parameter.min > parameter.max) {
    return reader_.ErrorAt(*min_node, parameter.path, ": ", distribution, " min (",
                           min_node->Scalar(), ") is greater than max (",
                           max_node->Scalar(), "); give min <= max");
  }
  if (absl::EndsWith(distribution, "_values") && parameter.min <= 0.0) {
    return reader_.ErrorAt(*min_node, parameter.path, ": ", distribution,
                           " spreads values on a log scale; min must be "
                           "greater than 0");
  }
  return absl::OkStatus();
}

absl::Status SweptParameterParser::ReadShape(const Mapping& fields,
                                             SweptParameter& parameter) const {
  const absl::string_view distribution = DistributionName(parameter.distribution);
  for (auto [key, target] :
       {std::pair{"mu", &parameter.mu}, std::pair{"sigma", &parameter.sigma},
        std::pair{"q", &parameter.q}}) {
    const YAML::Node* node = Field(fields, key);
    if (node == nullptr) continue;
    absl::StatusOr<double> value = reader_.ReadNumber(
        *node, absl::StrCat(parameter.path, ": ", distribution, " ", key));
    if (!value.ok()) return value.status();
    if (key != absl::string_view("mu") && *value <= 0.0) {
      return reader_.ErrorAt(*node, parameter.path, ": ", distribution, " ", key,
                             key == absl::string_view("q") ? " (the quantization step)"
                                                           : " (the standard deviation)",
                             " must be greater than 0");
    }
    *target = *value;
  }
  return absl::OkStatus();
}

absl::Status SweptParameterParser::CheckReachableValues(
    const YAML::Node& anchor, const Mapping& fields,
    const SweptParameter& parameter) const {
  if (std::optional<ValueRange> range = ReachableRange(parameter)) {
    // inv_log_uniform's smallest value comes from max.
    const bool reversed = parameter.distribution == Distribution::kInvLogUniform;
    const char* lowest_key = reversed ? "max" : "min";
    const char* highest_key = reversed ? "min" : "max";
    if (absl::Status s = CheckAgainstKey(parameter, *Field(fields, lowest_key),
                                         lowest_key, range->lowest);
        !s.ok()) {
      return s;
    }
    return CheckAgainstKey(parameter, *Field(fields, highest_key), highest_key,
                           range->highest);
  }
  if (!UsesMuSigma(parameter.distribution)) return absl::OkStatus();
  double median = parameter.mu;
  if (parameter.distribution == Distribution::kLogNormal ||
      parameter.distribution == Distribution::kQLogNormal) {
    median = std::exp(median);
  }
  if (UsesQ(parameter.distribution)) {
    median = std::round(median / parameter.q) * parameter.q;
  }
  const YAML::Node* mu = Field(fields, "mu");
  return CheckAgainstKey(parameter, mu ? *mu : anchor, "mu", median);
}

absl::Status SweptParameterParser::CheckAgainstKey(const SweptParameter& parameter,
                                                   const YAML::Node& where,
                                                   absl::string_view bound,
                                                   double value) const {
  const absl::string_view distribution = DistributionName(parameter.distribution);
  if (!std::isfinite(value)) {
    return reader_.ErrorAt(where, parameter.path, ": ", distribution, " ", bound,
                           " gives values too large to represent; give a "
                           "smaller ",
                           bound);
  }
  const std::string text = FormatParameterNumber(parameter, value);
  if (absl::Status s = ValidateTrialValue(parameter.path, YAML::Node(text)); !s.ok()) {
    return reader_.ErrorAt(where, distribution, " ", bound, " gives ", text, ", which ",
                           parameter.path, " does not accept: ", s.message());
  }
  return absl::OkStatus();
}

absl::Status SweptParameterParser::CheckGridCanEnumerate(
    const YAML::Node& anchor, const SweptParameter& parameter) const {
  if (!grid_) return absl::OkStatus();
  if (!IsGridDistribution(parameter.distribution)) {
    return reader_.ErrorAt(
        anchor, "grid search cannot enumerate the continuous ",
        DistributionName(parameter.distribution), " distribution of '", parameter.path,
        "'; use value, values, int_uniform or q_uniform, or method: random");
  }
  if (parameter.distribution == Distribution::kQUniform && parameter.integer_key &&
      (parameter.min != std::round(parameter.min) ||
       parameter.q != std::round(parameter.q))) {
    return reader_.ErrorAt(anchor, "'", parameter.path, "' holds integers; a ",
                           "q_uniform grid over it needs an integer min and q");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<SweptParameter>> ParseSweptParameters(
    const YAML::Node& parameters, absl::string_view method,
    const SweepYamlReader& reader) {
  SweptParameterParser parser(method, reader);
  if (absl::Status s = parser.ParseLevel(parameters, ""); !s.ok()) return s;
  return parser.TakeParameters();
}

}  // namespace sslsweep
