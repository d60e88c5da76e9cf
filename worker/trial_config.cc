#include "worker/trial_config.h"

#include <algorithm>
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
#include "absl/strings/ascii.h"
#include "yaml-cpp/yaml.h"

namespace sslsweep {
namespace {

using IntField = std::function<int64_t&(TrialConfig&)>;
using DoubleField = std::function<double&(TrialConfig&)>;
using StringField = std::function<std::string&(TrialConfig&)>;
// Checks a string value's syntax; the message starts with the key's path.
using TextCheck = std::function<absl::Status(const std::string&)>;

// One leaf of the schema. Numeric bounds are inclusive unless `min_exclusive`.
struct KeySpec {
  std::string path;
  std::variant<IntField, DoubleField, StringField> field;
  double min = -INFINITY;
  bool min_exclusive = false;
  double max = INFINITY;
  std::vector<std::string> choices;  // for strings; empty: any non-empty string
  TextCheck check;                   // for strings, when set: instead of choices
  bool allow_empty = false;          // for strings: "" (or a YAML null) is valid
};

absl::Status CheckLabelFiles(const std::string& text) {
  return ParseLabelFiles(text).status();
}

#define SSLSWEEP_FIELD(member) \
  [](TrialConfig& c) -> auto& { return c.member; }

KeySpec Numeric(std::string path, std::variant<IntField, DoubleField, StringField> field,
                double min, bool min_exclusive, double max) {
  KeySpec key;
  key.path = std::move(path);
  key.field = std::move(field);
  key.min = min;
  key.min_exclusive = min_exclusive;
  key.max = max;
  return key;
}
KeySpec Int(std::string path, IntField f, double min, double max) {
  return Numeric(std::move(path), std::move(f), min, false, max);
}
KeySpec Positive(std::string path, DoubleField f, double max = INFINITY) {
  return Numeric(std::move(path), std::move(f), 0.0, true, max);
}
KeySpec NonNegative(std::string path, DoubleField f, double max = INFINITY) {
  return Numeric(std::move(path), std::move(f), 0.0, false, max);
}
KeySpec Text(std::string path, StringField f) {
  KeySpec key;
  key.path = std::move(path);
  key.field = std::move(f);
  return key;
}
KeySpec Choice(std::string path, StringField f, std::vector<std::string> choices) {
  KeySpec key = Text(std::move(path), std::move(f));
  key.choices = std::move(choices);
  return key;
}
// A comma-separated list, its syntax checked by `check`.
KeySpec List(std::string path, StringField f, TextCheck check, bool allow_empty = false) {
  KeySpec key = Text(std::move(path), std::move(f));
  key.check = std::move(check);
  key.allow_empty = allow_empty;
  return key;
}

const std::vector<KeySpec>& Schema() {
  static const auto* schema = new std::vector<KeySpec>{
      Int("seed", SSLSWEEP_FIELD(seed), 0, 9.0e15),
      Int("epochs", SSLSWEEP_FIELD(epochs), 1, 100000),
      Int("threads", SSLSWEEP_FIELD(threads), 0, 1024),
      Choice("device", SSLSWEEP_FIELD(device), {"cpu", "cuda"}),
      Choice("precision", SSLSWEEP_FIELD(precision), {"auto", "fp32", "bf16"}),
      Choice("data.dataset", SSLSWEEP_FIELD(data.dataset),
             {"fashion_mnist", "cifar10", "cifar100", "synthetic"}),
      Text("data.root", SSLSWEEP_FIELD(data.root)),
      Int("data.train_samples", SSLSWEEP_FIELD(data.train_samples), 0, 1e9),
      Int("data.test_samples", SSLSWEEP_FIELD(data.test_samples), 0, 1e9),
      Int("data.synthetic_classes", SSLSWEEP_FIELD(data.synthetic_classes), 2, 1000),
      Int("data.synthetic_superclasses", SSLSWEEP_FIELD(data.synthetic_superclasses), 1,
          1000),
      Choice("backbone.name", SSLSWEEP_FIELD(backbone.name),
             {"convnet", "mlp", "resnet18", "resnet34"}),
      Int("backbone.depth", SSLSWEEP_FIELD(backbone.depth), 1, 5),
      Int("backbone.width", SSLSWEEP_FIELD(backbone.width), 1, 1024),
      Positive("backbone.width_multiplier", SSLSWEEP_FIELD(backbone.width_multiplier), 16.0),
      Int("projector.layers", SSLSWEEP_FIELD(projector.layers), 1, 8),
      Int("projector.hidden", SSLSWEEP_FIELD(projector.hidden), 1, 16384),
      Int("projector.out", SSLSWEEP_FIELD(projector.out), 1, 16384),
      Choice("method.name", SSLSWEEP_FIELD(method.name),
             {"vicreg", "simclr", "byol", "barlow_twins"}),
      NonNegative("method.sim_coeff", SSLSWEEP_FIELD(method.sim_coeff)),
      NonNegative("method.std_coeff", SSLSWEEP_FIELD(method.std_coeff)),
      NonNegative("method.cov_coeff", SSLSWEEP_FIELD(method.cov_coeff)),
      Positive("method.temperature", SSLSWEEP_FIELD(method.temperature), 100.0),
      NonNegative("method.lambda", SSLSWEEP_FIELD(method.barlow_lambda)),
      NonNegative("method.ema_momentum", SSLSWEEP_FIELD(method.ema_momentum), 1.0),
      Int("method.predictor_hidden", SSLSWEEP_FIELD(method.predictor_hidden), 1, 16384),
      Positive("augment.crop_scale_min", SSLSWEEP_FIELD(augment.crop_scale_min), 1.0),
      Positive("augment.crop_scale_max", SSLSWEEP_FIELD(augment.crop_scale_max), 1.0),
      NonNegative("augment.flip_prob", SSLSWEEP_FIELD(augment.flip_prob), 1.0),
      NonNegative("augment.jitter_prob", SSLSWEEP_FIELD(augment.jitter_prob), 1.0),
      NonNegative("augment.brightness", SSLSWEEP_FIELD(augment.brightness), 1.0),
      NonNegative("augment.contrast", SSLSWEEP_FIELD(augment.contrast), 1.0),
      NonNegative("augment.saturation", SSLSWEEP_FIELD(augment.saturation), 1.0),
      NonNegative("augment.hue", SSLSWEEP_FIELD(augment.hue), 0.5),
      NonNegative("augment.grayscale_prob", SSLSWEEP_FIELD(augment.grayscale_prob), 1.0),
      NonNegative("augment.blur_prob_view1", SSLSWEEP_FIELD(augment.blur_prob_view1), 1.0),
      NonNegative("augment.blur_prob_view2", SSLSWEEP_FIELD(augment.blur_prob_view2), 1.0),
      NonNegative("augment.solarize_prob_view1", SSLSWEEP_FIELD(augment.solarize_prob_view1),
                  1.0),
      NonNegative("augment.solarize_prob_view2", SSLSWEEP_FIELD(augment.solarize_prob_view2),
                  1.0),
      Choice("optim.name", SSLSWEEP_FIELD(optim.name), {"sgd", "lars", "adamw"}),
      Positive("optim.lr", SSLSWEEP_FIELD(optim.lr), 100.0),
      NonNegative("optim.momentum", SSLSWEEP_FIELD(optim.momentum), 1.0),
      NonNegative("optim.weight_decay", SSLSWEEP_FIELD(optim.weight_decay)),
      Int("optim.batch_size", SSLSWEEP_FIELD(optim.batch_size), 2, 65536),
      Int("optim.warmup_epochs", SSLSWEEP_FIELD(optim.warmup_epochs), 0, 100000),
      Positive("optim.lars_eta", SSLSWEEP_FIELD(optim.lars_eta), 1.0),
      Int("analysis.every", SSLSWEEP_FIELD(analysis.every), 1, 100000),
      List("analysis.layers", SSLSWEEP_FIELD(analysis.layers), CheckAnalysisLayers),
      List("analysis.targets", SSLSWEEP_FIELD(analysis.targets), CheckAnalysisTargets),
      List("analysis.metrics", SSLSWEEP_FIELD(analysis.metrics), CheckAnalysisMetrics),
      Int("analysis.max_samples", SSLSWEEP_FIELD(analysis.max_samples), 0, 1e9),
      Int("analysis.knn_k", SSLSWEEP_FIELD(analysis.knn_k), 1, 100000),
      Positive("analysis.knn_temperature", SSLSWEEP_FIELD(analysis.knn_temperature), 100.0),
      Int("analysis.sample_images", SSLSWEEP_FIELD(analysis.sample_images), 2, 100000),
      Int("analysis.sample_views", SSLSWEEP_FIELD(analysis.sample_views), 1, 1000),
      List("analysis.label_files", SSLSWEEP_FIELD(analysis.label_files), CheckLabelFiles,
           /*allow_empty=*/true),
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

absl::Status CheckRange(const KeySpec& key, double v) {
  bool below = key.min_exclusive ? !(v > key.min) : !(v >= key.min);
  if (std::isnan(v) || below || v > key.max) {
    return absl::InvalidArgumentError(absl::StrCat(
        key.path, ": ", FormatDouble(v), " is out of range; expected a value ",
        DescribeRange(key)));
  }
  return absl::OkStatus();
}

absl::Status CheckText(const KeySpec& key, const std::string& text) {
  if (text.empty()) {
    if (key.allow_empty) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat(key.path, ": expected a non-empty string"));
  }
  if (key.check) return key.check(text);
  if (!key.choices.empty() &&
      std::find(key.choices.begin(), key.choices.end(), text) == key.choices.end()) {
    return absl::InvalidArgumentError(absl::StrCat(key.path, ": '", text, "' is not one of: ",
                                                   absl::StrJoin(key.choices, ", ")));
  }
  return absl::OkStatus();
}

// Validates `node` for `key` and, if `config` is non-null, stores it.
absl::Status Apply(const KeySpec& key, const YAML::Node& node,
                   TrialConfig* config) {
  if (node.IsNull() && key.allow_empty && std::holds_alternative<StringField>(key.field)) {
    if (config != nullptr) std::get<StringField>(key.field)(*config).clear();
    return absl::OkStatus();
  }
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
    if (auto s = CheckText(key, text); !s.ok()) return s;
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
            absl::StrCat(YamlLocation(source, value.Mark()), ": ", s.message()));
      }
      marks[path] = value.Mark();
    } else if (IsTrialConfigPath(path)) {
      if (!value.IsMap()) {
        return absl::InvalidArgumentError(
            absl::StrCat(YamlLocation(source, value.Mark()), ": ", path,
                         ": expected a mapping with keys: ",
                         absl::StrJoin(ChildrenOf(path), ", ")));
      }
      if (auto s = Walk(value, path, source, config, marks); !s.ok()) return s;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          YamlLocation(source, key_node.Mark()), ": unknown trial configuration key '",
          path, "'; valid keys here: ", absl::StrJoin(ChildrenOf(prefix), ", ")));
    }
  }
  return absl::OkStatus();
}

