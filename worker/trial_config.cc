#include "worker/trial_config.h"

#include <charconv>
#include <cstdio>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <thread>
#include <variant>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "yaml-cpp/yaml.h"

namespace sslsweep {
namespace {

using IntField = std::function<int64_t&(TrialConfig&)>;
using DoubleField = std::function<double&(TrialConfig&)>;
using StringField = std::function<std::string&(TrialConfig&)>;

// One leaf of the schema. Numeric bounds are inclusive unless `min_exclusive`.
struct KeySpec {
  std::string path;
  std::variant<IntField, DoubleField, StringField> field;
  double min = -INFINITY;
  bool min_exclusive = false;
  double max = INFINITY;
  std::vector<std::string> choices;  // for strings; empty: any non-empty string
};

#define SSLSWEEP_FIELD(member) \
  [](TrialConfig& c) -> auto& { return c.member; }

KeySpec Int(std::string path, IntField f, double min, double max) {
  return KeySpec{std::move(path), std::move(f), min, false, max, {}};
}
KeySpec Positive(std::string path, DoubleField f, double max = INFINITY) {
  return KeySpec{std::move(path), std::move(f), 0.0, true, max, {}};
}
KeySpec NonNegative(std::string path, DoubleField f, double max = INFINITY) {
  return KeySpec{std::move(path), std::move(f), 0.0, false, max, {}};
}
KeySpec Choice(std::string path, StringField f, std::vector<std::string> choices) {
  return KeySpec{std::move(path), std::move(f), -INFINITY, false, INFINITY,
                 std::move(choices)};
}
KeySpec Text(std::string path, StringField f) {
  return KeySpec{std::move(path), std::move(f), -INFINITY, false, INFINITY, {}};
}

const std::vector<KeySpec>& Schema() {
  static const auto* schema = new std::vector<KeySpec>{
      Int("seed", SSLSWEEP_FIELD(seed), 0, 9.0e15),
      Int("epochs", SSLSWEEP_FIELD(epochs), 1, 100000),
      Int("threads", SSLSWEEP_FIELD(threads), 0, 1024),
      Choice("data.dataset", SSLSWEEP_FIELD(data.dataset),
             {"fashion_mnist", "synthetic"}),
      Text("data.root", SSLSWEEP_FIELD(data.root)),
      Int("data.train_samples", SSLSWEEP_FIELD(data.train_samples), 0, 1e9),
      Int("data.test_samples", SSLSWEEP_FIELD(data.test_samples), 0, 1e9),
      Int("data.synthetic_classes", SSLSWEEP_FIELD(data.synthetic_classes), 2,
          1000),
      Choice("backbone.name", SSLSWEEP_FIELD(backbone.name), {"convnet"}),
      Int("backbone.depth", SSLSWEEP_FIELD(backbone.depth), 1, 5),
      Int("backbone.width", SSLSWEEP_FIELD(backbone.width), 1, 1024),
      Int("projector.hidden", SSLSWEEP_FIELD(projector.hidden), 1, 16384),
      Int("projector.out", SSLSWEEP_FIELD(projector.out), 1, 16384),
      Choice("method.name", SSLSWEEP_FIELD(method.name), {"vicreg"}),
      NonNegative("method.sim_coeff", SSLSWEEP_FIELD(method.sim_coeff)),
      NonNegative("method.std_coeff", SSLSWEEP_FIELD(method.std_coeff)),
      NonNegative("method.cov_coeff", SSLSWEEP_FIELD(method.cov_coeff)),
      Choice("optim.name", SSLSWEEP_FIELD(optim.name), {"sgd", "adamw"}),
      Positive("optim.lr", SSLSWEEP_FIELD(optim.lr), 100.0),
      NonNegative("optim.momentum", SSLSWEEP_FIELD(optim.momentum), 1.0),
      NonNegative("optim.weight_decay", SSLSWEEP_FIELD(optim.weight_decay)),
      Int("optim.batch_size", SSLSWEEP_FIELD(optim.batch_size), 2, 65536),
      Int("analysis.every", SSLSWEEP_FIELD(analysis.every), 1, 100000),
  };
  return *schema;
}

#undef SSLSWEEP_FIELD

const KeySpec* FindKey(absl::string_view path) {
  for (const KeySpec& key : Schema()) {
    if (key.path == path) return &key;
  }
  return nullptr;
}

std::string Location(absl::string_view source, const YAML::Mark& mark) {
  if (mark.is_null()) return std::string(source);
  return absl::StrCat(source, ":", mark.line + 1, ":", mark.column + 1);
}

std::string FormatDouble(double v) {
  char buf[64];
  auto result = std::to_chars(buf, buf + sizeof(buf), v);
  std::string s(buf, result.ptr);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

// A YAML double-quoted scalar: backslash escapes for '"', '\\' and
// control characters, so any string survives the round trip.
std::string QuoteYamlString(const std::string& text) {
  std::string out = "\"";
  for (unsigned char ch : text) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\x%02x", ch);
      out += escaped;
    } else {
      out += static_cast<char>(ch);
    }
  }
  return out + "\"";
}

std::string DescribeRange(const KeySpec& key) {
  std::string lo = std::isinf(key.min)
                       ? ""
                       : absl::StrCat(key.min_exclusive ? "> " : ">= ",
                                      FormatDouble(key.min));
  std::string hi =
      std::isinf(key.max) ? "" : absl::StrCat("<= ", FormatDouble(key.max));
  if (!lo.empty() && !hi.empty()) return absl::StrCat(lo, " and ", hi);
  return lo.empty() ? hi : lo;
}

// A plain (unquoted) scalar may be a number; a quoted one is always a string.
bool IsPlainScalar(const YAML::Node& node) {
  return node.IsScalar() && node.Tag() != "!";
}

absl::Status CheckRange(const KeySpec& key, double v) {
  bool below = key.min_exclusive ? !(v > key.min) : !(v >= key.min);
  if (std::isnan(v) || below || v > key.max) {
    return absl::InvalidArgumentError(absl::StrCat(
        key.path, ": ", FormatDouble(v), " is out of range; expected a value ",
        DescribeRange(key)));
  }
  return absl::OkStatus();
}

// Validates `node` for `key` and, if `config` is non-null, stores it.
absl::Status Apply(const KeySpec& key, const YAML::Node& node,
                   TrialConfig* config) {
  if (!node.IsScalar()) {
    return absl::InvalidArgumentError(
        absl::StrCat(key.path, ": expected a scalar value, got a ",
                     node.IsMap() ? "mapping" : node.IsSequence() ? "sequence"
                                                                  : "null"));
  }
  const std::string& text = node.Scalar();
  if (const auto* f = std::get_if<IntField>(&key.field)) {
    int64_t v = 0;
    if (!IsPlainScalar(node) || !absl::SimpleAtoi(text, &v)) {
      return absl::InvalidArgumentError(absl::StrCat(
          key.path, ": expected an integer ", DescribeRange(key), ", got '",
          text, "'"));
    }
    if (auto s = CheckRange(key, static_cast<double>(v)); !s.ok()) return s;
    if (config != nullptr) (*f)(*config) = v;
  } else if (const auto* f = std::get_if<DoubleField>(&key.field)) {
    double v = 0;
    if (!IsPlainScalar(node) || !absl::SimpleAtod(text, &v)) {
      return absl::InvalidArgumentError(absl::StrCat(
          key.path, ": expected a number ", DescribeRange(key), ", got '",
          text, "'"));
    }
    if (auto s = CheckRange(key, v); !s.ok()) return s;
    if (config != nullptr) (*f)(*config) = v;
  } else {
    const auto& set_string = std::get<StringField>(key.field);
    if (text.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(key.path, ": expected a non-empty string"));
    }
    if (!key.choices.empty() &&
        std::find(key.choices.begin(), key.choices.end(), text) ==
            key.choices.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(key.path, ": '", text, "' is not one of: ",
                       absl::StrJoin(key.choices, ", ")));
    }
    if (config != nullptr) set_string(*config) = text;
  }
  return absl::OkStatus();
}

