#include "worker/trainer/metrics_writer.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <sstream>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace sslsweep {

absl::StatusOr<std::unique_ptr<MetricsWriter>> MetricsWriter::Open(
    const std::string& path, std::ostream* echo) {
  auto writer = absl::WrapUnique(new MetricsWriter(path, echo));
  if (!writer->file_.is_open()) {
    return absl::UnavailableError(absl::StrCat(
        path, ": cannot open for writing: ", std::strerror(errno)));
  }
  return writer;
}

MetricsWriter::MetricsWriter(std::string path, std::ostream* echo)
    : path_(std::move(path)), echo_(echo), file_(path_, std::ios::trunc) {}

absl::Status MetricsWriter::Write(int64_t epoch, const std::string& name,
                                  double value) {
  if (!std::isfinite(value)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metric ", name, " at epoch ", epoch, " is not finite: ", value));
  }
  nlohmann::ordered_json line;
  line["epoch"] = epoch;
  line["name"] = name;
  line["value"] = value;
  return WriteLine(line.dump());
}

absl::Status MetricsWriter::EndEpoch(int64_t epoch) {
  nlohmann::ordered_json line;
  line["epoch"] = epoch;
  line["event"] = "epoch_end";
  return WriteLine(line.dump());
}

absl::Status MetricsWriter::WriteLine(const std::string& line) {
  file_ << line << '\n';
  file_.flush();
  if (!file_) {
    return absl::UnavailableError(
        absl::StrCat(path_, ": write failed: ", std::strerror(errno)));
  }
  if (echo_ != nullptr) {
    *echo_ << line << '\n';
    echo_->flush();
  }
  return absl::OkStatus();
}

absl::Status ReplayMetrics(const std::string& text, int64_t last_epoch,
                           MetricsWriter& metrics) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const auto json = nlohmann::json::parse(line, nullptr, false);
    if (json.is_discarded() || !json.is_object() || !json.contains("epoch") ||
        !json["epoch"].is_number_integer()) {
      continue;
    }
    const int64_t epoch = json["epoch"].get<int64_t>();
    if (epoch > last_epoch) continue;
    absl::Status status;
    if (json.contains("event")) {
      status = metrics.EndEpoch(epoch);
    } else if (json.contains("name") && json["name"].is_string() &&
               json.contains("value") && json["value"].is_number()) {
      status = metrics.Write(epoch, json["name"].get<std::string>(),
                             json["value"].get<double>());
    }
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace sslsweep