// The suite needs two training rows: a class mean of one sample has no
// spread.
absl::Status CheckMeasuredRows(const AnalysisConfig& analysis) {
  if (analysis.max_samples == 1) {
    return absl::InvalidArgumentError(
        "analysis.max_samples must be 0 (all rows) or at least 2, not 1");
  }
  return absl::OkStatus();
}

absl::Status CheckCrossFields(const TrialConfig& c, absl::string_view source,
                              const std::map<std::string, YAML::Mark>& marks) {
  auto where = [&](const std::string& path) {
    auto it = marks.find(path);
    return it == marks.end() ? std::string(source) : YamlLocation(source, it->second);
  };
  if (c.data.train_samples != 0 && c.data.train_samples < c.optim.batch_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        where("data.train_samples"), ": data.train_samples (",
        c.data.train_samples, ") must be 0 (all) or at least optim.batch_size (",
        c.optim.batch_size, ")"));
  }
  if (c.data.synthetic_classes % c.data.synthetic_superclasses != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        where("data.synthetic_superclasses"), ": data.synthetic_superclasses (",
        c.data.synthetic_superclasses, ") must divide data.synthetic_classes (",
        c.data.synthetic_classes, ")"));
  }
  if (c.augment.crop_scale_min > c.augment.crop_scale_max) {
    return absl::InvalidArgumentError(absl::StrCat(
        where("augment.crop_scale_min"), ": augment.crop_scale_min (",
        FormatDouble(c.augment.crop_scale_min), ") must not exceed augment.crop_scale_max (",
        FormatDouble(c.augment.crop_scale_max), ")"));
  }
  if (c.optim.warmup_epochs >= c.epochs && c.optim.warmup_epochs > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        where("optim.warmup_epochs"), ": optim.warmup_epochs (", c.optim.warmup_epochs,
        ") must be less than epochs (", c.epochs, ")"));
  }
  if (c.data.dataset == "synthetic" && c.data.train_samples == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(where("data.dataset"),
                     ": synthetic data needs data.train_samples > 0"));
  }
  if (auto s = CheckMeasuredRows(c.analysis); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where("analysis.max_samples"), ": ", s.message()));
  }
  if (auto targets = ResolveAnalysisTargets(c.analysis); !targets.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where("analysis.targets"), ": ", targets.status().message()));
  }
  return absl::OkStatus();
}

}  // namespace

