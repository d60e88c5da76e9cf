#include "coordinator/sweep_spec.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "yaml-cpp/yaml.h"

namespace sslsweep {
namespace {

constexpr absl::string_view kSweepKeys[] = {
    "name",       "description",     "method", "metric", "run_cap",
    "parameters", "early_terminate", "trial",  "resources", "seed"};
constexpr absl::string_view kLauncherKeys[] = {"program", "command", "project",
                                               "entity"};
constexpr absl::string_view kParameterKeys[] = {
    "value", "values", "distribution", "min", "max", "mu", "sigma", "q",
    "parameters"};
constexpr absl::string_view kMetricKeys[] = {"name", "goal"};
// Used by W&B's Bayesian search only.
constexpr absl::string_view kIgnoredMetricKeys[] = {"target", "impute",
                                                    "impute_while_running"};
constexpr absl::string_view kHyperbandKeys[] = {"type", "min_iter", "max_iter",
                                                "s",    "eta",      "strict"};

template <size_t N>
bool Contains(const absl::string_view (&names)[N], absl::string_view name) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

template <size_t N>
std::string JoinNames(const absl::string_view (&names)[N]) {
  return absl::StrJoin(std::begin(names), std::end(names), ", ");
}

std::string Location(absl::string_view source, const YAML::Mark& mark) {
  if (mark.is_null()) return std::string(source);
  return absl::StrCat(source, ":", mark.line + 1, ":", mark.column + 1);
}

// A quoted scalar is a string even if it reads as a number.
bool IsPlainScalar(const YAML::Node& node) {
  return node.IsScalar() && node.Tag() != "!";
}

// The entries of a YAML mapping by key, with each key's node for locations.
struct MappingEntry {
  YAML::Node key;
  YAML::Node value;
};
using Mapping = std::map<std::string, MappingEntry>;

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                         diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

absl::string_view LastComponent(absl::string_view path) {
  const size_t dot = path.rfind('.');
  return dot == absl::string_view::npos ? path : path.substr(dot + 1);
}

std::vector<std::string> LeavesUnder(absl::string_view section) {
  std::vector<std::string> leaves;
  for (const std::string& leaf : TrialConfigPaths()) {
    if (section.empty() || absl::StartsWith(leaf, absl::StrCat(section, "."))) {
      leaves.push_back(leaf);
    }
  }
  return leaves;
}

// "unknown ... 'optim.learning_rate'; did you mean optim.lr? valid paths
// under optim: ...".
std::string DescribeUnknownPath(absl::string_view path) {
  std::vector<std::pair<size_t, std::string>> scored;
  for (const std::string& leaf : TrialConfigPaths()) {
    const size_t distance =
        std::min(EditDistance(path, leaf),
                 EditDistance(LastComponent(path), LastComponent(leaf)));
    if (distance <= std::max<size_t>(2, LastComponent(path).size() / 3)) {
      scored.emplace_back(distance, leaf);
    }
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  if (scored.size() > 3) scored.resize(3);

  std::string section(path);
  while (!section.empty() && !IsTrialConfigPath(section)) {
    const size_t dot = section.rfind('.');
    section = dot == std::string::npos ? "" : section.substr(0, dot);
  }
  std::string message =
      absl::StrCat("unknown trial configuration path '", path, "'");
  if (!scored.empty()) {
    absl::StrAppend(&message, "; did you mean ",
                    absl::StrJoin(scored, " or ",
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

// Deep copy with every mark cleared: trial configurations assembled from the
// base and drawn values must not report positions in text the user never saw.
YAML::Node CopyWithoutMarks(const YAML::Node& node) {
  if (node.IsMap()) {
    YAML::Node copy(YAML::NodeType::Map);
    for (const auto& entry : node) {
      copy[entry.first.Scalar()] = CopyWithoutMarks(entry.second);
    }
    return copy;
  }
  if (node.IsScalar()) {
    YAML::Node copy(node.Scalar());
    copy.SetTag(node.Tag());
    return copy;
  }
  return YAML::Node(node.Type());
}

void SetAtPath(YAML::Node root, const std::string& path, const std::string& text) {
  std::vector<std::string> parts = absl::StrSplit(path, '.');
  YAML::Node section = root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    // reset() rebinds; operator= would overwrite the node's content instead.
    section.reset(section[parts[i]]);
  }
  section[parts.back()] = YAML::Node(text);
}

// Mixes the sweep seed and the trial index into one generator, so that trial
// i's draws do not depend on how many trials come before it.
std::mt19937_64 TrialGenerator(uint64_t seed, int64_t index) {
  const uint64_t trial = static_cast<uint64_t>(index);
  std::seed_seq sequence{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                         static_cast<uint32_t>(trial),
                         static_cast<uint32_t>(trial >> 32)};
  return std::mt19937_64(sequence);
}

// Reads one sweep file. Each Parse* method fills its part of spec_ and
// returns the first error, located in the file.
class SweepParser {
 public:
  explicit SweepParser(absl::string_view source) : source_(source) {
    spec_.source = source_;
  }

  absl::StatusOr<SweepSpec> Parse(const YAML::Node& root);

 private:
  template <typename... Parts>
  absl::Status ErrorAt(const YAML::Node& node, const Parts&... parts) const {
    return absl::InvalidArgumentError(
        absl::StrCat(Location(source_, node.Mark()), ": ", parts...));
  }
  std::string Where(const YAML::Node& node) const {
    return Location(source_, node.Mark());
  }

  // `node` as a mapping of scalar keys, each key at most once; keys not in
  // `accepted` are errors unless `accept_any`.
  absl::StatusOr<Mapping> ReadMapping(const YAML::Node& node,
                                      absl::string_view what) const;
  absl::StatusOr<std::string> ReadString(const YAML::Node& node,
                                         absl::string_view what) const;
  absl::StatusOr<double> ReadNumber(const YAML::Node& node,
                                    absl::string_view what) const;
  absl::StatusOr<int64_t> ReadInteger(const YAML::Node& node,
                                      absl::string_view what) const;

  absl::Status ParseMethod(const Mapping& sweep, const YAML::Node& root);
  absl::Status ParseMetric(const MappingEntry& entry);
  absl::Status ParseEarlyTerminate(const MappingEntry& entry);
  absl::Status ParseResources(const MappingEntry& entry);
  absl::Status ParseParameters(const YAML::Node& mapping,
                               const std::string& prefix);
  absl::Status ParseParameter(const std::string& path, const YAML::Node& name,
                              const Mapping& fields);
  absl::Status CheckAgainstKey(const SweptParameter& parameter,
                               const YAML::Node& where, absl::string_view bound,
                               double value) const;
  absl::Status CountTrials(const Mapping& sweep);

  std::string source_;
  SweepSpec spec_;
  std::map<std::string, std::string> declared_paths_;  // path -> location
};

absl::StatusOr<Mapping> SweepParser::ReadMapping(const YAML::Node& node,
                                                 absl::string_view what) const {
  if (!node.IsMap()) {
    return ErrorAt(node, what, " must be a mapping");
  }
  Mapping mapping;
  for (const auto& entry : node) {
    if (!entry.first.IsScalar() || entry.first.Scalar().empty()) {
      return ErrorAt(entry.first, "keys of ", what, " must be plain names");
    }
    const std::string& key = entry.first.Scalar();
    auto [it, inserted] = mapping.emplace(key, MappingEntry{entry.first, entry.second});
    if (!inserted) {
      return ErrorAt(entry.first, "'", key, "' is given twice in ", what,
                     " (first at ", Where(it->second.key), "); give it once");
    }
  }
  return mapping;
}

absl::StatusOr<std::string> SweepParser::ReadString(const YAML::Node& node,
                                                    absl::string_view what) const {
  if (!node.IsScalar()) return ErrorAt(node, what, ": expected a string");
  return node.Scalar();
}

absl::StatusOr<double> SweepParser::ReadNumber(const YAML::Node& node,
                                               absl::string_view what) const {
  double value = 0.0;
  if (!IsPlainScalar(node) || !absl::SimpleAtod(node.Scalar(), &value) ||
      !std::isfinite(value)) {
    return ErrorAt(node, what, ": expected a finite number, got '",
                   node.IsScalar() ? node.Scalar() : "a non-scalar", "'");
  }
  return value;
}

absl::StatusOr<int64_t> SweepParser::ReadInteger(const YAML::Node& node,
                                                 absl::string_view what) const {
  int64_t value = 0;
  if (!IsPlainScalar(node) || !absl::SimpleAtoi(node.Scalar(), &value)) {
    return ErrorAt(node, what, ": expected an integer, got '",
                   node.IsScalar() ? node.Scalar() : "a non-scalar", "'");
  }
  return value;
}

absl::StatusOr<SweepSpec> SweepParser::Parse(const YAML::Node& root) {
  if (!root.IsMap()) {
    return ErrorAt(root, "a sweep must be a mapping; accepted keys: ",
                   JoinNames(kSweepKeys));
  }
  absl::StatusOr<Mapping> sweep = ReadMapping(root, "the sweep");
  if (!sweep.ok()) return sweep.status();
  for (const auto& entry : root) {  // file order, for the warnings
    const std::string& key = entry.first.Scalar();
    if (Contains(kLauncherKeys, key)) {
      spec_.warnings.push_back(absl::StrCat(
          Where(entry.first), ": '", key, "' is a W&B launcher key; ignored"));
    } else if (!Contains(kSweepKeys, key)) {
      return ErrorAt(entry.first, "unknown sweep key '", key, "'; accepted keys: ",
                     JoinNames(kSweepKeys), " (and W&B's ",
                     JoinNames(kLauncherKeys), ", which are ignored)");
    }
  }

  auto field = [&](absl::string_view key) -> const MappingEntry* {
    auto it = sweep->find(std::string(key));
    return it == sweep->end() ? nullptr : &it->second;
  };
  if (absl::Status s = ParseMethod(*sweep, root); !s.ok()) return s;
  for (auto [key, target] : {std::pair{"name", &spec_.name},
                             std::pair{"description", &spec_.description}}) {
    if (const MappingEntry* entry = field(key)) {
      absl::StatusOr<std::string> text = ReadString(entry->value, key);
      if (!text.ok()) return text.status();
      *target = *std::move(text);
    }
  }
  if (const MappingEntry* entry = field("run_cap")) {
    absl::StatusOr<int64_t> run_cap = ReadInteger(entry->value, "run_cap");
    if (!run_cap.ok()) return run_cap.status();
    if (*run_cap <= 0) {
      return ErrorAt(entry->value, "run_cap must be a positive integer, got ",
                     *run_cap, "; leave it out for no cap (grid only)");
    }
    spec_.run_cap = *run_cap;
  }
  if (const MappingEntry* entry = field("seed")) {
    if (!IsPlainScalar(entry->value) ||
        !absl::SimpleAtoi(entry->value.Scalar(), &spec_.seed)) {
      return ErrorAt(entry->value, "seed: expected an integer from 0 to ",
                     std::numeric_limits<uint64_t>::max());
    }
  }
  if (const MappingEntry* entry = field("metric")) {
    if (absl::Status s = ParseMetric(*entry); !s.ok()) return s;
  }
  if (const MappingEntry* entry = field("early_terminate")) {
    if (absl::Status s = ParseEarlyTerminate(*entry); !s.ok()) return s;
  }
  if (const MappingEntry* entry = field("resources")) {
    if (absl::Status s = ParseResources(*entry); !s.ok()) return s;
  }
  if (const MappingEntry* entry = field("trial")) {
    absl::StatusOr<TrialConfig> base = ParseTrialConfig(entry->value, source_);
    if (!base.ok()) return base.status();
    spec_.base_trial = *std::move(base);
  }
  spec_.parameters_location = Where(root);
  if (const MappingEntry* entry = field("parameters")) {
    spec_.parameters_location = Where(entry->key);
    if (!entry->value.IsNull()) {
      if (absl::Status s = ParseParameters(entry->value, ""); !s.ok()) return s;
    }
  }
  if (absl::Status s = CountTrials(*sweep); !s.ok()) return s;
  return std::move(spec_);
}

absl::Status SweepParser::ParseMethod(const Mapping& sweep,
                                      const YAML::Node& root) {
  auto it = sweep.find("method");
  if (it == sweep.end()) {
    return ErrorAt(root, "the sweep has no 'method'; accepted: grid, random");
  }
  const YAML::Node& node = it->second.value;
  absl::StatusOr<std::string> method = ReadString(node, "method");
  if (!method.ok()) return method.status();
  if (*method == "bayes") {
    return ErrorAt(node, "method 'bayes' is not supported yet; use grid or random");
  }
  if (*method != "grid" && *method != "random") {
    return ErrorAt(node, "unknown method '", *method, "'; accepted: grid, random");
  }
  spec_.method = *std::move(method);
  return absl::OkStatus();
}

absl::Status SweepParser::ParseMetric(const MappingEntry& entry) {
  absl::StatusOr<Mapping> metric = ReadMapping(entry.value, "metric");
  if (!metric.ok()) return metric.status();
  for (const auto& field : entry.value) {  // file order, for the warnings
    const std::string& key = field.first.Scalar();
    if (Contains(kIgnoredMetricKeys, key)) {
      spec_.warnings.push_back(absl::StrCat(
          Where(field.first), ": 'metric.", key,
          "' is used by W&B's Bayesian search only; ignored"));
    } else if (!Contains(kMetricKeys, key)) {
      return ErrorAt(field.first, "unknown metric key '", key, "'; accepted: ",
                     JoinNames(kMetricKeys), " (and W&B's ",
                     JoinNames(kIgnoredMetricKeys), ", which are ignored)");
    }
  }
  auto name = metric->find("name");
  if (name == metric->end()) {
    return ErrorAt(entry.key, "metric needs a 'name' (the measurement to "
                              "optimize), with goal minimize or maximize");
  }
  absl::StatusOr<std::string> name_text = ReadString(name->second.value, "metric.name");
  if (!name_text.ok()) return name_text.status();
  spec_.metric.name = *std::move(name_text);
  spec_.metric.goal = "minimize";  // W&B's default
  if (auto goal = metric->find("goal"); goal != metric->end()) {
    const YAML::Node& node = goal->second.value;
    if (!node.IsScalar() ||
        (node.Scalar() != "minimize" && node.Scalar() != "maximize")) {
      return ErrorAt(node, "metric.goal must be minimize or maximize");
    }
    spec_.metric.goal = node.Scalar();
  }
  return absl::OkStatus();
}

absl::Status SweepParser::ParseEarlyTerminate(const MappingEntry& entry) {
  absl::StatusOr<Mapping> fields = ReadMapping(entry.value, "early_terminate");
  if (!fields.ok()) return fields.status();
  for (const auto& [key, field] : *fields) {
    if (!Contains(kHyperbandKeys, key)) {
      return ErrorAt(field.key, "unknown early_terminate key '", key,
                     "'; accepted: ", JoinNames(kHyperbandKeys));
    }
  }
  auto type = fields->find("type");
  if (type == fields->end() || !type->second.value.IsScalar() ||
      type->second.value.Scalar() != "hyperband") {
    return ErrorAt(type == fields->end() ? entry.value : type->second.value,
                   "early_terminate needs type: hyperband (the only type)");
  }
  HyperbandSpec hyperband;
  for (auto [key, target] : {std::pair{"min_iter", &hyperband.min_iter},
                             std::pair{"max_iter", &hyperband.max_iter},
                             std::pair{"s", &hyperband.s}}) {
    auto it = fields->find(key);
    if (it == fields->end()) continue;
    absl::StatusOr<int64_t> value =
        ReadInteger(it->second.value, absl::StrCat("early_terminate.", key));
    if (!value.ok()) return value.status();
    if (*value < 1) {
      return ErrorAt(it->second.value, "early_terminate.", key,
                     " must be at least 1, got ", *value);
    }
    *target = *value;
  }
  const bool by_min = hyperband.min_iter > 0;
  const bool by_max = hyperband.max_iter > 0 && hyperband.s > 0;
  if (by_min == by_max || (by_min && (hyperband.max_iter > 0 || hyperband.s > 0))) {
    return ErrorAt(entry.value, "early_terminate needs either min_iter, or "
                                "max_iter with s, not both");
  }
  if (auto it = fields->find("eta"); it != fields->end()) {
    absl::StatusOr<double> eta = ReadNumber(it->second.value, "early_terminate.eta");
    if (!eta.ok()) return eta.status();
    if (*eta <= 1.0) {
      return ErrorAt(it->second.value, "early_terminate.eta must be greater than 1");
    }
    hyperband.eta = *eta;
  }
  if (auto it = fields->find("strict"); it != fields->end()) {
    const YAML::Node& node = it->second.value;
    const std::string text =
        node.IsScalar() ? absl::AsciiStrToLower(node.Scalar()) : "";
    if (text != "true" && text != "false") {
      return ErrorAt(node, "early_terminate.strict must be true or false");
    }
    hyperband.strict = text == "true";
  }
  if (spec_.metric.name.empty()) {
    return ErrorAt(entry.key, "hyperband early termination ranks trials by a "
                              "metric; give metric: {name: ..., goal: ...}");
  }
  spec_.early_terminate = hyperband;
  return absl::OkStatus();
}

absl::Status SweepParser::ParseResources(const MappingEntry& entry) {
  absl::StatusOr<Mapping> fields = ReadMapping(entry.value, "resources");
  if (!fields.ok()) return fields.status();
  for (const auto& [key, field] : *fields) {
    if (key != "ranks") {
      return ErrorAt(field.key, "unknown resources key '", key,
                     "'; accepted: ranks");
    }
    absl::StatusOr<int64_t> ranks = ReadInteger(field.value, "resources.ranks");
    if (!ranks.ok()) return ranks.status();
    if (*ranks != 1) {
      return ErrorAt(field.value, "resources.ranks: ", *ranks,
                     " ranks per trial is not supported yet; use ranks: 1");
    }
    spec_.ranks = 1;
  }
  return absl::OkStatus();
}

absl::Status SweepParser::ParseParameters(const YAML::Node& mapping,
                                          const std::string& prefix) {
  const std::string what =
      prefix.empty() ? "parameters" : absl::StrCat("the parameters of ", prefix);
  if (!mapping.IsMap()) {
    return ErrorAt(mapping, what, " must be a mapping of parameter name to spec");
  }
  // Iterate the node, not a Mapping, to keep declaration order.
  for (const auto& entry : mapping) {
    const YAML::Node& name = entry.first;
    const YAML::Node& spec = entry.second;
    if (!name.IsScalar() || name.Scalar().empty()) {
      return ErrorAt(name, "parameter names must be plain dotted paths");
    }
    const std::string path =
        prefix.empty() ? name.Scalar() : absl::StrCat(prefix, ".", name.Scalar());
    if (!IsTrialConfigPath(path)) return ErrorAt(name, DescribeUnknownPath(path));
    absl::StatusOr<Mapping> fields =
        ReadMapping(spec, absl::StrCat("the spec of parameter '", path, "'"));
    if (!fields.ok()) return fields.status();
    for (const auto& [key, field] : *fields) {
      if (!Contains(kParameterKeys, key)) {
        return ErrorAt(field.key, "unknown key '", key, "' in parameter '", path,
                       "'; accepted: ", JoinNames(kParameterKeys));
      }
    }
    if (auto nested = fields->find("parameters"); nested != fields->end()) {
      if (fields->size() > 1) {
        return ErrorAt(name, "parameter '", path, "' has nested 'parameters' ",
                       "and other keys; give either nested parameters or ",
                       "one of value, values, distribution");
      }
      if (IsTrialConfigLeaf(path)) {
        return ErrorAt(name, "'", path, "' is a key of the trial configuration, ",
                       "not a section; give it value, values or a distribution");
      }
      if (absl::Status s = ParseParameters(nested->second.value, path); !s.ok()) {
        return s;
      }
      continue;
    }
    if (!IsTrialConfigLeaf(path)) {
      return ErrorAt(name, "'", path, "' is a section of the trial configuration, ",
                     "not a key; sweep its keys instead: ",
                     absl::StrJoin(LeavesUnder(path), ", "));
    }
    if (auto [it, inserted] = declared_paths_.emplace(path, Where(name)); !inserted) {
      return ErrorAt(name, "parameter '", path, "' is given twice (first at ",
                     it->second, "); give each path once");
    }
    if (absl::Status s = ParseParameter(path, name, *fields); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status SweepParser::ParseParameter(const std::string& path,
                                         const YAML::Node& name,
                                         const Mapping& fields) {
  auto node = [&](absl::string_view key) -> const YAML::Node* {
    auto it = fields.find(std::string(key));
    return it == fields.end() ? nullptr : &it->second.value;
  };
  SweptParameter parameter;
  parameter.path = path;
  parameter.location = Where(name);
  parameter.integer_key = IsIntegerTrialKey(path);

  // Which distribution: named, or inferred the way W&B infers it.
  const YAML::Node* distribution_node = node("distribution");
  if (distribution_node != nullptr) {
    absl::StatusOr<std::string> text = ReadString(*distribution_node, "distribution");
    if (!text.ok()) return text.status();
    std::optional<Distribution> distribution = DistributionFromName(*text);
    if (!distribution.has_value()) {
      return ErrorAt(*distribution_node, "unknown distribution '", *text,
                     "'; supported: ", SupportedDistributionNames());
    }
    parameter.distribution = *distribution;
  } else if (node("value") != nullptr && node("values") != nullptr) {
    return ErrorAt(*node("values"), "parameter '", path, "' has both value and ",
                   "values; give one of value, values, distribution");
  } else if (node("value") != nullptr) {
    parameter.distribution = Distribution::kConstant;
  } else if (node("values") != nullptr) {
    parameter.distribution = Distribution::kCategorical;
  } else if (node("min") != nullptr || node("max") != nullptr) {
    int64_t ignored = 0;
    const bool integers = node("min") != nullptr && node("max") != nullptr &&
                          IsPlainScalar(*node("min")) && IsPlainScalar(*node("max")) &&
                          absl::SimpleAtoi(node("min")->Scalar(), &ignored) &&
                          absl::SimpleAtoi(node("max")->Scalar(), &ignored);
    parameter.distribution =
        integers ? Distribution::kIntUniform : Distribution::kUniform;
  } else {
    return ErrorAt(name, "parameter '", path, "' needs one of value, values, ",
                   "distribution (normal, q_normal, log_normal and q_log_normal ",
                   "take mu and sigma) or nested parameters");
  }
  const Distribution distribution = parameter.distribution;
  const absl::string_view distribution_name = DistributionName(distribution);

  // Only the keys this distribution reads.
  for (const auto& [key, field] : fields) {
    const bool applies =
        key == "distribution" ||
        (key == "value" && distribution == Distribution::kConstant) ||
        (key == "values" && distribution == Distribution::kCategorical) ||
        ((key == "min" || key == "max") && UsesMinMax(distribution)) ||
        ((key == "mu" || key == "sigma") && UsesMuSigma(distribution)) ||
        (key == "q" && UsesQ(distribution));
    if (!applies) {
      return ErrorAt(field.key, "'", key, "' does not apply to the ",
                     distribution_name, " distribution of '", path, "'; it takes ",
                     distribution == Distribution::kConstant      ? "value"
                     : distribution == Distribution::kCategorical ? "values"
                     : UsesMinMax(distribution)                   ? "min, max"
                                                                  : "mu, sigma",
                     UsesQ(distribution) ? ", q" : "");
    }
  }

  if (distribution == Distribution::kConstant ||
      distribution == Distribution::kCategorical) {
    const bool constant = distribution == Distribution::kConstant;
    const YAML::Node* given = node(constant ? "value" : "values");
    if (given == nullptr) {
      return ErrorAt(name, "parameter '", path, "': the ", distribution_name,
                     " distribution needs '", constant ? "value" : "values", "'");
    }
    std::vector<YAML::Node> elements;
    if (constant) {
      elements.push_back(*given);
    } else {
      if (!given->IsSequence()) {
        return ErrorAt(*given, "values of '", path, "' must be a list, like [1, 2]");
      }
      if (given->size() == 0) {
        return ErrorAt(*given, "values of '", path, "' is empty, an empty grid; ",
                       "give at least one value");
      }
      for (const auto& element : *given) elements.push_back(element);
    }
    for (const YAML::Node& element : elements) {
      if (!element.IsScalar()) {
        return ErrorAt(element, "'", path, "' takes a single scalar value, not a ",
                       element.IsMap() ? "mapping" : element.IsSequence() ? "list"
                                                                          : "null");
      }
      if (absl::Status s = ValidateTrialValue(path, element); !s.ok()) {
        return ErrorAt(element, s.message());
      }
      parameter.values.push_back(element.Scalar());
    }
  } else if (UsesMinMax(distribution)) {
    if (node("min") == nullptr || node("max") == nullptr) {
      return ErrorAt(name, "parameter '", path, "': the ", distribution_name,
                     " distribution needs both min and max");
    }
    const YAML::Node& min_node = *node("min");
    const YAML::Node& max_node = *node("max");
    for (auto [bound, target] : {std::pair{&min_node, &parameter.min},
                                 std::pair{&max_node, &parameter.max}}) {
      const std::string what = absl::StrCat(
          path, ": ", distribution_name, bound == &min_node ? " min" : " max");
      if (distribution == Distribution::kIntUniform) {
        absl::StatusOr<int64_t> value = ReadInteger(*bound, what);
        if (!value.ok()) return value.status();
        *target = static_cast<double>(*value);
      } else {
        absl::StatusOr<double> value = ReadNumber(*bound, what);
        if (!value.ok()) return value.status();
        *target = *value;
      }
    }
    if (parameter.min > parameter.max) {
      return ErrorAt(min_node, path, ": ", distribution_name, " min (",
                     min_node.Scalar(), ") is greater than max (", max_node.Scalar(),
                     "); give min <= max");
    }
    if (absl::EndsWith(distribution_name, "_values") && parameter.min <= 0.0) {
      return ErrorAt(min_node, path, ": ", distribution_name,
                     " takes values on a log scale; min must be greater than 0");
    }
  } else {
    for (auto [key, target] : {std::pair{"mu", &parameter.mu},
                               std::pair{"sigma", &parameter.sigma}}) {
      if (const YAML::Node* given = node(key)) {
        absl::StatusOr<double> value =
            ReadNumber(*given, absl::StrCat(path, ": ", distribution_name, " ", key));
        if (!value.ok()) return value.status();
        *target = *value;
      }
    }
    if (parameter.sigma <= 0.0) {
      return ErrorAt(*node("sigma"), path, ": ", distribution_name,
                     " sigma must be greater than 0");
    }
  }
  if (const YAML::Node* q = node("q")) {
    absl::StatusOr<double> value =
        ReadNumber(*q, absl::StrCat(path, ": ", distribution_name, " q"));
    if (!value.ok()) return value.status();
    if (*value <= 0.0) {
      return ErrorAt(*q, path, ": ", distribution_name,
                     " q (the quantization step) must be greater than 0");
    }
    parameter.q = *value;
  }

  // Every value the distribution can produce must suit the key. Bounded
  // distributions are checked at both ends; the normal family, unbounded, at
  // its median (its draws are then truncated to the key's range).
  const YAML::Node& anchor = distribution_node ? *distribution_node : name;
  if (std::optional<ValueRange> range = ReachableRange(parameter)) {
    const bool reversed = distribution == Distribution::kInvLogUniform;
    const YAML::Node& lowest_node = *node(reversed ? "max" : "min");
    const YAML::Node& highest_node = *node(reversed ? "min" : "max");
    if (absl::Status s = CheckAgainstKey(parameter, lowest_node,
                                         reversed ? "max" : "min", range->lowest);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckAgainstKey(parameter, highest_node,
                                         reversed ? "min" : "max", range->highest);
        !s.ok()) {
      return s;
    }
  } else if (UsesMuSigma(distribution)) {
    double median = parameter.mu;
    if (distribution == Distribution::kLogNormal ||
        distribution == Distribution::kQLogNormal) {
      median = std::exp(median);
    }
    if (UsesQ(distribution)) median = std::round(median / parameter.q) * parameter.q;
    if (absl::Status s = CheckAgainstKey(
            parameter, node("mu") ? *node("mu") : anchor, "mu", median);
        !s.ok()) {
      return s;
    }
  }

  if (spec_.method == "grid" && !IsGridDistribution(distribution)) {
    return ErrorAt(anchor, "grid search cannot enumerate the continuous ",
                   distribution_name, " distribution of '", path,
                   "'; use value, values, int_uniform or q_uniform, or method: random");
  }
  if (spec_.method == "grid" && distribution == Distribution::kQUniform &&
      parameter.integer_key &&
      (parameter.min != std::round(parameter.min) ||
       parameter.q != std::round(parameter.q))) {
    return ErrorAt(anchor, "'", path, "' holds integers; a q_uniform grid over ",
                   "it needs an integer min and q");
  }
  spec_.parameters.push_back(std::move(parameter));
  return absl::OkStatus();
}

absl::Status SweepParser::CheckAgainstKey(const SweptParameter& parameter,
                                          const YAML::Node& where,
                                          absl::string_view bound,
                                          double value) const {
  const absl::string_view distribution = DistributionName(parameter.distribution);
  if (!std::isfinite(value)) {
    return ErrorAt(where, parameter.path, ": ", distribution, " ", bound,
                   " gives values too large to represent; give a smaller ", bound);
  }
  const std::string text = FormatParameterNumber(parameter, value);
  if (absl::Status s = ValidateTrialValue(parameter.path, YAML::Node(text)); !s.ok()) {
    return ErrorAt(where, distribution, " ", bound, " gives ", text, ", which ",
                   parameter.path, " does not accept: ", s.message());
  }
  return absl::OkStatus();
}

absl::Status SweepParser::CountTrials(const Mapping& sweep) {
  const YAML::Node* run_cap_node = nullptr;
  if (auto it = sweep.find("run_cap"); it != sweep.end()) {
    run_cap_node = &it->second.value;
  }
  if (spec_.method == "random") {
    if (spec_.run_cap == 0) {
      return ErrorAt(sweep.at("method").value,
                     "random search needs run_cap, the number of trials to draw ",
                     "(W&B's runs until stopped); give run_cap: N, at most ",
                     kMaxTrialsPerSweep);
    }
    if (spec_.run_cap > kMaxTrialsPerSweep) {
      return ErrorAt(*run_cap_node, "run_cap ", spec_.run_cap,
                     " is over the limit of ", kMaxTrialsPerSweep,
                     " trials per sweep");
    }
    spec_.trial_count = spec_.run_cap;
    return absl::OkStatus();
  }
  // Saturates just past the limit, so that no product overflows.
  int64_t grid_size = 1;
  std::vector<std::string> factors;
  for (const SweptParameter& parameter : spec_.parameters) {
    const int64_t size = GridSize(parameter);
    factors.push_back(absl::StrCat(size));
    grid_size = size > kMaxTrialsPerSweep / grid_size ? kMaxTrialsPerSweep + 1
                                                      : grid_size * size;
  }
  spec_.trial_count =
      spec_.run_cap > 0 ? std::min(grid_size, spec_.run_cap) : grid_size;
  if (spec_.trial_count > kMaxTrialsPerSweep) {
    if (spec_.run_cap > 0) {
      return ErrorAt(*run_cap_node, "run_cap ", spec_.run_cap,
                     " is over the limit of ", kMaxTrialsPerSweep,
                     " trials per sweep");
    }
    return absl::InvalidArgumentError(absl::StrCat(
        spec_.parameters_location, ": the grid has more than ", kMaxTrialsPerSweep,
        " trials (", absl::StrJoin(factors, " x "), " values); the limit is ",
        kMaxTrialsPerSweep, " trials per sweep: sweep fewer values or set run_cap"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SweepSpec> ParseSweepSpec(absl::string_view yaml_text,
                                         absl::string_view source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        Location(source, e.mark), ": malformed YAML: ", e.msg,
        "; a sweep is a YAML mapping (docs/sweep-format.md)"));
  }
  return SweepParser(source).Parse(root);
}

absl::StatusOr<std::vector<ExpandedTrial>> ExpandSweep(const SweepSpec& spec) {
  const YAML::Node base =
      CopyWithoutMarks(YAML::Load(TrialConfigToYaml(spec.base_trial)));
  const bool grid = spec.method == "grid";
  std::vector<int64_t> grid_sizes;
  for (const SweptParameter& parameter : spec.parameters) {
    grid_sizes.push_back(grid ? GridSize(parameter) : 0);
  }

  std::vector<ExpandedTrial> trials;
  trials.reserve(spec.trial_count);
  for (int64_t index = 0; index < spec.trial_count; ++index) {
    ExpandedTrial trial;
    trial.index = static_cast<int32_t>(index);
    trial.params.resize(spec.parameters.size());
    if (grid) {
      // Mixed radix, the last parameter the fastest digit.
      int64_t rest = index;
      for (size_t i = spec.parameters.size(); i-- > 0;) {
        trial.params[i] = {spec.parameters[i].path,
                           GridValueAt(spec.parameters[i], rest % grid_sizes[i])};
        rest /= grid_sizes[i];
      }
    } else {
      std::mt19937_64 generator = TrialGenerator(spec.seed, index);
      for (size_t i = 0; i < spec.parameters.size(); ++i) {
        absl::StatusOr<std::string> value =
            SampleParameterValue(spec.parameters[i], generator);
        if (!value.ok()) return value.status();
        trial.params[i] = {spec.parameters[i].path, *std::move(value)};
      }
    }

    YAML::Node config = YAML::Clone(base);
    for (const auto& [path, value] : trial.params) SetAtPath(config, path, value);
    absl::StatusOr<TrialConfig> parsed = ParseTrialConfig(config, "");
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          spec.parameters_location, ": trial ", index, " (",
          absl::StrJoin(trial.params, ", ", absl::PairFormatter("=")),
          ") is invalid: ", absl::StripPrefix(parsed.status().message(), ": ")));
    }
    trial.config_yaml = TrialConfigToYaml(*parsed);
    trial.epochs = static_cast<int32_t>(parsed->epochs);
    trials.push_back(std::move(trial));
  }
  return trials;
}

}  // namespace sslsweep
