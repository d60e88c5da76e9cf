#include "cli/analyze_command.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>
#include <utility>

#include <torch/torch.h>

#include "analysis/compute_threads.h"
#include "analysis/metric_suite.h"
#include "analysis/npy.h"
#include "nlohmann/json.hpp"

namespace sslsweep {
namespace {

// Labels are class indices; a larger one is almost surely an id that was
// never renumbered, and would make every per-class table that large.
constexpr int64_t kMaxClasses = int64_t{1} << 20;

constexpr const char* kBuiltinTargets[] = {"fine", "random"};

// A mistake in the options or the input files: reported with exit code 2.
// Confined to this file; RunAnalyze turns it into the exit code.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <typename... Parts>
[[noreturn]] void Fail(const Parts&... parts) {
  std::ostringstream message;
  (message << ... << parts);
  throw InputError(message.str());
}

struct LabelSetSpec {
  std::string name;
  std::string train_path;
  std::string test_path;  // empty: no test labels
};

bool IsBuiltinTarget(const std::string& name) {
  return std::find(std::begin(kBuiltinTargets), std::end(kBuiltinTargets), name) !=
         std::end(kBuiltinTargets);
}

std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> parts;
  size_t begin = 0;
  while (true) {
    const size_t comma = text.find(',', begin);
    parts.push_back(text.substr(begin, comma - begin));
    if (comma == std::string::npos) return parts;
    begin = comma + 1;
  }
}

LabelSetSpec ParseLabelSet(const std::string& text, bool have_test_features) {
  const std::string form = " (expected NAME=TRAIN.npy or NAME=TRAIN.npy:TEST.npy)";
  const size_t equals = text.find('=');
  if (equals == std::string::npos) Fail("--label-set '", text, "' has no '='", form);
  LabelSetSpec spec;
  spec.name = text.substr(0, equals);
  const std::string paths = text.substr(equals + 1);
  if (spec.name.empty()) Fail("--label-set '", text, "' has an empty NAME", form);
  for (char c : spec.name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
      Fail("--label-set '", text, "': NAME '", spec.name,
           "' may hold only letters, digits, '_', '-' and '.'");
    }
  }
  if (IsBuiltinTarget(spec.name) || spec.name == "all") {
    Fail("--label-set '", text, "': NAME '", spec.name,
         "' is reserved (fine, random and all are built in); choose another name");
  }
  const size_t colon = paths.rfind(':');
  spec.train_path = paths.substr(0, colon);
  if (colon != std::string::npos) spec.test_path = paths.substr(colon + 1);
  if (spec.train_path.empty()) Fail("--label-set '", text, "' has an empty TRAIN.npy", form);
  if (colon != std::string::npos && spec.test_path.empty()) {
    Fail("--label-set '", text, "' has an empty TEST.npy after ':'", form);
  }
  if (!spec.test_path.empty() && !have_test_features) {
    Fail("--label-set '", text, "' has test labels but no --test-features was given");
  }
  return spec;
}

// The target names to report, in order, from --targets.
std::vector<std::string> ParseTargets(const std::string& text,
                                      const std::vector<LabelSetSpec>& label_sets) {
  std::vector<std::string> known(std::begin(kBuiltinTargets), std::end(kBuiltinTargets));
  for (const LabelSetSpec& spec : label_sets) known.push_back(spec.name);
  if (text == "all") return known;
  std::vector<std::string> targets;
  for (const std::string& name : SplitCommas(text)) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::string valid;
      for (const std::string& k : known) valid += k + ", ";
      Fail("--targets: unknown target '", name, "' (valid: ", valid,
           "or all; add label sets with --label-set NAME=TRAIN.npy[:TEST.npy])");
    }
    if (std::find(targets.begin(), targets.end(), name) == targets.end()) {
      targets.push_back(name);
    }
  }
  return targets;
}

void CheckOptions(const AnalyzeOptions& options) {
  if (options.features_path.empty()) Fail("--features is required");
  if (options.labels_path.empty()) Fail("--labels is required");
  if (options.test_features_path.empty() != options.test_labels_path.empty()) {
    Fail(options.test_features_path.empty() ? "--test-labels needs --test-features"
                                            : "--test-features needs --test-labels");
  }
  if (options.knn_k <= 0) Fail("--knn-k must be positive, got ", options.knn_k);
  if (!(options.knn_temperature > 0) || !std::isfinite(options.knn_temperature)) {
    Fail("--knn-temperature must be a positive number, got ", options.knn_temperature);
  }
  if (options.threads < 0) Fail("--threads must be 0 (every core) or more, got ", options.threads);
  if (options.layer.empty()) Fail("--layer must not be empty");
  if (options.format != "table" && options.format != "json") {
    Fail("--format must be table or json, got '", options.format, "'");
  }
}

// numpy's name of a dtype ReadNpy returns.
std::string DtypeName(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32: return "float32";
    case torch::kFloat64: return "float64";
    case torch::kBool: return "bool";
    case torch::kInt8: return "int8";
    case torch::kInt16: return "int16";
    case torch::kInt32: return "int32";
    case torch::kInt64: return "int64";
    case torch::kUInt8: return "uint8";
    default: return c10::toString(type);
  }
}

