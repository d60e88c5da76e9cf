// MetricExportWriter: the text of `sslsweep export`, chunk by chunk
// (proto ExportMetricsChunk in, text out), in long ("tidy") format for
// pandas: one row per stored metric value, with the columns
//
//   trial_id, state, <each swept parameter by path>, epoch, metric, target,
//   layer, name, value
//
// metric, target and layer split `name` at its first two slashes (as the
// database's metric_rows view does): `ncc_test_acc/fine/embedding` gives
// ncc_test_acc, fine, embedding; a name of fewer than three parts
// (`loss/total`) gives its first part as metric and no target or layer. A
// parameter whose path is one of the fixed column names is named
// `param:<path>`.
//
//   csv   a header line, then the rows; RFC 4180 quoting (output_table.h's
//         CsvCell); absent values empty; numbers in the shortest text that
//         reads back to the same double.
//   json  JSON Lines: one object per row, keys in column order; trial_id,
//         epoch and value are numbers (value null for NaN), parameters are
//         strings as spelt in the sweep, an absent target or layer is null.
//
// Thread contract: confined to one thread.

#ifndef SSLSWEEP_CLI_METRIC_EXPORT_H_
#define SSLSWEEP_CLI_METRIC_EXPORT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/sslsweep.pb.h"

namespace sslsweep {

enum class ExportFormat { kCsv, kJsonLines };

// "csv" or "json"; InvalidArgument naming both otherwise.
absl::StatusOr<ExportFormat> ParseExportFormat(absl::string_view text);

class MetricExportWriter {
 public:
  explicit MetricExportWriter(ExportFormat format) : format_(format) {}

  // The text for the next chunk: the first one's columns and trials are
  // kept (and give the CSV header); every row becomes a line. DataLoss for
  // a row whose trial the first chunk did not list.
  absl::StatusOr<std::string> Write(const v1::ExportMetricsChunk& chunk);

  int64_t rows_written() const { return rows_written_; }

 private:
  struct TrialColumns {
    std::string state;
    std::vector<std::string> params;  // aligned with param_columns_
  };

  const ExportFormat format_;
  bool started_ = false;
  std::vector<std::string> param_columns_;  // as named in the output
  std::map<int64_t, TrialColumns> trials_;
  int64_t rows_written_ = 0;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_CLI_METRIC_EXPORT_H_