std::string YamlLocation(absl::string_view source, const YAML::Mark& mark) {
  if (mark.is_null()) return std::string(source);
  return absl::StrCat(source, ":", mark.line + 1, ":", mark.column + 1);
}

bool IsPlainScalar(const YAML::Node& node) { return node.IsScalar() && node.Tag() != "!"; }

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
  if (!root.IsDefined() || root.IsNull()) {
    ApplyMethodRecipe(config, {});
    return config;
  }
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(YamlLocation(source, root.Mark()),
                     ": a trial configuration must be a mapping"));
  }
  std::map<std::string, YAML::Mark> marks;
  if (auto s = Walk(root, "", source, config, marks); !s.ok()) return s;
  std::vector<std::string> explicitly_set;
  for (const auto& [path, mark] : marks) explicitly_set.push_back(path);
  ApplyMethodRecipe(config, explicitly_set);
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
        absl::StrCat(YamlLocation(source, e.mark), ": malformed YAML: ", e.msg));
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
        absl::StrCat(YamlLocation(path, e.mark), ": malformed YAML: ", e.msg));
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

void ApplyMethodRecipe(TrialConfig& config, const std::vector<std::string>& explicitly_set) {
  auto set_unless_given = [&](const char* path, double& field, double value) {
    if (std::find(explicitly_set.begin(), explicitly_set.end(), path) == explicitly_set.end()) {
      field = value;
    }
  };
  AugmentConfig& a = config.augment;
  const bool simclr = config.method.name == "simclr";
  // SimCLR (Chen et al. 2020, appendix A): colour jitter of strength 0.8,
  // symmetric blur with p 0.5, no solarisation. BYOL's recipe (Grill et al.
  // 2020, table 6), which VICReg and Barlow Twins reuse: jitter 0.4/0.4/0.2/
  // 0.1, blur 1.0 / 0.1, solarisation 0 / 0.2.
  set_unless_given("augment.brightness", a.brightness, simclr ? 0.8 : 0.4);
  set_unless_given("augment.contrast", a.contrast, simclr ? 0.8 : 0.4);
  set_unless_given("augment.saturation", a.saturation, simclr ? 0.8 : 0.2);
  set_unless_given("augment.hue", a.hue, simclr ? 0.2 : 0.1);
  set_unless_given("augment.blur_prob_view1", a.blur_prob_view1, simclr ? 0.5 : 1.0);
  set_unless_given("augment.blur_prob_view2", a.blur_prob_view2, simclr ? 0.5 : 0.1);
  set_unless_given("augment.solarize_prob_view1", a.solarize_prob_view1, 0.0);
  set_unless_given("augment.solarize_prob_view2", a.solarize_prob_view2, simclr ? 0.0 : 0.2);
}

