// OutputTable: what every `sslsweep` command that prints a table builds, and
// its three renderings (--format table|json|csv):
//
//   table  columns padded to their widest cell, two spaces apart, one header
//          line; for people.
//   json   an array of objects, one per row, keys in column order; a numeric
//          column's cells are JSON numbers (null for "-" or empty); for jq
//          and scripts.
//   csv    RFC 4180 quoting: a header line, then the rows; a cell with a
//          comma, a double quote, a line break or surrounding spaces is
//          quoted, its quotes doubled. Lines end in "\n" (which RFC 4180
//          readers, Python's csv and pandas.read_csv accept); for
//          spreadsheets and pandas.
//
// Thread contract: plain values and pure functions.

#ifndef SSLSWEEP_CLI_OUTPUT_TABLE_H_
#define SSLSWEEP_CLI_OUTPUT_TABLE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sslsweep {

struct OutputTable {
  struct Column {
    std::string name;
    bool numeric = false;  // cells are numbers, or "-" / "" for none
  };
  std::vector<Column> columns;
  std::vector<std::vector<std::string>> rows;  // each as long as columns
};

enum class OutputFormat { kTable, kJson, kCsv };

// "table", "json" or "csv"; InvalidArgument naming the three otherwise.
absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view text);

// The table in `format`, ending with a newline (json: the array and "\n").
std::string RenderTable(const OutputTable& table, OutputFormat format);

// One CSV cell, quoted as above when it needs to be.
std::string CsvCell(const std::string& cell);

}  // namespace sslsweep

#endif  // SSLSWEEP_CLI_OUTPUT_TABLE_H_
