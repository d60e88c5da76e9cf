#include "cli/output_table.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace sslsweep {
namespace {

std::vector<std::string> ColumnNames(const OutputTable& table) {
  std::vector<std::string> names;
  for (const OutputTable::Column& c : table.columns) names.push_back(c.name);
  return names;
}

// Terminal columns of UTF-8 text ("±" is two bytes, one column): the code
// points, i.e. the bytes that do not continue a sequence.
size_t DisplayWidth(const std::string& text) {
  return std::count_if(text.begin(), text.end(),
                       [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

std::string RenderText(const OutputTable& table) {
  std::vector<size_t> widths(table.columns.size(), 0);
  for (size_t i = 0; i < table.columns.size(); ++i) widths[i] = DisplayWidth(table.columns[i].name);
  for (const auto& row : table.rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], DisplayWidth(row[i]));
    }
  }
  std::string out;
  const auto append = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t i = 0; i < cells.size() && i < widths.size(); ++i) {
      if (i > 0) line += "  ";
      line += cells[i];
      line.append(widths[i] - DisplayWidth(cells[i]), ' ');
    }
    // No trailing spaces (the last cells may be empty).
    line.erase(line.find_last_not_of(' ') + 1);
    out += line;
    out += '\n';
  };
  append(ColumnNames(table));
  for (const auto& row : table.rows) append(row);
  return out;
}

nlohmann::ordered_json NumberOrNull(const std::string& cell) {
  int64_t integer = 0;
  if (absl::SimpleAtoi(cell, &integer)) return integer;
  double value = 0;
  if (absl::SimpleAtod(cell, &value) && std::isfinite(value)) return value;
  return nullptr;  // "-", empty, or not a number
}

std::string RenderJson(const OutputTable& table) {
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const auto& row : table.rows) {
    nlohmann::ordered_json object = nlohmann::ordered_json::object();
    for (size_t i = 0; i < table.columns.size(); ++i) {
      const std::string& cell = i < row.size() ? row[i] : std::string();
      const OutputTable::Column& column = table.columns[i];
      object[column.name] = column.numeric ? NumberOrNull(cell) : nlohmann::ordered_json(cell);
    }
    rows.push_back(std::move(object));
  }
  return rows.dump(2) + "\n";
}

std::string RenderCsv(const OutputTable& table) {
  std::string out;
  const auto append = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) {
      if (i > 0) out += ',';
      out += CsvCell(cells[i]);
    }
    out += '\n';
  };
  append(ColumnNames(table));
  for (const auto& row : table.rows) append(row);
  return out;
}

}  // namespace

std::string CsvCell(const std::string& cell) {
  const bool quote = cell.find_first_of(",\"\r\n") != std::string::npos ||
                     (!cell.empty() && (cell.front() == ' ' || cell.back() == ' '));
  if (!quote) return cell;
  std::string out = "\"";
  for (char c : cell) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view text) {
  if (text == "table") return OutputFormat::kTable;
  if (text == "json") return OutputFormat::kJson;
  if (text == "csv") return OutputFormat::kCsv;
  return absl::InvalidArgumentError(
      absl::StrCat("--format '", text, "': expected table, json or csv"));
}

std::string RenderTable(const OutputTable& table, OutputFormat format) {
  switch (format) {
    case OutputFormat::kJson: return RenderJson(table);
    case OutputFormat::kCsv: return RenderCsv(table);
    case OutputFormat::kTable: break;
  }
  return RenderText(table);
}

}  // namespace sslsweep
