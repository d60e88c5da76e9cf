#include "cli/export_command.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/metric_export.h"

namespace sslsweep {
namespace {

absl::Status CannotWrite(const std::string& out_path, const std::string& path, int error) {
  return absl::InvalidArgumentError(absl::StrCat("--out '", out_path, "': cannot write ", path,
                                                 ": ", std::strerror(error)));
}

}  // namespace

int ExportCommand(SweepClient& client, const ExportCommandOptions& options, std::ostream& out,
                  std::ostream& err) {
  absl::StatusOr<ExportFormat> format = ParseExportFormat(options.format);
  if (!format.ok()) return ReportError(format.status(), err);
  v1::ExportMetricsRequest request;
  request.set_sweep_id(options.sweep_id);
  for (const std::string& glob : options.metric_globs) request.add_metrics(glob);

  const bool to_file = !options.out_path.empty();
  const std::string tmp_path = options.out_path + ".tmp";
  std::ofstream file;
  if (to_file) {
    file.open(tmp_path, std::ios::binary | std::ios::trunc);
    if (!file) return ReportError(CannotWrite(options.out_path, tmp_path, errno), err);
  }
  std::ostream& sink = to_file ? file : out;
  MetricExportWriter writer(*format);
  absl::Status status = client.ExportMetrics(
      request, [&](const v1::ExportMetricsChunk& chunk) -> absl::Status {
        absl::StatusOr<std::string> text = writer.Write(chunk);
        if (!text.ok()) return text.status();
        sink << *text;
        if (!sink) {
          return to_file ? CannotWrite(options.out_path, tmp_path, errno)
                         : absl::AbortedError("cannot write to stdout");
        }
        return absl::OkStatus();
      });
  if (status.ok()) sink.flush();
  if (status.ok() && !sink) {
    status = to_file ? CannotWrite(options.out_path, tmp_path, errno)
                     : absl::AbortedError("cannot write to stdout");
  }
  if (to_file) {
    file.close();
    if (status.ok() && !file) status = CannotWrite(options.out_path, tmp_path, errno);
    if (status.ok() && std::rename(tmp_path.c_str(), options.out_path.c_str()) != 0) {
      status = CannotWrite(options.out_path, options.out_path, errno);
    }
    if (!status.ok()) {
      std::remove(tmp_path.c_str());
    } else {
      err << "sslsweep: exported " << writer.rows_written() << " rows of sweep "
          << options.sweep_id << " to " << options.out_path << "\n";
    }
  }
  if (!status.ok()) return ReportError(status, err);
  return kExitOk;
}

}  // namespace sslsweep
