// sslsweep: the researcher's command line. Composition root only: flags and
// wiring; the commands live in commands.h and local_mode.h.
//
// Exit codes: 0 success; 1 the coordinator refused the request (or, for
// `local`, some trial failed); 2 bad input; 3 coordinator unreachable;
// 130 interrupted. `analyze` becomes sslsweep-analyze, whose codes pass through
// (2 also when that binary is missing).

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "CLI/CLI.hpp"
#include "cli/commands.h"
#include "cli/local_mode.h"
#include "cli/sweep_client.h"
#include "worker/agent/subprocess.h"

namespace {

// `sslsweep analyze ARGS` runs `sslsweep-analyze ARGS` from this binary's
// folder in place of this process, so its output and exit status are the
// command's: the measurements need LibTorch, which this CLI never links.
int ExecAnalyze(const std::vector<std::string>& args) {
  const std::string binary = sslsweep::ExecutableDir() + "/sslsweep-analyze";
  std::vector<std::string> owned = {binary};
  owned.insert(owned.end(), args.begin(), args.end());
  std::vector<char*> exec_argv;
  for (std::string& arg : owned) exec_argv.push_back(arg.data());
  exec_argv.push_back(nullptr);
  std::cout.flush();
  ::execv(binary.c_str(), exec_argv.data());
  std::cerr << "sslsweep analyze: cannot run " << binary << ": " << std::strerror(errno)
            << " (it is built beside sslsweep by the sslsweep-analyze target)\n";
  return sslsweep::kExitBadInput;
}

}  // namespace

