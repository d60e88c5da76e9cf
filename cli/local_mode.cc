#include "cli/local_mode.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/commands.h"
#include "cli/sweep_client.h"
#include "cli/tables.h"
#include "coordinator/clock.h"
#include "coordinator/coordinator.h"
#include "coordinator/grpc_services.h"
#include "coordinator/lease_reaper.h"
#include "coordinator/store.h"
#include "coordinator/sweep_spec.h"
#include "worker/agent/subprocess.h"
#include "worker/trial_config.h"

namespace sslsweep {
namespace {

// Every data file some trial reads must exist: found now, a missing file is
// one clear message instead of N failed trials. Returns the ranks each trial
// runs on (resources.ranks).
absl::StatusOr<int32_t> CheckSweep(const std::string& path, const std::string& yaml) {
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(yaml, path);
  if (!spec.ok()) return spec.status();
  absl::StatusOr<std::vector<ExpandedTrial>> trials = ExpandSweep(*spec);
  if (!trials.ok()) return trials.status();
  std::set<std::string> checked;
  for (const ExpandedTrial& trial : *trials) {
    absl::StatusOr<TrialConfig> config = ParseTrialConfigText(trial.config_yaml, path);
    if (!config.ok()) return config.status();
    for (const std::string& file : RequiredDataFiles(*config)) {
      if (!checked.insert(file).second) continue;
      std::error_code error;
      if (!std::filesystem::is_regular_file(file, error)) {
        const bool dataset_file = absl::StartsWith(file, config->data.root);
        return absl::NotFoundError(absl::StrCat(
            path, ": trial ", trial.index, " reads ", file, ", which does not exist; ",
            dataset_file ? "install Debian's dataset-fashion-mnist or set trial.data.root "
                           "to the folder that has the files"
                         : "fix its path in analysis.label_files"));
      }
    }
  }
  return spec->ranks;
}

std::string ParamsText(const v1::TrialStatus& trial) {
  std::vector<std::string> parts;
  for (const v1::Param& p : trial.params()) parts.push_back(absl::StrCat(p.path(), "=", p.value()));
  return absl::StrJoin(parts, " ");
}

std::atomic<int> g_signal{0};

}  // namespace

int RunLocal(const LocalOptions& options, std::ostream& out, std::ostream& err) {
  absl::StatusOr<std::string> yaml = ReadTextFile(options.sweep_path);
  if (!yaml.ok()) return ReportError(yaml.status(), err);
  absl::StatusOr<int32_t> ranks = CheckSweep(options.sweep_path, *yaml);
  if (!ranks.ok()) return ReportError(ranks.status(), err);

  // Each rank of a data-parallel trial is a worker of its own.
  const int cores = std::max(1u, std::thread::hardware_concurrency());
  if (options.workers > 0 && options.workers < *ranks) {
    return ReportError(absl::InvalidArgumentError(absl::StrCat(
                           options.sweep_path, ": its trials run on ", *ranks,
                           " ranks (resources.ranks), one worker each, but --workers is ",
                           options.workers, "; give --workers ", *ranks, " or more")),
                       err);
  }
  const int workers =
      options.workers > 0 ? options.workers : std::max<int>(*ranks, std::min(4, cores));
  const int threads = options.threads_per_worker > 0 ? options.threads_per_worker
                                                     : std::max(1, cores / workers);
  const std::string work_dir =
      options.work_dir.empty() ? options.db_path + ".work" : options.work_dir;
  std::error_code fs_error;
  std::filesystem::create_directories(work_dir, fs_error);
  if (fs_error) {
    return ReportError(absl::PermissionDeniedError(
                           absl::StrCat(work_dir, ": ", fs_error.message())),
                       err);
  }

  auto store = Store::Open({options.db_path});
  if (!store.ok()) return ReportError(store.status(), err);
  auto checkpoints = CheckpointFiles::Open({options.db_path + ".checkpoints"});
  if (!checkpoints.ok()) return ReportError(checkpoints.status(), err);
  SystemClock clock;
  CoordinatorOptions coordinator_options;
  coordinator_options.idle_retry_ms = 200;
  Coordinator coordinator(store->get(), checkpoints->get(), &clock, coordinator_options);
  if (auto s = coordinator.Recover(); !s.ok()) return ReportError(s, err);
  LeaseReaper reaper(&coordinator, coordinator_options.lease_ms, &err);
  auto server = CoordinatorServer::Start(&coordinator, "127.0.0.1:0");
  if (!server.ok()) return ReportError(server.status(), err);
  const std::string address = absl::StrCat("127.0.0.1:", (*server)->port());
  SweepClient client(address);

  v1::SubmitSweepRequest submit;
  submit.set_yaml(*yaml);
  submit.set_source_name(options.sweep_path);
  auto submitted = client.SubmitSweep(submit);
  if (!submitted.ok()) return ReportError(submitted.status(), err);
  for (const std::string& w : submitted->warnings()) err << "warning: " << w << "\n";
  const int64_t sweep_id = submitted->sweep_id();
  out << "sweep " << sweep_id << ": " << submitted->trial_count() << " trials on " << workers
      << " local workers x " << threads << " threads (db " << options.db_path << ")"
      << std::endl;

  // Ctrl-C stops the workers (their trials go back to the queue) and
  // leaves the database consistent.
  struct sigaction action = {};
  action.sa_handler = [](int signal) { g_signal = signal; };
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  std::vector<std::unique_ptr<Subprocess>> children;
  for (int i = 0; i < workers; ++i) {
    SubprocessOptions spawn;
    spawn.argv = {options.bin_dir + "/sslsweep-worker", "--coordinator", address,
                  "--work-dir", work_dir, "--trainer-threads", std::to_string(threads),
                  "--advertise-address", "127.0.0.1", "--exit-when-idle"};
    spawn.stderr_file = absl::StrCat(work_dir, "/worker-", i, ".log");
    auto child = Subprocess::Spawn(spawn);
    if (!child.ok()) return ReportError(child.status(), err);
    children.push_back(std::move(*child));
  }

  // Progress: one line whenever a trial changes state or epoch.
  std::map<int64_t, std::string> last_seen;
  v1::SweepState state = v1::SWEEP_RUNNING;
  v1::GetSweepStatusResponse status;
  while (g_signal == 0) {
    auto polled = client.GetSweepStatus(sweep_id);
    if (!polled.ok()) return ReportError(polled.status(), err);
    status = std::move(*polled);
    for (const v1::TrialStatus& t : status.trials()) {
      std::string line = absl::StrCat(StateName(t.state()), " epoch ", std::max(0, t.epoch()),
                                      "/", t.epochs_total());
      if (last_seen[t.trial_id()] == line) continue;
      last_seen[t.trial_id()] = line;
      if (t.state() == v1::TRIAL_PENDING) continue;
      out << "  trial " << t.trial_id() << " [" << ParamsText(t) << "] " << line
          << (t.failure_reason().empty() ? "" : ": " + t.failure_reason()) << std::endl;
    }
    state = status.sweep().state();
    if (state != v1::SWEEP_RUNNING) break;
    bool any_worker_alive = false;
    for (auto& child : children) any_worker_alive |= !child->TryWait().has_value();
    if (!any_worker_alive) {
      err << "sslsweep: every local worker has exited but the sweep is not done; see "
          << work_dir << "/worker-*.log\n";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  for (auto& child : children) child->Signal(SIGTERM);
  for (auto& child : children) child->Wait();
  if (g_signal != 0) {
    err << "sslsweep: interrupted; the database keeps what was reported\n";
    return 130;
  }

  auto results = client.GetResults(sweep_id);
  if (!results.ok()) return ReportError(results.status(), err);
  out << "\n" << SweepSummaryLine(status.sweep()) << "\n\n"
      << RenderTable(ResultsTable(*results, options.metric_patterns, OutputFormat::kTable),
                     OutputFormat::kTable);
  (*server)->Shutdown();
  // A trial pruned by early termination ended as the sweep asked.
  const int ended_well = status.sweep().trials_succeeded() + status.sweep().trials_pruned();
  return ended_well == status.sweep().trials_total() ? kExitOk : kExitRefused;
}

}  // namespace sslsweep