std::vector<std::string> ChildrenOf(absl::string_view prefix) {
  std::set<std::string> names;
  for (const KeySpec& key : Schema()) {
    absl::string_view path = key.path;
    if (!prefix.empty()) {
      if (path.substr(0, prefix.size() + 1) != absl::StrCat(prefix, ".")) {
        continue;
      }
      path.remove_prefix(prefix.size() + 1);
    }
    names.insert(std::string(path.substr(0, path.find('.'))));
  }
  return {names.begin(), names.end()};
}

absl::Status Walk(const YAML::Node& map, const std::string& prefix,
                  absl::string_view source, TrialConfig& config,
                  std::map<std::string, YAML::Mark>& marks) {
  for (const auto& entry : map) {
    const YAML::Node& key_node = entry.first;
    const YAML::Node& value = entry.second;
    const std::string name = key_node.Scalar();
    const std::string path = prefix.empty() ? name : absl::StrCat(prefix, ".", name);
    if (const KeySpec* key = FindKey(path)) {
      if (auto s = Apply(*key, value, &config); !s.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(Location(source, value.Mark()), ": ", s.message()));
      }
      marks[path] = value.Mark();
    } else if (IsTrialConfigPath(path)) {
      if (!value.IsMap()) {
        return absl::InvalidArgumentError(
            absl::StrCat(Location(source, value.Mark()), ": ", path,
                         ": expected a mapping with keys: ",
                         absl::StrJoin(ChildrenOf(path), ", ")));
      }
      if (auto s = Walk(value, path, source, config, marks); !s.ok()) return s;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          Location(source, key_node.Mark()), ": unknown trial configuration key '",
          path, "'; valid keys here: ", absl::StrJoin(ChildrenOf(prefix), ", ")));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckCrossFields(const TrialConfig& c, absl::string_view source,
                              const std::map<std::string, YAML::Mark>& marks) {
  auto where = [&](const std::string& path) {
    auto it = marks.find(path);
    return it == marks.end() ? std::string(source) : Location(source, it->second);
  };
  if (c.data.train_samples != 0 && c.data.train_samples < c.optim.batch_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        where("data.train_samples"), ": data.train_samples (",
        c.data.train_samples, ") must be 0 (all) or at least optim.batch_size (",
        c.optim.batch_size, ")"));
  }
  if (c.data.dataset == "synthetic" && c.data.train_samples == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(where("data.dataset"),
                     ": synthetic data needs data.train_samples > 0"));
  }
  return absl::OkStatus();
}

}  // namespace

