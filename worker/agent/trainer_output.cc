#include "worker/agent/trainer_output.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace sslsweep {
namespace {

absl::Status NotALine(const std::string& line, const std::string& why) {
  return absl::InvalidArgumentError(
      absl::StrCat("not a metrics line (", why, "): ", line.substr(0, 200)));
}

}  // namespace

absl::StatusOr<TrainerEvent> TrainerOutputParser::Consume(const std::string& line) {
  const nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!record.is_object()) return NotALine(line, "no JSON object");
  if (const auto event = record.find("event"); event != record.end() && *event == "rendezvous") {
    const auto port = record.find("port");
    if (port == record.end() || !port->is_number_integer() || port->get<int64_t>() < 1 ||
        port->get<int64_t>() > 65535) {
      return NotALine(line, "a rendezvous event needs a port from 1 to 65535");
    }
    TrainerEvent rendezvous;
    rendezvous.kind = TrainerEvent::Kind::kRendezvous;
    rendezvous.port = static_cast<int32_t>(port->get<int64_t>());
    return rendezvous;
  }
  const auto epoch_field = record.find("epoch");
  if (epoch_field == record.end() || !epoch_field->is_number_integer() ||
      epoch_field->get<int64_t>() < 0 ||
      epoch_field->get<int64_t>() > std::numeric_limits<int32_t>::max()) {
    return NotALine(line, "no epoch");
  }
  TrainerEvent event;
  event.epoch = static_cast<int32_t>(epoch_field->get<int64_t>());

  const auto event_field = record.find("event");
  if (event_field == record.end()) {
    const auto name = record.find("name");
    const auto value = record.find("value");
    if (name == record.end() || !name->is_string() || value == record.end() ||
        !value->is_number()) {
      return NotALine(line, "no name and value");
    }
    pending_[event.epoch][name->get<std::string>()] = value->get<double>();
    return event;
  }
  if (*event_field == "epoch_end") {
    auto values = pending_.extract(event.epoch);
    if (!values.empty() && !values.mapped().empty()) {
      event.kind = TrainerEvent::Kind::kEpochMetrics;
      event.metrics.assign(values.mapped().begin(), values.mapped().end());
    }
    return event;
  }
  if (*event_field == "checkpoint") {
    const auto path = record.find("path");
    if (path == record.end() || !path->is_string() || path->get<std::string>().empty() ||
        path->get<std::string>().find('/') != std::string::npos) {
      return NotALine(line, "a checkpoint event needs a file name as path");
    }
    event.kind = TrainerEvent::Kind::kCheckpointSaved;
    event.path = path->get<std::string>();
    return event;
  }
  return NotALine(line, "unknown event");
}

}  // namespace sslsweep
