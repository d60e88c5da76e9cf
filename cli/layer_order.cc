#include "cli/layer_order.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace sslsweep {

NameRank LayerRank(const std::string& layer) {
  int k = 0;
  if (absl::StartsWith(layer, "stage") && absl::SimpleAtoi(layer.substr(5), &k)) return {0, k, ""};
  if (layer == "embedding") return {1, 0, ""};
  if (absl::StartsWith(layer, "projector") && absl::SimpleAtoi(layer.substr(9), &k)) {
    return {2, k, ""};
  }
  return {3, 0, layer};
}

NameRank TargetRank(const std::string& target) {
  static const char* const kOrder[] = {"fine", "coarse", "random", "sample"};
  for (int i = 0; i < 4; ++i) {
    if (target == kOrder[i]) return {0, i, ""};
  }
  return {1, 0, target};
}

MetricNameParts SplitMetricName(const std::string& name) {
  std::vector<std::string> parts = absl::StrSplit(name, '/');
  if (parts.size() < 3) return {name, "", "", false};
  return {parts.front(), absl::StrJoin(parts.begin() + 1, parts.end() - 1, "/"), parts.back(),
          true};
}

}  // namespace sslsweep
