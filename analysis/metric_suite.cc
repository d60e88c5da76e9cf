#include "analysis/metric_suite.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <optional>
#include <sstream>

#include "analysis/class_separation.h"

namespace sslsweep {
namespace {

std::string ValidGroupNames() {
  std::string names = "all";
  for (const char* group : kMetricGroups) names += std::string(", ") + group;
  return names;
}

bool* GroupFlag(const std::string& name, MetricSelection* selection) {
  if (name == "ncc") return &selection->ncc;
  if (name == "cdnv") return &selection->cdnv;
  if (name == "nc1") return &selection->nc1;
  if (name == "knn") return &selection->knn;
  if (name == "linear") return &selection->linear;
  return nullptr;
}

std::string Trimmed(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

bool HasTest(const Target& target, const torch::Tensor& test) {
  return target.test_labels.defined() && test.defined() && test.size(0) > 0;
}

void CheckLayer(const torch::Tensor& train, const torch::Tensor& test,
                const std::vector<Target>& targets) {
  TORCH_CHECK(train.defined() && train.dim() == 2 && train.is_floating_point(),
              "train features must be a floating [N, D] tensor");
  TORCH_CHECK(train.size(0) >= 2, "need at least 2 training rows, got ",
              train.size(0));
  if (test.defined()) {
    TORCH_CHECK(test.dim() == 2 && test.is_floating_point() &&
                    test.size(1) == train.size(1),
                "test features must be a floating [M, ", train.size(1),
                "] tensor");
    TORCH_CHECK(test.device() == train.device(),
                "test and train features must be on the same device");
  }
  for (const Target& target : targets) {
    TORCH_CHECK(target.num_classes > 0, "target ", target.name,
                ": num_classes must be positive, got ", target.num_classes);
    TORCH_CHECK(target.train_labels.defined() &&
                    target.train_labels.dim() == 1 &&
                    target.train_labels.size(0) == train.size(0),
                "target ", target.name, ": train labels must have ",
                train.size(0), " entries, one per training row");
    if (target.test_labels.defined()) {
      TORCH_CHECK(test.defined(), "target ", target.name,
                  " has test labels but the layer has no test features");
      TORCH_CHECK(target.test_labels.dim() == 1 &&
                      target.test_labels.size(0) == test.size(0),
                  "target ", target.name, ": test labels must have ",
                  test.size(0), " entries, one per test row");
    }
  }
}

// Appends `<metric>/<target>/<layer>`, unless the value is not defined.
class MetricSink {
 public:
  MetricSink(const std::string& layer, std::vector<MetricValue>* values)
      : layer_(layer), values_(values) {}

  void Add(const char* metric, const std::string& target, double value) {
    if (std::isnan(value)) return;
    values_->push_back(
        {std::string(metric) + "/" + target + "/" + layer_, value});
  }

 private:
  const std::string& layer_;
  std::vector<MetricValue>* values_;
};

// A layer's features and what the targets share: the kNN search and the
// probe's decomposition, present when their metrics are selected.
struct LayerFeatures {
  const torch::Tensor& train;
  const torch::Tensor& test;
  std::optional<NeighborTable> neighbors;
  std::optional<LinearProbe> probe;
};

// The metrics built on the class centers: NCC, CDNV and NC1.
void MeasureClassGeometry(const LayerFeatures& features, const Target& target,
                          const torch::Tensor& train_labels,
                          const torch::Tensor& test_labels,
                          const SuiteOptions& options, MetricSink* sink) {
  const MetricSelection& selected = options.metrics;
  const ClassCenters centers = ComputeClassCenters(
      features.train, train_labels, target.num_classes, options.ncc);
  if (selected.ncc) {
    sink->Add("ncc_train_acc", target.name,
              NearestClassCenterAccuracy(centers, features.train, train_labels,
                                         options.ncc));
    if (test_labels.defined()) {
      sink->Add("ncc_test_acc", target.name,
                NearestClassCenterAccuracy(centers, features.test, test_labels,
                                           options.ncc));
    }
  }
  if (selected.cdnv) {
    sink->Add("cdnv", target.name,
              ClassDistanceNormalizedVariance(centers, features.train,
                                              train_labels, options.ncc));
  }
  if (selected.nc1) {
    sink->Add("nc1", target.name,
              WithinClassVariabilityCollapse(centers, features.train,
                                             train_labels, options.ncc));
  }
}

void MeasureTarget(const LayerFeatures& features, const Target& target,
                   const SuiteOptions& options, MetricSink* sink) {
  const MetricSelection& selected = options.metrics;
  // Labels may sit on the CPU while the features are on a GPU.
  const torch::Device device = features.train.device();
  const torch::Tensor train_labels = target.train_labels.to(device);
  const torch::Tensor test_labels = HasTest(target, features.test)
                                        ? target.test_labels.to(device)
                                        : torch::Tensor();
  if (selected.ncc || selected.cdnv || selected.nc1) {
    MeasureClassGeometry(features, target, train_labels, test_labels, options,
                         sink);
  }
  if (features.neighbors && test_labels.defined()) {
    sink->Add("knn_test_acc", target.name,
              KnnAccuracy(*features.neighbors, train_labels, test_labels,
                          target.num_classes, options.knn));
  }
  if (features.probe) {
    const LinearProbe::Result fit =
        features.probe->Fit(train_labels, test_labels, target.num_classes);
    sink->Add("linear_train_acc", target.name, fit.train_accuracy);
    if (test_labels.defined()) {
      sink->Add("linear_test_acc", target.name, fit.test_accuracy);
    }
  }
}

}  // namespace

bool ParseMetricSelection(const std::string& text, MetricSelection* selection,
                          std::string* error) {
  MetricSelection parsed{false, false, false, false, false};
  std::stringstream stream(text);
  std::string item;
  bool any = false;
  while (std::getline(stream, item, ',')) {
    const std::string name = Trimmed(item);
    if (name == "all") {
      parsed = MetricSelection{};
    } else if (bool* flag = GroupFlag(name, &parsed)) {
      *flag = true;
    } else {
      *error = "unknown metric group \"" + name + "\" in \"" + text +
               "\"; valid: " + ValidGroupNames();
      return false;
    }
    any = true;
  }
  if (!any) {
    *error = "no metric group given; valid: " + ValidGroupNames();
    return false;
  }
  *selection = parsed;
  return true;
}

std::vector<MetricValue> MeasureLayer(const std::string& layer,
                                      const torch::Tensor& train,
                                      const torch::Tensor& test,
                                      const std::vector<Target>& targets,
                                      const SuiteOptions& options) {
  CheckLayer(train, test, targets);
  const MetricSelection& selected = options.metrics;

  // What does not depend on labels is computed once and serves every target.
  LayerFeatures features{train, test, std::nullopt, std::nullopt};
  bool any_test_labels = false;
  for (const Target& target : targets) {
    any_test_labels |= HasTest(target, test);
  }
  if (selected.knn && any_test_labels) {
    features.neighbors = FindNearestNeighbors(train, test, options.knn);
  }
  if (selected.linear && !targets.empty()) {
    features.probe.emplace(train, test, options.probe);
  }

  std::vector<MetricValue> values;
  MetricSink sink(layer, &values);
  for (const Target& target : targets) {
    MeasureTarget(features, target, options, &sink);
  }
  return values;
}

torch::Tensor RandomPartitionLabels(int64_t rows, int64_t num_classes,
                                    uint64_t seed) {
  TORCH_CHECK(rows > 0, "rows must be positive, got ", rows);
  TORCH_CHECK(num_classes > 0, "num_classes must be positive, got ",
              num_classes);
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const torch::Tensor balanced =
      torch::arange(rows, torch::kInt64).remainder(num_classes);
  return balanced.index_select(0,
                               torch::randperm(rows, generator, torch::kInt64));
}

}  // namespace sslsweep
