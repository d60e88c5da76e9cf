#include "coordinator/sweep_spec.h"

#include <algorithm>
#include <limits>
#include <random>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "coordinator/sweep_yaml_reader.h"
#include "coordinator/swept_parameter_parser.h"
#include "yaml-cpp/yaml.h"

namespace sslsweep {
namespace {

constexpr absl::string_view kSweepKeys[] = {
    "name",         "description",     "method",  "metric",    "run_cap",
    "parameters",   "early_terminate", "trial",   "resources", "seed",
    "max_attempts", "max_concurrent",  "priority"};
constexpr absl::string_view kLauncherKeys[] = {"program", "command", "project", "entity"};
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

// ParseTrialConfig's messages start with "<source>:<line>:<column>: ". For a
// configuration assembled in memory those positions are in text the user never
// saw, so with an empty source the whole prefix goes.
absl::string_view WithoutPositionPrefix(absl::string_view message) {
  const size_t end = message.find(": ");
  if (end == absl::string_view::npos) return message;
  const absl::string_view prefix = message.substr(0, end);
  if (prefix.find_first_not_of("0123456789:") != absl::string_view::npos) {
    return message;
  }
  return message.substr(end + 2);
}

// The node at a dotted path of a full trial configuration, as a handle that
// writes through to the tree.
YAML::Node LeafAt(YAML::Node root, const std::string& path) {
  YAML::Node node = root;
  for (absl::string_view part : absl::StrSplit(path, '.')) {
    // reset() rebinds the handle; operator= would overwrite the node instead.
    node.reset(node[std::string(part)]);
  }
  return node;
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

// (dotted path, value text) for each swept parameter of one trial.
using TrialParams = std::vector<std::pair<std::string, std::string>>;

// The grid's index-th point: mixed radix over the parameters' value counts,
// the last parameter the fastest digit.
TrialParams GridPoint(const std::vector<SweptParameter>& parameters, int64_t index) {
  TrialParams params(parameters.size());
  int64_t rest = index;
  for (size_t i = parameters.size(); i-- > 0;) {
    const int64_t size = GridSize(parameters[i]);
    params[i] = {parameters[i].path, GridValueAt(parameters[i], rest % size)};
    rest /= size;
  }
  return params;
}

// Trial index's draws, one per parameter in declaration order.
absl::StatusOr<TrialParams> RandomPoint(const std::vector<SweptParameter>& parameters,
                                        uint64_t seed, int64_t index) {
  std::mt19937_64 generator = TrialGenerator(seed, index);
  TrialParams params;
  params.reserve(parameters.size());
  for (const SweptParameter& parameter : parameters) {
    absl::StatusOr<std::string> value = SampleParameterValue(parameter, generator);
    if (!value.ok()) return value.status();
    params.emplace_back(parameter.path, *std::move(value));
  }
  return params;
}

// Reads one sweep file. Each Parse* method fills its part of spec_ and
// returns the first error, located in the file.
class SweepParser {
 public:
  explicit SweepParser(absl::string_view source) : reader_(source) {}

  absl::StatusOr<SweepSpec> Parse(const YAML::Node& root);

 private:
  absl::Status CheckTopLevelKeys(const YAML::Node& root);
  absl::Status ParseMethod(const Mapping& sweep, const YAML::Node& root);
  // name, description, run_cap, seed.
  absl::Status ParseScalarFields(const Mapping& sweep);
  // max_attempts, max_concurrent, priority.
  absl::Status ParseSchedulingFields(const Mapping& sweep);
  absl::Status ParseMetric(const MappingEntry& entry);
  absl::Status ParseEarlyTerminate(const MappingEntry& entry);
  absl::Status ParseResources(const MappingEntry& entry);
  absl::Status CountTrials(const Mapping& sweep);

  const SweepYamlReader reader_;
  SweepSpec spec_;
};

const MappingEntry* Find(const Mapping& mapping, absl::string_view key) {
  auto it = mapping.find(std::string(key));
  return it == mapping.end() ? nullptr : &it->second;
}

absl::StatusOr<SweepSpec> SweepParser::Parse(const YAML::Node& root) {
  if (!root.IsMap()) {
    return reader_.ErrorAt(
        root, "a sweep must be a mapping; accepted keys: ", JoinNames(kSweepKeys));
  }
  absl::StatusOr<Mapping> sweep = reader_.ReadMapping(root, "the sweep");
  if (!sweep.ok()) return sweep.status();
  if (absl::Status s = CheckTopLevelKeys(root); !s.ok()) return s;
  if (absl::Status s = ParseMethod(*sweep, root); !s.ok()) return s;
  if (absl::Status s = ParseScalarFields(*sweep); !s.ok()) return s;
  if (absl::Status s = ParseSchedulingFields(*sweep); !s.ok()) return s;
  if (const MappingEntry* entry = Find(*sweep, "metric")) {
    if (absl::Status s = ParseMetric(*entry); !s.ok()) return s;
  }
  if (const MappingEntry* entry = Find(*sweep, "early_terminate")) {
    if (absl::Status s = ParseEarlyTerminate(*entry); !s.ok()) return s;
  }
  if (const MappingEntry* entry = Find(*sweep, "resources")) {
    if (absl::Status s = ParseResources(*entry); !s.ok()) return s;
  }
  if (const MappingEntry* entry = Find(*sweep, "trial")) {
    // Passing our source makes the schema's errors point into the sweep file.
    absl::StatusOr<TrialConfig> base = ParseTrialConfig(entry->value, reader_.source());
    if (!base.ok()) return base.status();
    spec_.base_trial = *std::move(base);
  }
  spec_.parameters_location = reader_.Where(root);
  if (const MappingEntry* entry = Find(*sweep, "parameters")) {
    spec_.parameters_location = reader_.Where(entry->key);
    if (!entry->value.IsNull()) {  // `parameters:` with nothing under it
      absl::StatusOr<std::vector<SweptParameter>> parameters =
          ParseSweptParameters(entry->value, spec_.method, reader_);
      if (!parameters.ok()) return parameters.status();
      spec_.parameters = *std::move(parameters);
    }
  }
  if (absl::Status s = CountTrials(*sweep); !s.ok()) return s;
  return std::move(spec_);
}

absl::Status SweepParser::CheckTopLevelKeys(const YAML::Node& root) {
  for (const auto& entry : root) {  // file order, for the warnings
    const std::string& key = entry.first.Scalar();
    if (Contains(kLauncherKeys, key)) {
      spec_.warnings.push_back(absl::StrCat(reader_.Where(entry.first), ": '", key,
                                            "' is a W&B launcher key; ignored"));
    } else if (!Contains(kSweepKeys, key)) {
      return reader_.ErrorAt(entry.first, "unknown sweep key '", key,
                             "'; accepted keys: ", JoinNames(kSweepKeys), " (and W&B's ",
                             JoinNames(kLauncherKeys), ", which are ignored)");
    }
  }
  return absl::OkStatus();
}

absl::Status SweepParser::ParseScalarFields(const Mapping& sweep) {
  for (auto [key, target] :
       {std::pair{"name", &spec_.name}, std::pair{"description", &spec_.description}}) {
    if (const MappingEntry* entry = Find(sweep, key)) {
      absl::StatusOr<std::string> text = reader_.ReadString(entry->value, key);
      if (!text.ok()) return text.status();
      *target = *std::move(text);
    }
  }
  if (const MappingEntry* entry = Find(sweep, "run_cap")) {
    absl::StatusOr<int64_t> run_cap = reader_.ReadInteger(entry->value, "run_cap");
    if (!run_cap.ok()) return run_cap.status();
    if (*run_cap <= 0) {
      return reader_.ErrorAt(entry->value, "run_cap must be a positive integer, ", "got ",
                             *run_cap, "; leave it out for no cap (grid only)");
    }
    spec_.run_cap = *run_cap;
  }
  if (const MappingEntry* entry = Find(sweep, "seed")) {
    if (!IsPlainScalar(entry->value) ||
        !absl::SimpleAtoi(entry->value.Scalar(), &spec_.seed)) {
      return reader_.ErrorAt(entry->value, "seed: expected an integer from 0 to ",
                             std::numeric_limits<uint64_t>::max());
    }
  }
  return absl::OkStatus();
}

absl::Status SweepParser::ParseSchedulingFields(const Mapping& sweep) {
  struct Field {
    const char* key;
    int32_t* target;
    int32_t min;
    int32_t max;
    const char* meaning;
  };
  const Field fields[] = {
      {"max_attempts", &spec_.max_attempts, 1, kMaxAttemptsLimit,
       "failed attempts (trainer crashes, lost workers) before a trial fails for good; "
       "default 3"},
      {"max_concurrent", &spec_.max_concurrent, 0, std::numeric_limits<int32_t>::max(),
       "trials of this sweep running at once; 0 (the default) for no limit"},
      {"priority", &spec_.priority, -kPriorityLimit, kPriorityLimit,
       "higher sweeps lease first; default 0"},
  };
  for (const Field& field : fields) {
    const MappingEntry* entry = Find(sweep, field.key);
    if (entry == nullptr) continue;
    absl::StatusOr<int64_t> value = reader_.ReadInteger(entry->value, field.key);
    if (!value.ok()) return value.status();
    if (*value < field.min || *value > field.max) {
      return reader_.ErrorAt(entry->value, field.key, " must be an integer from ",
                             field.min, " to ", field.max, ", got ", *value, " (",
                             field.meaning, ")");
    }
    *field.target = static_cast<int32_t>(*value);
  }
  return absl::OkStatus();
}

absl::Status SweepParser::ParseMethod(const Mapping& sweep, const YAML::Node& root) {
  auto it = sweep.find("method");
  if (it == sweep.end()) {
    return reader_.ErrorAt(root, "the sweep has no 'method'; accepted: grid, random");
  }
  const YAML::Node& node = it->second.value;
  absl::StatusOr<std::string> method = reader_.ReadString(node, "method");
  if (!method.ok()) return method.status();
  if (*method == "bayes") {
    return reader_.ErrorAt(node,
                           "method 'bayes' is not supported yet; use grid or random");
  }
  if (*method != "grid" && *method != "random") {
    return reader_.ErrorAt(node, "unknown method '", *method,
                           "'; accepted: grid, random");
  }
  spec_.method = *std::move(method);
  return absl::OkStatus();
}

absl::Status SweepParser::ParseMetric(const MappingEntry& entry) {
  absl::StatusOr<Mapping> metric = reader_.ReadMapping(entry.value, "metric");
  if (!metric.ok()) return metric.status();
  for (const auto& field : entry.value) {  // file order, for the warnings
    const std::string& key = field.first.Scalar();
    if (Contains(kIgnoredMetricKeys, key)) {
      spec_.warnings.push_back(
          absl::StrCat(reader_.Where(field.first), ": 'metric.", key,
                       "' is used by W&B's Bayesian search only; ignored"));
    } else if (!Contains(kMetricKeys, key)) {
      return reader_.ErrorAt(field.first, "unknown metric key '", key,
                             "'; accepted: ", JoinNames(kMetricKeys), " (and W&B's ",
                             JoinNames(kIgnoredMetricKeys), ", which are ignored)");
    }
  }
  auto name = metric->find("name");
  if (name == metric->end()) {
    return reader_.ErrorAt(entry.key,
                           "metric needs a 'name' (the measurement to "
                           "optimize), with goal minimize or maximize");
  }
  absl::StatusOr<std::string> name_text =
      reader_.ReadString(name->second.value, "metric.name");
  if (!name_text.ok()) return name_text.status();
  spec_.metric.name = *std::move(name_text);
  spec_.metric.goal = "minimize";  // W&B's default
  if (auto goal = metric->find("goal"); goal != metric->end()) {
    const YAML::Node& node = goal->second.value;
    if (!node.IsScalar() ||
        (node.Scalar() != "minimize" && node.Scalar() != "maximize")) {
      return reader_.ErrorAt(node, "metric.goal must be minimize or maximize");
    }
    spec_.metric.goal = node.Scalar();
  }
  return absl::OkStatus();
}

absl::Status SweepParser::ParseEarlyTerminate(const MappingEntry& entry) {
  absl::StatusOr<Mapping> fields = reader_.ReadMapping(entry.value, "early_terminate");
  if (!fields.ok()) return fields.status();
  for (const auto& [key, field] : *fields) {
    if (!Contains(kHyperbandKeys, key)) {
      return reader_.ErrorAt(field.key, "unknown early_terminate key '", key,
                             "'; accepted: ", JoinNames(kHyperbandKeys));
    }
  }
  auto type = fields->find("type");
  if (type == fields->end() || !type->second.value.IsScalar() ||
      type->second.value.Scalar() != "hyperband") {
    return reader_.ErrorAt(type == fields->end() ? entry.value : type->second.value,
                           "early_terminate needs type: hyperband (the only type)");
  }
  HyperbandSpec hyperband;
  for (auto [key, target] :
       {std::pair{"min_iter", &hyperband.min_iter},
        std::pair{"max_iter", &hyperband.max_iter}, std::pair{"s", &hyperband.s}}) {
    auto it = fields->find(key);
    if (it == fields->end()) continue;
    absl::StatusOr<int64_t> value =
        reader_.ReadInteger(it->second.value, absl::StrCat("early_terminate.", key));
    if (!value.ok()) return value.status();
    if (*value < 1) {
      return reader_.ErrorAt(it->second.value, "early_terminate.", key,
                             " must be at least 1, got ", *value);
    }
    *target = *value;
  }
  const bool by_min = hyperband.min_iter > 0;
  const bool by_max = hyperband.max_iter > 0 && hyperband.s > 0;
  if (by_min == by_max || (by_min && (hyperband.max_iter > 0 || hyperband.s > 0))) {
    return reader_.ErrorAt(entry.value,
                           "early_terminate needs either min_iter, or "
                           "max_iter with s, not both");
  }
  if (auto it = fields->find("eta"); it != fields->end()) {
    absl::StatusOr<double> eta =
        reader_.ReadNumber(it->second.value, "early_terminate.eta");
    if (!eta.ok()) return eta.status();
    if (*eta <= 1.0) {
      return reader_.ErrorAt(it->second.value,
                             "early_terminate.eta must be greater than 1");
    }
    hyperband.eta = *eta;
  }
  if (auto it = fields->find("strict"); it != fields->end()) {
    const YAML::Node& node = it->second.value;
    const std::string text = node.IsScalar() ? absl::AsciiStrToLower(node.Scalar()) : "";
    if (text != "true" && text != "false") {
      return reader_.ErrorAt(node, "early_terminate.strict must be true or false");
    }
    hyperband.strict = text == "true";
  }
  if (spec_.metric.name.empty()) {
    return reader_.ErrorAt(entry.key,
                           "hyperband early termination ranks trials by a "
                           "metric; give metric: {name: ..., goal: ...}");
  }
  spec_.early_terminate = hyperband;
  return absl::OkStatus();
}

absl::Status SweepParser::ParseResources(const MappingEntry& entry) {
  absl::StatusOr<Mapping> fields = reader_.ReadMapping(entry.value, "resources");
  if (!fields.ok()) return fields.status();
  for (const auto& [key, field] : *fields) {
    if (key != "ranks") {
      return reader_.ErrorAt(field.key, "unknown resources key '", key,
                             "'; accepted: ranks");
    }
    absl::StatusOr<int64_t> ranks = reader_.ReadInteger(field.value, "resources.ranks");
    if (!ranks.ok()) return ranks.status();
    if (*ranks < 1 || *ranks > kMaxTrialRanks) {
      return reader_.ErrorAt(field.value, "resources.ranks: expected 1 to ", kMaxTrialRanks,
                             " (one worker per rank), got ", *ranks);
    }
    spec_.ranks = static_cast<int32_t>(*ranks);
    spec_.ranks_location = reader_.Where(field.value);
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
      return reader_.ErrorAt(sweep.at("method").value,
                             "random search needs run_cap, the number of trials to draw ",
                             "(W&B's runs until stopped); give run_cap: N, at most ",
                             kMaxTrialsPerSweep);
    }
    if (spec_.run_cap > kMaxTrialsPerSweep) {
      return reader_.ErrorAt(*run_cap_node, "run_cap ", spec_.run_cap,
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
    grid_size =
        size > kMaxTrialsPerSweep / grid_size ? kMaxTrialsPerSweep + 1 : grid_size * size;
  }
  spec_.trial_count = spec_.run_cap > 0 ? std::min(grid_size, spec_.run_cap) : grid_size;
  if (spec_.trial_count > kMaxTrialsPerSweep) {
    if (spec_.run_cap > 0) {
      return reader_.ErrorAt(*run_cap_node, "run_cap ", spec_.run_cap,
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
    return absl::InvalidArgumentError(
        absl::StrCat(YamlLocation(source, e.mark), ": malformed YAML: ", e.msg,
                     "; a sweep is a YAML mapping (docs/sweep-format.md)"));
  }
  if (!root.IsDefined() || root.IsNull()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source,
                     ":1:1: the sweep is empty; it needs at least "
                     "method: grid or method: random"));
  }
  return SweepParser(source).Parse(root);
}

absl::StatusOr<std::vector<ExpandedTrial>> ExpandSweep(const SweepSpec& spec) {
  // One configuration tree, its swept leaves overwritten for each trial: every
  // trial sets the same paths, so nothing of the previous trial survives.
  YAML::Node config = YAML::Load(TrialConfigToYaml(spec.base_trial));
  std::vector<YAML::Node> swept_leaves;
  for (const SweptParameter& parameter : spec.parameters) {
    swept_leaves.push_back(LeafAt(config, parameter.path));
  }

  std::vector<ExpandedTrial> trials;
  trials.reserve(spec.trial_count);
  for (int64_t index = 0; index < spec.trial_count; ++index) {
    absl::StatusOr<TrialParams> params =
        spec.method == "grid"
            ? absl::StatusOr<TrialParams>(GridPoint(spec.parameters, index))
            : RandomPoint(spec.parameters, spec.seed, index);
    if (!params.ok()) return params.status();
    for (size_t i = 0; i < swept_leaves.size(); ++i) {
      swept_leaves[i] = (*params)[i].second;
    }
    absl::StatusOr<TrialConfig> parsed = ParseTrialConfig(config, "");
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          spec.parameters_location, ": trial ", index, " (",
          absl::StrJoin(*params, ", ", absl::PairFormatter("=")),
          ") is invalid: ", WithoutPositionPrefix(parsed.status().message())));
    }
    // Each rank trains an equal share of the global batch.
    if (parsed->optim.batch_size % spec.ranks != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          spec.ranks_location, ": trial ", index, " (",
          absl::StrJoin(*params, ", ", absl::PairFormatter("=")), ") has optim.batch_size ",
          parsed->optim.batch_size, ", which resources.ranks ", spec.ranks,
          " does not divide; each rank trains an equal share of the batch"));
    }
    ExpandedTrial trial;
    trial.index = static_cast<int32_t>(index);
    trial.params = *std::move(params);
    trial.config_yaml = TrialConfigToYaml(*parsed);
    trial.epochs = static_cast<int32_t>(parsed->epochs);
    trials.push_back(std::move(trial));
  }
  return trials;
}

}  // namespace sslsweep
