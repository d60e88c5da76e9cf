// sslsweep: the researcher's command line. Composition root only: flags and
// wiring; the commands live in commands.h and local_mode.h.
//
// Exit codes: 0 success; 1 the coordinator refused the request (or, for
// `local`, some trial failed); 2 bad input; 3 coordinator unreachable;
// 130 interrupted. `analyze` becomes sslsweep-analyze, whose codes pass through
// (2 also when that binary is missing).

#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "CLI/CLI.hpp"
#include "absl/time/time.h"
#include "cli/commands.h"
#include "cli/export_command.h"
#include "cli/local_mode.h"
#include "cli/plot_command.h"
#include "cli/report_command.h"
#include "cli/sweep_client.h"
#include "cli/watch_command.h"
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
      "  sslsweep submit sweep.yaml --dry-run --format csv | wc -l     # how many trials\n"
      "Exit codes: 0 submitted (or planned), 1 refused by the coordinator, 2 bad YAML (with\n"
      "its file:line:column) or unreadable file, 3 coordinator unreachable.");
  CLI::App* ls = app.add_subcommand("ls", "list sweeps");
  add_format(ls);
  ls->footer(R"ex(Examples:
  sslsweep ls
  sslsweep ls --format json | jq '.[].name'
Exit codes: 0 ok, 3 coordinator unreachable.)ex");
  CLI::App* status = app.add_subcommand("status", "a sweep's trials: state, attempt, epoch");
  add_id(status);
  add_format(status);
  status->footer(R"ex(Examples:
  sslsweep status 1                          # per trial: state, attempt, worker, epoch, metric, ETA
  sslsweep status 1 --format csv > trials.csv
Exit codes: 0 ok, 2 unknown sweep id, 3 coordinator unreachable.)ex");
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
  CLI::App* watch = app.add_subcommand(
      "watch", "follow a sweep live until it ends: progress bars on a terminal, else a line "
               "per event");
  add_id(watch);
  int reconnect_seconds = 120;
  watch->add_option("--reconnect-for", reconnect_seconds,
                    "seconds to keep reconnecting to a coordinator that went away mid-watch "
                    "(restarted); 0: exit at once")
      ->check(CLI::Range(0, 86'400))
      ->capture_default_str();
  watch->footer(R"ex(Examples:
  sslsweep watch 3                          # progress bars, events above them
  sslsweep watch 3 | tee sweep3.log         # not a terminal: one timestamped line per event
  sslsweep watch 3 && sslsweep results 3    # results once the sweep ended with no failure
A coordinator restarted mid-watch is reconnected to (--reconnect-for), and the view
redrawn from its snapshot.
Exit codes: 0 the sweep ended and no trial failed, 1 a trial failed or the sweep was
cancelled, 2 bad or unknown id, 3 coordinator unreachable.)ex");
  CLI::App* export_command = app.add_subcommand(
      "export", "every stored metric row of a sweep, one per line (long format for pandas)");
  add_id(export_command);
  sslsweep::ExportCommandOptions export_options;
  export_command
      ->add_option("--metric,--metrics", export_options.metric_globs,
                   "only these metrics: GLOBs over <metric>/<target>/<layer> (repeat or "
                   "comma-separate). Default: every metric")
      ->delimiter(',');
  export_command->add_option("--format", export_options.format, "csv, or json (JSON Lines)")
      ->check(CLI::IsMember({"csv", "json"}))
      ->capture_default_str();
  export_command->add_option("--out", export_options.out_path,
                             "write to FILE (through FILE.tmp, renamed when complete) instead "
                             "of stdout");
  export_command->footer(R"ex(Examples:
  sslsweep export 3 > sweep3.csv
  sslsweep export 3 --metric 'ncc_*' --out runs/sweep3.csv
  sslsweep export 3 --metric 'ncc_test_acc/*/embedding,loss/*' --format json | jq -c 'select(.epoch == 10)'
Columns: trial_id, state, one per swept parameter, epoch, metric, target, layer, name,
value. Exit codes: 0 ok, 2 unknown id or metric glob, bad flag or unwritable --out,
3 coordinator unreachable.)ex");
  CLI::App* plot = app.add_subcommand(
      "plot", "a line chart of metrics over epochs or layers, seeds as mean ± std bands");
  add_id(plot);
  sslsweep::PlotOptions plot_options;
  std::string plot_x = "epoch";
  plot->add_option("--metric,--metrics", plot_options.metrics,
                   "metrics to draw: GLOBs over <metric>/<target>/<layer> (repeat or "
                   "comma-separate); one line per match after the x dimension")
      ->delimiter(',')
      ->required();
  plot->add_option("--x", plot_x, "epoch (every epoch) or layer (network order, at --epoch)")
      ->check(CLI::IsMember({"epoch", "layer"}))
      ->capture_default_str();
  plot->add_option("--group-by", plot_options.group_by,
                   "swept parameter(s): a line per group, the other trials (seeds) as its band. "
                   "Default: every trial in one group")
      ->delimiter(',');
  plot->add_option("--where", plot_options.where,
                   "PATH=VALUE: only trials with this parameter value (repeat: AND)");
  plot->add_option("--epoch", plot_options.epoch,
                   "with --x layer: final (default), best, or a number N");
  plot->add_option("--out", plot_options.out_path, "FILE.svg or FILE.png")->required();
  plot->add_option("--title", plot_options.title, "chart title (default: sweep name: metrics)");
  plot->add_flag("--log-y", plot_options.log_y, "logarithmic y axis (e.g. CDNV)");
  plot->footer(R"ex(Examples:
  sslsweep plot 1 --metric 'ncc_test_acc/*/embedding' --x epoch --out ncc.png
  sslsweep plot 1 --metric 'ncc_test_acc/fine/*' --x layer --group-by backbone.depth --out depth.svg
  sslsweep plot 1 --metric 'cdnv/*/*' --x layer --epoch 10 --log-y --out cdnv.png
Exit codes: 0 written (its path printed), 2 unknown metric/parameter, no metrics yet, bad
extension or unwritable --out, 3 coordinator unreachable.)ex");
  CLI::App* report = app.add_subcommand(
      "report", "a Markdown page of the paper's views of a sweep, with its figures and tables");
  add_id(report);
  sslsweep::ReportOptions report_options;
  report->add_option("--out", report_options.out_dir,
                     "directory for report.md and its figures (.png, .svg); created if need be")
      ->required();
  report->add_option("--group-by", report_options.group_by,
                     "swept parameter(s) to compare (e.g. method); the other trials (seeds) are "
                     "aggregated. Default: every trial in one group")
      ->delimiter(',');
  report->add_option("--where", report_options.where,
                     "PATH=VALUE: only trials with this parameter value (repeat: AND)");
  report->footer(R"ex(Examples:
  sslsweep report 1 --out docs/results/paper-1
  sslsweep report 4 --out runs/methods --group-by method.name
  sslsweep report 3 --out runs/std --group-by method.std_coeff --where method.cov_coeff=1
Sections: NCC over training per target, NCC over layers, semantic vs random targets,
CDNV and kNN over layers (skipped, with a line, when the sweep lacks them).
Exit codes: 0 written, 2 unknown id/parameter, no metrics yet or unwritable --out,
3 coordinator unreachable.)ex");
  CLI::App* cancel = app.add_subcommand(
      "cancel", "cancel a sweep's pending and running trials, or one of its trials");
  int64_t sweep_trial_id = 0;
  cancel->add_option("SWEEP_ID", sweep_id, "the sweep's id (from submit or ls)")
      ->check(CLI::PositiveNumber);
  cancel->add_option("--trial", trial_id, "cancel only this trial (ids from status)")
      ->check(CLI::PositiveNumber);
  cancel->add_option("TRIAL_ID", sweep_trial_id, "cancel only this trial of the sweep")
      ->check(CLI::PositiveNumber);
  cancel->footer(R"ex(Examples:
  sslsweep cancel 3             # every pending and running trial of sweep 3
  sslsweep cancel 3 17          # trial 17 of sweep 3 (checked to belong to it)
  sslsweep cancel --trial 17
Running trials stop within a heartbeat; what they reported is kept.
Exit codes: 0 ok, 2 unknown sweep or trial, 3 coordinator unreachable.)ex");
  CLI::App* workers = app.add_subcommand("workers", "list registered workers");
  add_format(workers);
  workers->footer(R"ex(Examples:
  sslsweep workers                 # state, current trials, failures in a row, quarantine reason
  sslsweep workers --format json | jq '.[] | select(.state == "quarantined")'
Exit codes: 0 ok, 3 coordinator unreachable.)ex");
  CLI::App* unquarantine = app.add_subcommand(
      "unquarantine", "let a quarantined worker lease trials again");
  unquarantine->add_option("WORKER_ID", worker_id, "the worker's id (from workers)")
      ->required();
  unquarantine->footer(R"ex(Example:
  sslsweep unquarantine w-3        # after fixing the node that failed its trials
Exit codes: 0 ok, 2 unknown worker, 3 coordinator unreachable.)ex");
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
  local_command->footer(R"ex(Examples:
  sslsweep local sweeps/quickstart.yaml --workers 2
  sslsweep local sweeps/paper/1-clustering-over-training.yaml --db runs/paper-1.db
  sslsweep local sweeps/fmnist-data-parallel.yaml --workers 2   # a gang of 2 ranks
Ctrl-C stops the workers; the database keeps what was reported.
Exit codes: 0 every trial succeeded or was pruned, 1 some trial failed, 2 bad input,
130 interrupted.)ex");
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
  if (*watch) {
    sslsweep::WatchViewOptions view;
    view.terminal = ::isatty(STDOUT_FILENO) == 1;
    struct winsize size = {};
    if (view.terminal && ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0) view.width = size.ws_col;
    return sslsweep::WatchCommand(client, sweep_id, view, std::cout, std::cerr,
                                  absl::Seconds(reconnect_seconds));
  }
  if (*export_command) {
    export_options.sweep_id = sweep_id;
    return sslsweep::ExportCommand(client, export_options, std::cout, std::cerr);
  }
  if (*plot) {
    plot_options.sweep_id = sweep_id;
    // Checked by CLI11 above: epoch or layer.
    plot_options.x = *sslsweep::ParsePlotAxis(plot_x);
    return sslsweep::PlotCommand(client, plot_options, std::cout, std::cerr);
  }
  if (*report) {
    report_options.sweep_id = sweep_id;
    return sslsweep::ReportCommand(client, report_options, std::cout, std::cerr);
  }
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