const std::vector<std::string>& TrialConfigPaths() {
  static const auto* paths = [] {
    auto* v = new std::vector<std::string>;
    for (const KeySpec& key : Schema()) v->push_back(key.path);
    return v;
  }();
  return *paths;
}

bool IsTrialConfigLeaf(absl::string_view path) { return FindKey(path) != nullptr; }

bool IsTrialConfigPath(absl::string_view path) {
  if (path.empty()) return false;
  for (const KeySpec& key : Schema()) {
    absl::string_view p = key.path;
    if (p == path) return true;
    if (p.size() > path.size() && p.substr(0, path.size()) == path &&
        p[path.size()] == '.') {
      return true;
    }
  }
  return false;
}

std::optional<TrialValueType> TrialValueTypeOf(absl::string_view path) {
  const KeySpec* key = FindKey(path);
  if (key == nullptr) return std::nullopt;
  if (std::holds_alternative<IntField>(key->field)) return TrialValueType::kInteger;
  if (std::holds_alternative<DoubleField>(key->field)) return TrialValueType::kReal;
  return TrialValueType::kString;
}

absl::Status ValidateTrialValue(absl::string_view path, const YAML::Node& value) {
  const KeySpec* key = FindKey(path);
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown trial configuration key '", path, "'"));
  }
  return Apply(*key, value, nullptr);
}

absl::StatusOr<TrialConfig> ParseTrialConfig(const YAML::Node& root,
                                             absl::string_view source) {
  TrialConfig config;
  if (!root.IsDefined() || root.IsNull()) return config;
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Location(source, root.Mark()),
                     ": a trial configuration must be a mapping"));
  }
  std::map<std::string, YAML::Mark> marks;
  if (auto s = Walk(root, "", source, config, marks); !s.ok()) return s;
  if (auto s = CheckCrossFields(config, source, marks); !s.ok()) return s;
  return config;
}

absl::StatusOr<TrialConfig> ParseTrialConfigText(absl::string_view yaml,
                                                 absl::string_view source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(Location(source, e.mark), ": malformed YAML: ", e.msg));
  }
  return ParseTrialConfig(root, source);
}

absl::StatusOr<TrialConfig> LoadTrialConfigFile(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open file"));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(Location(path, e.mark), ": malformed YAML: ", e.msg));
  }
  return ParseTrialConfig(root, path);
}

std::string TrialConfigToYaml(const TrialConfig& config) {
  // Written by hand rather than with YAML::Emitter: sweeps expand into up to
  // 100,000 configurations and the emitter dominated that cost. Schema order
  // groups each section's keys together, so one pass suffices.
  TrialConfig& c = const_cast<TrialConfig&>(config);  // fields are only read
  std::string out;
  std::string open_section;
  for (const KeySpec& key : Schema()) {
    const size_t dot = key.path.find('.');
    const std::string section = dot == std::string::npos ? "" : key.path.substr(0, dot);
    if (section != open_section) {
      absl::StrAppend(&out, section, ":\n");
      open_section = section;
    }
    absl::StrAppend(&out, section.empty() ? "" : "  ", key.path.substr(dot + 1), ": ");
    if (const auto* f = std::get_if<IntField>(&key.field)) {
      absl::StrAppend(&out, (*f)(c), "\n");
    } else if (const auto* f = std::get_if<DoubleField>(&key.field)) {
      absl::StrAppend(&out, FormatDouble((*f)(c)), "\n");
    } else {
      absl::StrAppend(&out, QuoteYamlString(std::get<StringField>(key.field)(c)), "\n");
    }
  }
  return out;
}

std::vector<std::string> RequiredDataFiles(const TrialConfig& config) {
  if (config.data.dataset != "fashion_mnist") return {};
  std::vector<std::string> files;
  for (const char* name :
       {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}) {
    files.push_back(absl::StrCat(config.data.root, "/", name));
  }
  return files;
}

}  // namespace sslsweep
