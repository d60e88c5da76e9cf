// The orders in which `sslsweep` shows the parts of a metric name
// <metric>/<target>/<layer>: layers in network order (stage1..stageN,
// embedding, projector1..K, then any other layer by name) and targets from
// the finest labels to none (fine, coarse, random, sample, then others by
// name). `results` pivots, `plot` and `report` all sort by these ranks.
//
// Thread contract: pure functions.

#ifndef SSLSWEEP_CLI_LAYER_ORDER_H_
#define SSLSWEEP_CLI_LAYER_ORDER_H_

#include <string>
#include <tuple>

namespace sslsweep {

// Orders names: (class, number, name); compare ranks with operator<.
using NameRank = std::tuple<int, int, std::string>;

// Backbone order: stage1..stageN, embedding, projector1..K, then by name.
NameRank LayerRank(const std::string& layer);

// From the finest labels to none: fine, coarse, random, sample, then by name.
NameRank TargetRank(const std::string& target);

// A metric name split as <metric>/<target>/<layer>; a target may itself
// contain '/' (the parts between the first and the last). A name with fewer
// than three parts (loss/total) has `pivotable` false and only `metric` set
// (to the whole name).
struct MetricNameParts {
  std::string metric, target, layer;
  bool pivotable = false;
};
MetricNameParts SplitMetricName(const std::string& name);

}  // namespace sslsweep

#endif  // SSLSWEEP_CLI_LAYER_ORDER_H_
