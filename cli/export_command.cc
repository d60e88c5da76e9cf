#include "cli/export_command.h"

#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "cli/atomic_file.h"
#include "cli/commands.h"
#include "cli/metric_export.h"

namespace sslsweep {
namespace {

absl::Status CannotWrite(const AtomicFile& file) {
  return absl::InvalidArgumentError(absl::StrCat("--out '", file.path(), "': cannot write ",
                                                 file.failed_path(), ": ",
                                                 std::strerror(file.error())));
}

}  // namespace

int ExportCommand(SweepClient& client, const ExportCommandOptions& options, std::ostream& out,
                  std::ostream& err) {
  absl::StatusOr<ExportFormat> format = ParseExportFormat(options.format);
  if (!format.ok()) return ReportError(format.status(), err);
  v1::ExportMetricsRequest request;
  request.set_sweep_id(options.sweep_id);
  for (const std::string& glob : options.metric_globs) request.add_metrics(glob);

  std::optional<AtomicFile> file;
  if (!options.out_path.empty()) {
    file.emplace(options.out_path);
    if (!file->ok()) return ReportError(CannotWrite(*file), err);
  }
  std::ostream& sink = file.has_value() ? file->stream() : out;
  const auto sink_failure = [&] {
    if (!file.has_value()) return absl::AbortedError("cannot write to stdout");
    file->ok();  // records where and why
    return CannotWrite(*file);
  };
  MetricExportWriter writer(*format);
  absl::Status status = client.ExportMetrics(
      request, [&](const v1::ExportMetricsChunk& chunk) -> absl::Status {
        absl::StatusOr<std::string> text = writer.Write(chunk);
        if (!text.ok()) return text.status();
        sink << *text;
        return sink ? absl::OkStatus() : sink_failure();
      });
  if (status.ok()) sink.flush();
  if (status.ok() && !sink) status = sink_failure();
  if (status.ok() && file.has_value()) {
    if (!file->Commit()) {
      status = CannotWrite(*file);
    } else {
      err << "sslsweep: exported " << writer.rows_written() << " rows of sweep "
          << options.sweep_id << " to " << options.out_path << "\n";
    }
  }
  if (!status.ok()) return ReportError(status, err);
  return kExitOk;
}

}  // namespace sslsweep
