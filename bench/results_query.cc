// Issue 7: the aggregated results query (Store::QueryResults) over a store
// of 1,000,000 metric rows. Creates a sweep of lr x depth x seed trials
// through the Store, fills its metrics with SQL inserts in one transaction
// (as many workers would have reported them), then times a grouped query
// (group_by two parameters, glob 'ncc_test_acc/*/*', final epoch) and an
// epoch=all query and one metric's curve at every epoch, and prints the
// medians as JSON; then reads every row as `sslsweep export` does
// (Store::MetricRowsPage, pages of 2000). bench/results_query.sh runs it.

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "coordinator/results_query.h"
#include "coordinator/store.h"

namespace sslsweep {
namespace {

struct Options {
  std::string db = "/tmp/sslsweep-bench-results.db";
  int learning_rates = 10;
  int depths = 5;
  int seeds = 10;
  int epochs = 20;
  int runs = 7;
};

// 5 metrics x 4 targets x 5 layers = 100 names.
std::vector<std::string> MetricNames() {
  std::vector<std::string> names;
  for (const char* metric : {"ncc_test_acc", "ncc_train_acc", "knn_acc", "linear_acc", "cdnv"}) {
    for (const char* target : {"augment", "fine", "coarse", "random"}) {
      for (const char* layer : {"stage1", "stage2", "stage3", "stage4", "embedding"}) {
        names.push_back(absl::StrCat(metric, "/", target, "/", layer));
      }
    }
  }
  return names;
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "results_query: %s\n", what.c_str());
  return 1;
}

int Fill(const Options& options, int64_t* sweep_id, int64_t* rows) {
  std::filesystem::remove(options.db);
  std::filesystem::remove(options.db + "-wal");
  std::filesystem::remove(options.db + "-shm");
  std::vector<NewTrial> trials;
  for (int l = 0; l < options.learning_rates; ++l) {
    for (int d = 0; d < options.depths; ++d) {
      for (int s = 0; s < options.seeds; ++s) {
        NewTrial trial;
        trial.index = static_cast<int32_t>(trials.size());
        trial.params = {{"optim.lr", absl::StrCat(l + 1, "e-3")},
                        {"backbone.depth", absl::StrCat(2 + d)},
                        {"seed", absl::StrCat(s)}};
        trial.config_yaml = "{}";
        trial.epochs = options.epochs;
        trials.push_back(trial);
      }
    }
  }
  {
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open({options.db});
    if (!store.ok()) return Fail(store.status().ToString());
    NewSweep sweep;
    sweep.name = "bench";
    sweep.source_yaml = "name: bench\n";
    sweep.metric_name = "ncc_test_acc/fine/embedding";
    sweep.metric_goal = "maximize";
    absl::StatusOr<int64_t> id = (*store)->CreateSweep(sweep, trials, 0);
    if (!id.ok()) return Fail(id.status().ToString());
    *sweep_id = *id;
  }
  sqlite3* db = nullptr;
  if (sqlite3_open(options.db.c_str(), &db) != SQLITE_OK) return Fail(sqlite3_errmsg(db));
  sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(db,
                     "INSERT INTO metrics (trial_id, epoch, name, value, attempt) "
                     "SELECT id, ?2, ?3, ?4, 1 FROM trials WHERE sweep_id = ?5 AND idx = ?1",
                     -1, &insert, nullptr);
  const std::vector<std::string> names = MetricNames();
  *rows = 0;
  uint64_t noise = 88172645463325252ull;  // xorshift: the same store every run
  for (size_t t = 0; t < trials.size(); ++t) {
    for (int e = 0; e < options.epochs; ++e) {
      for (size_t n = 0; n < names.size(); ++n) {
        noise ^= noise << 13, noise ^= noise >> 7, noise ^= noise << 17;
        const double value = 0.3 + 0.6 * e / options.epochs + 0.01 * (noise % 1000) / 1000.0;
        sqlite3_bind_int64(insert, 1, static_cast<int64_t>(t));
        sqlite3_bind_int64(insert, 2, e);
        sqlite3_bind_text(insert, 3, names[n].c_str(), -1, SQLITE_STATIC);
        sqlite3_bind_double(insert, 4, value);
        sqlite3_bind_int64(insert, 5, *sweep_id);
        if (sqlite3_step(insert) != SQLITE_DONE) return Fail(sqlite3_errmsg(db));
        sqlite3_reset(insert);
        ++*rows;
      }
    }
  }
  sqlite3_finalize(insert);
  if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Fail(sqlite3_errmsg(db));
  }
  sqlite3_close(db);
  return 0;
}