std::vector<std::string> RequiredDataFiles(const TrialConfig& config) {
  std::vector<const char*> names;
  if (config.data.dataset == "fashion_mnist") {
    names = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
  } else if (config.data.dataset == "cifar10") {
    names = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
             "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
  } else if (config.data.dataset == "cifar100") {
    names = {"train.bin", "test.bin"};
  }
  std::vector<std::string> files;
  for (const char* name : names) files.push_back(absl::StrCat(config.data.root, "/", name));
  // A malformed list has no files to check; parsing the trial reports it.
  if (auto label_files = ParseLabelFiles(config.analysis.label_files); label_files.ok()) {
    for (const LabelFileSpec& spec : *label_files) {
      files.push_back(spec.train_path);
      if (!spec.test_path.empty()) files.push_back(spec.test_path);
    }
  }
  return files;
}

absl::Status ValidateAnalysisConfig(const AnalysisConfig& analysis) {
  TrialConfig config;
  config.analysis = analysis;
  for (const KeySpec& key : Schema()) {
    if (key.path.rfind("analysis.", 0) != 0) continue;
    absl::Status status;
    if (const auto* f = std::get_if<IntField>(&key.field)) {
      status = CheckRange(key, static_cast<double>((*f)(config)));
    } else if (const auto* f = std::get_if<DoubleField>(&key.field)) {
      status = CheckRange(key, (*f)(config));
    } else {
      status = CheckText(key, std::get<StringField>(key.field)(config));
    }
    if (!status.ok()) return status;
  }
  if (auto s = CheckMeasuredRows(analysis); !s.ok()) return s;
  return ResolveAnalysisTargets(analysis).status();
}

}  // namespace sslsweep
