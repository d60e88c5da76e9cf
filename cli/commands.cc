#include "cli/commands.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/tables.h"

namespace sslsweep {

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    std::string message = absl::StrCat(path, ": ", std::strerror(error));
    return error == ENOENT ? absl::NotFoundError(message)
                           : absl::PermissionDeniedError(message);
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

int ReportError(const absl::Status& status, std::ostream& err) {
  err << "sslsweep: " << status.message() << "\n";
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnreachable;
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kInvalidArgument:
      return kExitBadInput;
    default:
      return kExitRefused;
  }
}

int SubmitCommand(SweepClient& client, const std::string& path, bool dry_run,
                  OutputFormat format, std::ostream& out, std::ostream& err) {
  absl::StatusOr<std::string> yaml = ReadTextFile(path);
  if (!yaml.ok()) return ReportError(yaml.status(), err);
  v1::SubmitSweepRequest request;
  request.set_yaml(*yaml);
  request.set_source_name(path);
  request.set_dry_run(dry_run);
  auto response = client.SubmitSweep(request);
  if (!response.ok()) return ReportError(response.status(), err);
  for (const std::string& warning : response->warnings()) err << "warning: " << warning << "\n";
  if (dry_run) {
    out << RenderTable(PlannedTrialsTable(*response), format);
    err << path << ": " << response->trial_count()
        << " trials (a dry run: nothing was submitted)\n";
    return kExitOk;
  }
  out << "sweep " << response->sweep_id() << " submitted: " << response->trial_count()
      << " trials\n";
  return kExitOk;
}

int ListCommand(SweepClient& client, OutputFormat format, std::ostream& out, std::ostream& err) {
  auto response = client.ListSweeps();
  if (!response.ok()) return ReportError(response.status(), err);
  out << RenderTable(SweepsTable(*response), format);
  return kExitOk;
}

int StatusCommand(SweepClient& client, int64_t sweep_id, OutputFormat format, std::ostream& out,
                  std::ostream& err) {
  auto response = client.GetSweepStatus(sweep_id);
  if (!response.ok()) return ReportError(response.status(), err);
  if (format == OutputFormat::kTable) out << SweepSummaryLine(response->sweep()) << "\n";
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  out << RenderTable(StatusTable(*response, now_ms), format);
  return kExitOk;
}

int ResultsCommand(SweepClient& client, const ResultsCommandOptions& options, std::ostream& out,
                   std::ostream& err) {
  // Before the query, so a view that cannot be built costs no round trip.
  if (absl::Status s = CheckResultsViewOptions(options.view); !s.ok()) {
    return ReportError(s, err);
  }
  auto response = client.QueryResults(options.query);
  if (!response.ok()) return ReportError(response.status(), err);
  absl::StatusOr<v1::GetSweepStatusResponse> trials;
  if (options.query.group_by().empty() && !options.query.one_group()) {
    trials = client.GetSweepStatus(options.query.sweep_id());
    if (!trials.ok()) return ReportError(trials.status(), err);
  }
  absl::StatusOr<ResultsView> view =
      BuildResultsView(*response, options.view, trials.ok() ? &*trials : nullptr);
  if (!view.ok()) return ReportError(view.status(), err);
  for (const std::string& note : view->notes) err << "sslsweep: note: " << note << "\n";
  out << RenderTable(view->table, options.view.format);
  return kExitOk;
}

int CancelCommand(SweepClient& client, int64_t sweep_id, std::ostream& out, std::ostream& err) {
  auto response = client.CancelSweep(sweep_id);
  if (!response.ok()) return ReportError(response.status(), err);
  out << "sweep " << sweep_id << " cancelled: " << response->trials_cancelled()
      << " trials stopped\n";
  return kExitOk;
}

int CancelTrialCommand(SweepClient& client, int64_t trial_id, std::ostream& out,
                       std::ostream& err) {
  auto response = client.CancelTrial(trial_id);
  if (!response.ok()) return ReportError(response.status(), err);
  out << "trial " << trial_id
      << (response->cancelled() ? " cancelled\n" : " had already ended; nothing changed\n");
  return kExitOk;
}

int CancelSweepTrialCommand(SweepClient& client, int64_t sweep_id, int64_t trial_id,
                            std::ostream& out, std::ostream& err) {
  auto status = client.GetSweepStatus(sweep_id);
  if (!status.ok()) return ReportError(status.status(), err);
  std::vector<int64_t> ids;
  for (const v1::TrialStatus& t : status->trials()) ids.push_back(t.trial_id());
  if (std::find(ids.begin(), ids.end(), trial_id) == ids.end()) {
    const size_t shown = std::min<size_t>(ids.size(), 20);
    return ReportError(
        absl::InvalidArgumentError(absl::StrCat(
            "trial ", trial_id, " is not in sweep ", sweep_id, "; its trials are ",
            absl::StrJoin(ids.begin(), ids.begin() + shown, ", "),
            ids.size() > shown ? ", ..." : "", " (sslsweep status ", sweep_id, ")")),
        err);
  }
  return CancelTrialCommand(client, trial_id, out, err);
}

int UnquarantineCommand(SweepClient& client, const std::string& worker_id, std::ostream& out,
                        std::ostream& err) {
  auto response = client.UnquarantineWorker(worker_id);
  if (!response.ok()) return ReportError(response.status(), err);
  out << "worker " << worker_id << " may lease trials again\n";
  return kExitOk;
}

int WorkersCommand(SweepClient& client, OutputFormat format, std::ostream& out,
                   std::ostream& err) {
  auto response = client.ListWorkers();
  if (!response.ok()) return ReportError(response.status(), err);
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  out << RenderTable(WorkersTable(*response, now_ms), format);
  return kExitOk;
}

}  // namespace sslsweep