struct Timing {
  double median_ms = 0;
  double min_ms = 0;
  size_t rows = 0;
};

absl::StatusOr<Timing> Time(Store& store, const ResultsQuery& query, int runs) {
  std::vector<double> ms;
  Timing timing;
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<AggregatedResults> table = store.QueryResults(query);
    const auto end = std::chrono::steady_clock::now();
    if (!table.ok()) return table.status();
    timing.rows = table->rows.size();
    ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
  }
  std::sort(ms.begin(), ms.end());
  timing.median_ms = ms[ms.size() / 2];
  timing.min_ms = ms.front();
  return timing;
}

// Every metric row of the sweep, page after page, as ExportMetrics reads them.
absl::StatusOr<Timing> TimeExport(Store& store, int64_t sweep_id, int runs) {
  std::vector<double> ms;
  Timing timing;
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    std::optional<MetricRow> after;
    size_t rows = 0;
    for (;;) {
      absl::StatusOr<std::vector<MetricRow>> page =
          store.MetricRowsPage(sweep_id, {}, after, 2000);
      if (!page.ok()) return page.status();
      if (page->empty()) break;
      rows += page->size();
      after = page->back();
    }
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                           start).count());
    timing.rows = rows;
  }
  std::sort(ms.begin(), ms.end());
  timing.median_ms = ms[ms.size() / 2];
  timing.min_ms = ms.front();
  return timing;
}

std::string Json(const char* name, const Timing& timing) {
  return absl::StrCat("\"", name, "\": {\"median_ms\": ", timing.median_ms,
                      ", \"min_ms\": ", timing.min_ms, ", \"rows\": ", timing.rows, "}");
}

int Main(int argc, char** argv) {
  Options options;
  CLI::App app("Times Store::QueryResults over a store of ~1,000,000 metric rows.");
  app.add_option("--db", options.db, "store file to create (replaced)");
  app.add_option("--learning-rates", options.learning_rates);
  app.add_option("--depths", options.depths);
  app.add_option("--seeds", options.seeds);
  app.add_option("--epochs", options.epochs);
  app.add_option("--runs", options.runs, "timed runs of each query (median reported)");
  CLI11_PARSE(app, argc, argv);

  int64_t sweep_id = 0;
  int64_t rows = 0;
  const auto fill_start = std::chrono::steady_clock::now();
  if (int failed = Fill(options, &sweep_id, &rows); failed != 0) return failed;
  const double fill_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - fill_start).count();

  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open({options.db});
  if (!store.ok()) return Fail(store.status().ToString());
  ResultsQuery grouped;
  grouped.sweep_id = sweep_id;
  grouped.group_by = {"optim.lr", "backbone.depth"};
  grouped.metric_globs = {"ncc_test_acc/*/*"};
  ResultsQuery all_epochs = grouped;
  all_epochs.epoch = EpochSelection::kAll;
  // A training curve: one metric at every epoch (what --pivot epoch shows).
  ResultsQuery curve = all_epochs;
  curve.metric_globs = {"ncc_test_acc/fine/embedding"};

  absl::StatusOr<Timing> grouped_time = Time(**store, grouped, options.runs);
  if (!grouped_time.ok()) return Fail(grouped_time.status().ToString());
  absl::StatusOr<Timing> all_time = Time(**store, all_epochs, options.runs);
  if (!all_time.ok()) return Fail(all_time.status().ToString());
  absl::StatusOr<Timing> curve_time = Time(**store, curve, options.runs);
  if (!curve_time.ok()) return Fail(curve_time.status().ToString());
  absl::StatusOr<Timing> export_time = TimeExport(**store, sweep_id, std::min(options.runs, 3));
  if (!export_time.ok()) return Fail(export_time.status().ToString());

  std::printf(
      "{\"metric_rows\": %lld, \"trials\": %d, \"fill_s\": %.2f, \"runs\": %d, %s, %s, %s, "
      "%s}\n",
              static_cast<long long>(rows),
              options.learning_rates * options.depths * options.seeds, fill_s, options.runs,
              Json("grouped_final", *grouped_time).c_str(),
              Json("grouped_all_epochs", *all_time).c_str(),
              Json("grouped_curve_all_epochs", *curve_time).c_str(),
              Json("export_every_row", *export_time).c_str());
  return 0;
}

}  // namespace
}  // namespace sslsweep

int main(int argc, char** argv) { return sslsweep::Main(argc, argv); }