int main(int argc, char** argv) {
  const char* env_address = std::getenv("SSLSWEEP_COORDINATOR");
  std::string address = env_address != nullptr ? env_address : "127.0.0.1:50051";
  // A trial stores hundreds of values per epoch (every layer, target and
  // metric); the default columns are the headline ones.
  std::vector<std::string> metrics = {"ncc_test_acc/*/embedding", "loss/total"};
  std::string path;
  int64_t sweep_id = 0;
  int64_t trial_id = 0;
  std::string worker_id;
  sslsweep::LocalOptions local;
  local.bin_dir = sslsweep::ExecutableDir();

  CLI::App app{"sslsweep: run and query sweeps of self-supervised learning experiments"};
  app.require_subcommand(1);
  app.add_option("--coordinator", address,
                 "coordinator HOST:PORT (default: $SSLSWEEP_COORDINATOR or 127.0.0.1:50051)");
  const auto add_id = [&](CLI::App* command) {
    command->add_option("SWEEP_ID", sweep_id, "the sweep's id (from submit or ls)")
        ->required()
        ->check(CLI::PositiveNumber);
  };
  std::string format_text = "table";
  const auto add_format = [&](CLI::App* command) {
    command->add_option("--format", format_text,
                        "table (aligned columns), json (an array of objects) or csv")
        ->check(CLI::IsMember({"table", "json", "csv"}))
        ->capture_default_str();
  };
  const auto add_metrics = [&](CLI::App* command) {
    command->add_option("--metrics", metrics,
                        "metric columns to show: shell globs over <metric>/<target>/<layer>; "
                        "'*' for all")
        ->delimiter(',')
        ->capture_default_str();
  };

  CLI::App* submit = app.add_subcommand("submit", "submit a sweep file; prints the sweep id");
  submit->add_option("FILE", path, "sweep YAML")->required();
  bool dry_run = false;
  submit->add_flag("--dry-run", dry_run,
                   "validate and expand only: print the trials it would create, create nothing");
  add_format(submit);
  submit->footer(
      "Examples:\n  sslsweep submit sweeps/quickstart.yaml\n"
      "  sslsweep submit sweeps/quickstart.yaml --dry-run              # the 4 trials, nothing created\n"
      "  sslsweep submit sweep.yaml --dry-run --format csv | wc -l     # how many trials");
  CLI::App* ls = app.add_subcommand("ls", "list sweeps");
  add_format(ls);
  ls->footer("Examples: sslsweep ls; sslsweep ls --format json | jq '.[].name'");
  CLI::App* status = app.add_subcommand("status", "a sweep's trials: state, attempt, epoch");
  add_id(status);
  add_format(status);
  status->footer("Examples: sslsweep status 1; sslsweep status 1 --format csv > trials.csv");
  CLI::App* results = app.add_subcommand(
      "results", "metrics per trial, or aggregated per group (mean ± std (n)), pivoted at will");
  add_id(results);
  std::vector<std::string> group_by;
  std::vector<std::string> where;
  std::string epoch = "final";
  std::string pivot;
  sslsweep::ResultsViewOptions results_view;
  results->add_option("--metric,--metrics", metrics,
                      "metrics to show: GLOBs over <metric>/<target>/<layer> (repeat or "
                      "comma-separate); '*' for all")
      ->delimiter(',')
      ->capture_default_str();
  results->add_option("--group-by", group_by,
                      "swept parameter(s) to group by; the other trials' values (seeds) are "
                      "aggregated as mean ± std (n). Default: one row per trial")
      ->delimiter(',');
  bool all_trials = false;
  results->add_flag("--all-trials", all_trials,
                    "aggregate every trial into one row per metric (e.g. the seeds of a sweep "
                    "that sweeps nothing else); instead of --group-by")
      ->excludes("--group-by");
  results->add_option("--epoch", epoch, "final, best (by the sweep's metric), all, or a number N")
      ->capture_default_str();
  results->add_option("--pivot", pivot,
                      "make columns of: layer (rows group x metric/target), target (rows group x "
                      "metric/layer) or epoch (needs --epoch all)")
      ->check(CLI::IsMember({"layer", "target", "epoch"}));
  results->add_option("--where", where,
                      "PATH=VALUE: only trials with this parameter value (repeat: AND)");
  results->add_option("--sort", results_view.sort_column,
                      "a column to sort rows by (numbers numerically; a metric by its mean, "
                      "COLUMN.std or COLUMN.n by those)");
  results->add_flag("--desc", results_view.descending, "sort in descending order");
  add_format(results);
  results->footer(R"ex(Examples:
  sslsweep results 1                                   # per trial: state, parameters, final metrics
  sslsweep results 1 --metric 'ncc_test_acc/*/*' --group-by optim.lr --sort ncc_test_acc/fine/embedding --desc
  sslsweep results 1 --metric 'ncc_test_acc/fine/*' --group-by backbone.depth --pivot layer
  sslsweep results 1 --metric 'ncc_test_acc/*/embedding' --group-by method --pivot target
  sslsweep results 1 --metric ncc_test_acc/fine/embedding --epoch all --pivot epoch --group-by optim.lr
  sslsweep results 1 --group-by optim.lr --where backbone.depth=4 --format csv > lr.csv
Table cells of a grouped view read "mean ± std (n)"; json and csv give <column>.mean,
<column>.std and <column>.n. Exit codes: 0 ok, 2 unknown metric/parameter/column or bad
flag, 3 coordinator unreachable.)ex");
  CLI::App* cancel = app.add_subcommand(
      "cancel", "cancel a sweep's pending and running trials, or one of its trials");
  int64_t sweep_trial_id = 0;
  cancel->add_option("SWEEP_ID", sweep_id, "the sweep's id (from submit or ls)")
      ->check(CLI::PositiveNumber);
  cancel->add_option("--trial", trial_id, "cancel only this trial (ids from status)")
      ->check(CLI::PositiveNumber);
  cancel->add_option("TRIAL_ID", sweep_trial_id, "cancel only this trial of the sweep")
      ->check(CLI::PositiveNumber);
  cancel->footer("Examples: sslsweep cancel 3; sslsweep cancel 3 17; sslsweep cancel --trial 17");
  CLI::App* workers = app.add_subcommand("workers", "list registered workers");
  add_format(workers);
  workers->footer("Example: sslsweep workers --format json");
  CLI::App* unquarantine = app.add_subcommand(
      "unquarantine", "let a quarantined worker lease trials again");
  unquarantine->add_option("WORKER_ID", worker_id, "the worker's id (from workers)")
      ->required();
  CLI::App* local_command = app.add_subcommand(
      "local", "run a sweep on this machine: embedded coordinator and local workers");
  local_command->add_option("FILE", local.sweep_path, "sweep YAML")->required();
  local_command->add_option("--db", local.db_path, "SQLite results database")
      ->capture_default_str();
  local_command->add_option("--workers", local.workers, "worker processes (default: min(4, cores))")
      ->check(CLI::Range(1, 256));
  local_command->add_option("--threads", local.threads_per_worker,
                            "LibTorch threads per worker (default: cores / workers)")
      ->check(CLI::Range(1, 1024));
  local_command->add_option("--work-dir", local.work_dir,
                            "trial directories (default: <db>.work)");
  add_metrics(local_command);
  local_command->footer("Example: sslsweep local sweeps/quickstart.yaml --workers 2");
  // Every argument after `analyze`, --help included, belongs to sslsweep-analyze.
  CLI::App* analyze = app.add_subcommand(
      "analyze", "clustering metrics of exported embeddings (.npy); see analyze --help");
  analyze->prefix_command();
  analyze->set_help_flag();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : sslsweep::kExitBadInput;
  }
  if (*analyze) return ExecAnalyze(analyze->remaining());
  if (metrics.size() == 1 && metrics[0] == "*") metrics.clear();

  if (*local_command) {
    local.metric_patterns = metrics;
    return sslsweep::RunLocal(local, std::cout, std::cerr);
  }
  // Checked by CLI11 above: one of the three.
  const sslsweep::OutputFormat format = *sslsweep::ParseOutputFormat(format_text);
  sslsweep::SweepClient client(address);
  if (*submit) {
    return sslsweep::SubmitCommand(client, path, dry_run, format, std::cout, std::cerr);
  }
  if (*ls) return sslsweep::ListCommand(client, format, std::cout, std::cerr);
  if (*status) return sslsweep::StatusCommand(client, sweep_id, format, std::cout, std::cerr);
  if (*results) {
    sslsweep::ResultsCommandOptions options;
    options.query.set_sweep_id(sweep_id);
    for (const std::string& m : metrics) options.query.add_metrics(m);
    for (const std::string& g : group_by) options.query.add_group_by(g);
    options.query.set_one_group(all_trials);
    for (const std::string& w : where) options.query.add_where(w);
    options.query.set_epoch(epoch);
    options.view = results_view;
    // Checked by CLI11 above: empty or one of the three.
    options.view.pivot = *sslsweep::ParseResultsPivot(pivot);
    options.view.epoch = epoch;
    options.view.format = format;
    return sslsweep::ResultsCommand(client, options, std::cout, std::cerr);
  }
  if (*cancel && sweep_trial_id > 0) {
    if (trial_id > 0) {
      std::cerr << "sslsweep cancel: give SWEEP_ID TRIAL_ID or --trial TRIAL_ID, not both\n";
      return sslsweep::kExitBadInput;
    }
    return sslsweep::CancelSweepTrialCommand(client, sweep_id, sweep_trial_id, std::cout,
                                             std::cerr);
  }
  if (*cancel) {
    if ((sweep_id > 0) == (trial_id > 0)) {
      std::cerr << "sslsweep cancel: give a SWEEP_ID or --trial TRIAL_ID, not both\n";
      return sslsweep::kExitBadInput;
    }
    return trial_id > 0 ? sslsweep::CancelTrialCommand(client, trial_id, std::cout, std::cerr)
                        : sslsweep::CancelCommand(client, sweep_id, std::cout, std::cerr);
  }
  if (*unquarantine) {
    return sslsweep::UnquarantineCommand(client, worker_id, std::cout, std::cerr);
  }
  if (*workers) return sslsweep::WorkersCommand(client, format, std::cout, std::cerr);
  return sslsweep::kExitBadInput;
}