torch::Tensor Read(const std::string& path) {
  try {
    return ReadNpy(path);
  } catch (const c10::Error& e) {
    throw InputError(e.what_without_backtrace());
  }
}

// Reads a feature matrix: 2-D, floating, finite.
torch::Tensor ReadFeatures(const std::string& path) {
  const torch::Tensor features = Read(path);
  if (features.dim() != 2) {
    Fail(path, ": features must be a 2-D [rows, dim] array, got shape ", features.sizes());
  }
  if (features.scalar_type() != torch::kFloat32 && features.scalar_type() != torch::kFloat64) {
    Fail(path, ": features must be float32 or float64, got ", DtypeName(features.scalar_type()));
  }
  if (features.size(0) == 0) Fail(path, ": features have no rows");
  if (features.size(1) == 0) Fail(path, ": features have no columns (dim 0)");
  const torch::Tensor finite = torch::isfinite(features);
  if (!finite.all().item<bool>()) {
    const torch::Tensor where = finite.logical_not().nonzero()[0];
    const int64_t row = where[0].item<int64_t>();
    const int64_t column = where[1].item<int64_t>();
    Fail(path, ": row ", row, " has a non-finite value (", features[row][column].item<double>(),
         " in column ", column, ")");
  }
  return features;
}

// Reads the labels of `features_path`'s `rows` rows: 1-D, integer, >= 0.
torch::Tensor ReadLabels(const std::string& path, const std::string& features_path,
                         int64_t rows) {
  const torch::Tensor labels = Read(path);
  if (labels.dim() != 1) Fail(path, ": labels must be a 1-D array, got shape ", labels.sizes());
  if (labels.is_floating_point() || labels.scalar_type() == torch::kBool) {
    Fail(path, ": labels must be integers (class indices), got ",
         DtypeName(labels.scalar_type()));
  }
  if (labels.size(0) != rows) {
    Fail(path, " has ", labels.size(0), " labels but ", features_path, " has ", rows, " rows");
  }
  const torch::Tensor wide = labels.to(torch::kInt64);
  const torch::Tensor negative = wide.lt(0);
  if (negative.any().item<bool>()) {
    const int64_t row = negative.nonzero()[0][0].item<int64_t>();
    Fail(path, ": label ", wide[row].item<int64_t>(), " at row ", row,
         " is negative (labels are class indices 0, 1, ...)");
  }
  const int64_t largest = wide.max().item<int64_t>();
  if (largest >= kMaxClasses) {
    const int64_t row = wide.argmax().item<int64_t>();
    Fail(path, ": label ", largest, " at row ", row, " is too large (at most ",
         kMaxClasses - 1, "; renumber the classes 0, 1, ..., C-1)");
  }
  return wide;
}

// One label set's labels, read and checked against the features.
Target ReadTarget(const std::string& name, const std::string& train_path,
                  const std::string& test_path, const AnalyzeOptions& options,
                  int64_t train_rows, int64_t test_rows) {
  Target target;
  target.name = name;
  target.train_labels = ReadLabels(train_path, options.features_path, train_rows);
  int64_t largest = target.train_labels.max().item<int64_t>();
  if (!test_path.empty()) {
    target.test_labels = ReadLabels(test_path, options.test_features_path, test_rows);
    largest = std::max(largest, target.test_labels.max().item<int64_t>());
  }
  target.num_classes = largest + 1;
  const int64_t present =
      torch::bincount(target.train_labels, {}, target.num_classes).gt(0).sum().item<int64_t>();
  if (present < 2) {
    Fail(train_path, ": every label is ", target.train_labels[0].item<int64_t>(),
         "; a label set needs at least two classes");
  }
  return target;
}

bool IsAccuracy(const std::string& metric) {
  return metric.size() >= 4 && metric.compare(metric.size() - 4, 4, "_acc") == 0;
}

std::string FormatValue(const std::string& metric, double value) {
  char text[32];
  std::snprintf(text, sizeof(text), IsAccuracy(metric) ? "%.4f" : "%.4g", value);
  return text;
}

struct Measurement {
  std::vector<MetricValue> values;
  int64_t train_rows = 0;
  int64_t test_rows = 0;
  int64_t dim = 0;
  double seconds = 0;
};

