// Builds the coordinator's aggregated result rows (QueryResultsResponse) for
// tests of the views drawn from them (plot, report).

#ifndef SSLSWEEP_TESTS_AGGREGATED_ROWS_TEST_UTIL_H_
#define SSLSWEEP_TESTS_AGGREGATED_ROWS_TEST_UTIL_H_

#include <string>
#include <vector>

#include "proto/sslsweep.pb.h"

namespace sslsweep {

inline v1::AggregatedResultRow Row(const std::vector<std::string>& group, int epoch,
                                   const std::string& metric, double mean, double std, int n) {
  v1::AggregatedResultRow row;
  for (const std::string& g : group) row.add_group(g);
  row.set_epoch(epoch);
  row.set_metric(metric);
  row.set_mean(mean);
  row.set_std(std);
  row.set_n(n);
  return row;
}

}  // namespace sslsweep

#endif  // SSLSWEEP_TESTS_AGGREGATED_ROWS_TEST_UTIL_H_
