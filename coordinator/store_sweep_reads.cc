// Store: the reads behind the sweep streams (WatchSweep, ExportMetrics).
// Each method is one read transaction on the read connection; every value
// is bound, and the statements' text is built from fixed fragments and
// numbered placeholders only.

#include <sqlite3.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "coordinator/sqlite_statement.h"
#include "coordinator/store.h"
#include "coordinator/store_results_queries.h"

namespace sslsweep {
namespace {

// The rows of one trial after (epoch, name), by key, whose name matches one
// of `glob_count` globs bound as ?5.. (every name when there are none).
// The key (trial_id, epoch, name) serves it as one range.
std::string TrialRowsSql(size_t glob_count) {
  std::string sql =
      "SELECT epoch, name, value FROM metrics WHERE trial_id = ?1 AND (epoch, name) > (?2, ?3)";
  if (glob_count > 0) {
    std::vector<std::string> globs;
    for (size_t i = 0; i < glob_count; ++i) globs.push_back(absl::StrCat("name GLOB ?", i + 5));
    absl::StrAppend(&sql, " AND (", absl::StrJoin(globs, " OR "), ")");
  }
  sql += " ORDER BY epoch, name LIMIT ?4";
  return sql;
}

}  // namespace

absl::StatusOr<AttemptEnd> Store::GetAttemptEnd(int64_t trial_id, int32_t attempt) {
  AttemptEnd end;
  absl::Status status = Read([&](StatementCache& db) -> absl::Status {
    absl::StatusOr<ScopedStatement> select = db.Get(
        "SELECT coalesce(outcome, ''), reason FROM attempts WHERE trial_id = ?1 AND attempt = ?2");
    if (!select.ok()) return select.status();
    (*select)->BindInt64(1, trial_id);
    (*select)->BindInt64(2, attempt);
    absl::StatusOr<bool> found = (*select)->Step();
    if (!found.ok()) return found.status();
    if (!*found) {
      return absl::NotFoundError(absl::StrCat("trial ", trial_id, " has no attempt ", attempt));
    }
    end.outcome = (*select)->ColumnText(0);
    end.reason = (*select)->ColumnText(1);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return end;
}

absl::StatusOr<std::vector<EpochValue>> Store::EpochsAfter(int64_t trial_id, int32_t after_epoch,
                                                           const std::string& name) {
  std::vector<EpochValue> epochs;
  absl::Status status = Read([&](StatementCache& db) -> absl::Status {
    epochs.clear();
    absl::StatusOr<ScopedStatement> select = db.Get(R"sql(
        SELECT epoch, max(CASE WHEN name = ?3 THEN value END) FROM metrics
        WHERE trial_id = ?1 AND epoch > ?2 GROUP BY epoch ORDER BY epoch)sql");
    if (!select.ok()) return select.status();
    (*select)->BindInt64(1, trial_id);
    (*select)->BindInt64(2, after_epoch);
    (*select)->BindText(3, name);
    return (*select)->ForEachRow([&](const SqliteStatement& row) {
      EpochValue epoch;
      epoch.epoch = static_cast<int32_t>(row.ColumnInt64(0));
      if (!row.ColumnIsNull(1)) epoch.value = row.ColumnDouble(1);
      epochs.push_back(epoch);
      return absl::OkStatus();
    });
  });
  if (!status.ok()) return status;
  return epochs;
}

absl::Status Store::CheckMetricGlobs(int64_t sweep_id, const std::vector<std::string>& globs) {
  return Read([&](StatementCache& db) {
    return ::sslsweep::CheckMetricGlobs(db, sweep_id, globs);
  });
}

absl::StatusOr<std::vector<MetricRow>> Store::MetricRowsPage(
    int64_t sweep_id, const std::vector<std::string>& globs,
    const std::optional<MetricRow>& after, int32_t limit) {
  if (limit < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric rows page of ", limit, " rows; must be >= 1"));
  }
  std::vector<MetricRow> rows;
  absl::Status status = Read([&](StatementCache& db) -> absl::Status {
    rows.clear();
    // The sweep's trials from the one the last page ended in, by id; each
    // is one range of the metrics key.
    absl::StatusOr<ScopedStatement> trials =
        db.Get("SELECT id FROM trials WHERE sweep_id = ?1 AND id >= ?2 ORDER BY id");
    if (!trials.ok()) return trials.status();
    (*trials)->BindInt64(1, sweep_id);
    (*trials)->BindInt64(2, after.has_value() ? after->trial_id : 0);
    std::vector<int64_t> trial_ids;
    absl::Status listed = (*trials)->ForEachRow([&](const SqliteStatement& row) {
      trial_ids.push_back(row.ColumnInt64(0));
      return absl::OkStatus();
    });
    if (!listed.ok()) return listed;
    const std::string sql = TrialRowsSql(globs.size());
    for (int64_t trial_id : trial_ids) {
      const int64_t room = limit - static_cast<int64_t>(rows.size());
      if (room <= 0) break;
      const bool resume = after.has_value() && after->trial_id == trial_id;
      absl::StatusOr<ScopedStatement> select = db.Get(sql);
      if (!select.ok()) return select.status();
      (*select)->BindInt64(1, trial_id);
      (*select)->BindInt64(2, resume ? after->epoch : -1);
      (*select)->BindText(3, resume ? after->name : "");
      (*select)->BindInt64(4, room);
      for (size_t i = 0; i < globs.size(); ++i) {
        (*select)->BindText(static_cast<int>(i + 5), globs[i]);
      }
      absl::Status read = (*select)->ForEachRow([&](const SqliteStatement& row) {
        rows.push_back({trial_id, static_cast<int32_t>(row.ColumnInt64(0)), row.ColumnText(1),
                        row.ColumnDouble(2)});
        return absl::OkStatus();
      });
      if (!read.ok()) return read;
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return rows;
}

}  // namespace sslsweep