// One row per target, one column per metric (first-seen order), "-" where a
// target lacks a metric; columns padded to their widest cell.
std::string FormatTable(const Measurement& m, const std::vector<std::string>& targets,
                        const std::string& layer) {
  std::vector<std::string> columns;
  std::map<std::pair<std::string, std::string>, std::string> cells;
  for (const MetricValue& value : m.values) {
    const size_t first = value.name.find('/');
    const size_t second = value.name.find('/', first + 1);
    const std::string metric = value.name.substr(0, first);
    const std::string target = value.name.substr(first + 1, second - first - 1);
    if (std::find(columns.begin(), columns.end(), metric) == columns.end()) {
      columns.push_back(metric);
    }
    cells[{target, metric}] = FormatValue(metric, value.value);
  }
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header = {"target"};
  header.insert(header.end(), columns.begin(), columns.end());
  rows.push_back(header);
  for (const std::string& target : targets) {
    std::vector<std::string> row = {target};
    for (const std::string& metric : columns) {
      const auto cell = cells.find({target, metric});
      row.push_back(cell == cells.end() ? "-" : cell->second);
    }
    rows.push_back(row);
  }
  std::vector<size_t> widths(header.size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  char summary[256];
  std::snprintf(summary, sizeof(summary),
                "layer %s: N=%lld train rows, %lld test rows, D=%lld; %.2f s\n", layer.c_str(),
                static_cast<long long>(m.train_rows), static_cast<long long>(m.test_rows),
                static_cast<long long>(m.dim), m.seconds);
  std::string table = summary;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) line += "  ";
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size(), ' ');
    }
    table += line + "\n";
  }
  return table;
}

std::string FormatJson(const Measurement& m, const std::string& layer) {
  nlohmann::ordered_json json;
  json["layer"] = layer;
  json["train_rows"] = m.train_rows;
  json["test_rows"] = m.test_rows;
  json["dim"] = m.dim;
  json["seconds"] = m.seconds;
  json["metrics"] = nlohmann::ordered_json::object();
  for (const MetricValue& value : m.values) json["metrics"][value.name] = value.value;
  return json.dump() + "\n";
}

// Everything but the printing; throws InputError for the user's mistakes and
// c10::Error for a failure inside the measurement.
std::string Analyze(const AnalyzeOptions& options) {
  CheckOptions(options);
  SuiteOptions suite;
  std::string error;
  if (!ParseMetricSelection(options.metrics, &suite.metrics, &error)) {
    Fail("--metrics: ", error);
  }
  suite.knn.k = options.knn_k;
  suite.knn.temperature = options.knn_temperature;

  const bool have_test = !options.test_features_path.empty();
  std::vector<LabelSetSpec> label_sets;
  for (const std::string& text : options.label_sets) {
    label_sets.push_back(ParseLabelSet(text, have_test));
    for (size_t i = 0; i + 1 < label_sets.size(); ++i) {
      if (label_sets[i].name == label_sets.back().name) {
        Fail("--label-set: the name '", label_sets.back().name, "' is given twice");
      }
    }
  }
  const std::vector<std::string> target_names = ParseTargets(options.targets, label_sets);

  const torch::Tensor train = ReadFeatures(options.features_path);
  torch::Tensor test;
  if (have_test) {
    test = ReadFeatures(options.test_features_path);
    if (test.size(1) != train.size(1)) {
      Fail(options.test_features_path, " has dim ", test.size(1), " but ",
           options.features_path, " has dim ", train.size(1));
    }
    test = test.to(train.scalar_type());
  }
  const int64_t train_rows = train.size(0);
  const int64_t test_rows = have_test ? test.size(0) : 0;
  if (train_rows < 2) Fail(options.features_path, ": at least 2 rows are needed, got 1");

  std::map<std::string, Target> available;
  const Target fine = ReadTarget("fine", options.labels_path, options.test_labels_path, options,
                                 train_rows, test_rows);
  available["fine"] = fine;
  Target random;
  random.name = "random";
  random.num_classes = fine.num_classes;
  random.train_labels = RandomPartitionLabels(train_rows, fine.num_classes, options.seed);
  if (have_test) {
    random.test_labels = RandomPartitionLabels(test_rows, fine.num_classes, options.seed + 1);
  }
  available["random"] = random;
  for (const LabelSetSpec& spec : label_sets) {
    available[spec.name] =
        ReadTarget(spec.name, spec.train_path, spec.test_path, options, train_rows, test_rows);
  }
  std::vector<Target> targets;
  for (const std::string& name : target_names) targets.push_back(available.at(name));

  SetComputeThreads(options.threads);
  Measurement m;
  m.train_rows = train_rows;
  m.test_rows = test_rows;
  m.dim = train.size(1);
  const auto start = std::chrono::steady_clock::now();
  m.values = MeasureLayer(options.layer, train, test, targets, suite);
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return options.format == "json" ? FormatJson(m, options.layer)
                                  : FormatTable(m, target_names, options.layer);
}

}  // namespace

int RunAnalyze(const AnalyzeOptions& options, std::ostream& out, std::ostream& err) {
  std::string report;
  try {
    report = Analyze(options);
  } catch (const InputError& e) {
    err << "sslsweep analyze: " << e.what() << "\n";
    return kAnalyzeBadInput;
  } catch (const c10::Error& e) {
    err << "sslsweep analyze: internal error: " << e.what_without_backtrace() << "\n";
    return kAnalyzeInternalError;
  } catch (const std::exception& e) {
    err << "sslsweep analyze: internal error: " << e.what() << "\n";
    return kAnalyzeInternalError;
  }
  out << report << std::flush;
  return kAnalyzeOk;
}

}  // namespace sslsweep
