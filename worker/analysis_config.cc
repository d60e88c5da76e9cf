#include "worker/analysis_config.h"

#include <algorithm>
#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace sslsweep {
namespace {

// The analysis lists' vocabularies. The metric groups are
// analysis/metric_suite.h's kMetricGroups, repeated here because this
// library has no LibTorch.
constexpr const char* kMetricNames[] = {"ncc", "cdnv", "nc1", "knn", "linear"};
constexpr char kAll[] = "all";

// [a-z0-9_]+: tap, target and label file names.
bool IsListName(absl::string_view name) {
  if (name.empty()) return false;
  for (char ch : name) {
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_')) return false;
  }
  return true;
}

bool IsBuiltinTarget(absl::string_view name) {
  for (const char* target : kBuiltinTargets) {
    if (name == target) return true;
  }
  return false;
}

std::string DescribeTargets() {
  return absl::StrCat(absl::StrJoin(kBuiltinTargets, ", "),
                      ", all or a name declared in analysis.label_files");
}

}  // namespace

absl::Status CheckAnalysisLayers(const std::string& text) {
  for (const std::string& name : SplitAnalysisList(text)) {
    if (!IsListName(name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "analysis.layers: '", name, "' in '", text,
          "' is not a tap name; expected comma-separated names of [a-z0-9_] "
          "(stage1, embedding, projector1, ...) or all"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckAnalysisMetrics(const std::string& text) {
  for (const std::string& name : SplitAnalysisList(text)) {
    const bool known = name == kAll || std::find(std::begin(kMetricNames), std::end(kMetricNames),
                                                 name) != std::end(kMetricNames);
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(
          "analysis.metrics: '", name, "' in '", text, "' is not one of: ",
          absl::StrJoin(kMetricNames, ", "), ", all"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckAnalysisTargets(const std::string& text) {
  for (const std::string& name : SplitAnalysisList(text)) {
    if (!IsListName(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("analysis.targets: '", name, "' in '", text,
                       "' is not a target name; expected ", DescribeTargets()));
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> SplitAnalysisList(absl::string_view text) {
  std::vector<std::string> names;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    std::string name(absl::StripAsciiWhitespace(part));
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      names.push_back(std::move(name));
    }
  }
  return names;
}

absl::StatusOr<std::vector<LabelFileSpec>> ParseLabelFiles(absl::string_view text) {
  std::vector<LabelFileSpec> specs;
  if (absl::StripAsciiWhitespace(text).empty()) return specs;
  auto refuse = [](absl::string_view entry, absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("analysis.label_files: '", entry, "' ", why,
                     "; expected comma-separated name=train.npy[:test.npy] with names "
                     "of [a-z0-9_]"));
  };
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    const absl::string_view entry = absl::StripAsciiWhitespace(part);
    const size_t equals = entry.find('=');
    if (equals == absl::string_view::npos) return refuse(entry, "has no '='");
    LabelFileSpec spec;
    spec.name = std::string(absl::StripAsciiWhitespace(entry.substr(0, equals)));
    const absl::string_view paths = absl::StripAsciiWhitespace(entry.substr(equals + 1));
    const size_t colon = paths.find(':');
    spec.train_path = std::string(paths.substr(0, colon));
    if (colon != absl::string_view::npos) spec.test_path = std::string(paths.substr(colon + 1));
    if (!IsListName(spec.name)) return refuse(entry, "does not start with a name of [a-z0-9_]");
    if (IsBuiltinTarget(spec.name) || spec.name == kAll) {
      return refuse(entry, absl::StrCat("uses the name of a builtin target (",
                                        absl::StrJoin(kBuiltinTargets, ", "), ", all)"));
    }
    if (spec.train_path.empty()) return refuse(entry, "has no training label file");
    if (colon != absl::string_view::npos && spec.test_path.empty()) {
      return refuse(entry, "has an empty test label file after ':'");
    }
    for (const LabelFileSpec& earlier : specs) {
      if (earlier.name == spec.name) return refuse(entry, "declares its name a second time");
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

absl::StatusOr<std::vector<std::string>> ResolveAnalysisTargets(
    const AnalysisConfig& analysis) {
  auto label_files = ParseLabelFiles(analysis.label_files);
  if (!label_files.ok()) return label_files.status();
  std::vector<std::string> declared(std::begin(kBuiltinTargets), std::end(kBuiltinTargets));
  for (const LabelFileSpec& spec : *label_files) declared.push_back(spec.name);
  std::vector<std::string> targets;
  for (const std::string& name : SplitAnalysisList(analysis.targets)) {
    if (name == kAll) return declared;
    if (std::find(declared.begin(), declared.end(), name) == declared.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "analysis.targets: '", name, "' is not a target; expected ",
          absl::StrJoin(declared, ", "), ", all",
          IsListName(name) ? " (a label file's name must be declared in analysis.label_files)"
                           : ""));
    }
    targets.push_back(name);
  }
  return targets;
}

}  // namespace sslsweep
