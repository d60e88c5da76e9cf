// MetricsWriter: the trainer's metrics lines, the contract with the agent.
//
// One JSON object per line, written to a file (DIR/metrics.jsonl) and echoed
// to a stream (stdout for sslsweep-train), each line flushed as written:
//
//   {"epoch":E,"name":"ncc_test_acc/fine/embedding","value":0.7123}
//   {"epoch":E,"event":"epoch_end"}
//
// Values print in the shortest form that reads back to the same double. After
// all metrics of a measured epoch comes exactly one epoch_end line; a reader
// may treat an epoch as complete when it sees that line.
//
// Thread contract: not thread-safe; confine an instance to one thread.

#ifndef SSLSWEEP_WORKER_TRAINER_METRICS_WRITER_H_
#define SSLSWEEP_WORKER_TRAINER_METRICS_WRITER_H_

#include <cstdint>
#include <fstream>
#include <memory>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sslsweep {

class MetricsWriter {
 public:
  // Creates (or truncates) `path` and echoes every line to `echo`
  // unless it is null. Fails with Unavailable naming the path if it cannot be
  // opened.
  static absl::StatusOr<std::unique_ptr<MetricsWriter>> Open(
      const std::string& path, std::ostream* echo);

  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  // Writes one metric line. InvalidArgument if `value` is not finite (JSON
  // has no NaN); Unavailable if the file cannot be written.
  absl::Status Write(int64_t epoch, const std::string& name, double value);

  // Writes the epoch_end line for `epoch`.
  absl::Status EndEpoch(int64_t epoch);

 private:
  MetricsWriter(std::string path, std::ostream* echo);
  absl::Status WriteLine(const std::string& line);

  const std::string path_;
  std::ostream* const echo_;
  std::ofstream file_;
};

// Writes into `metrics` the lines of `text` (an earlier run's metrics.jsonl)
// for epochs <= last_epoch, in their order: a resumed run keeps what the
// run that wrote its checkpoint measured. Lines that do not parse (a line
// cut short by a kill) and lines of later epochs are dropped.
absl::Status ReplayMetrics(const std::string& text, int64_t last_epoch,
                           MetricsWriter& metrics);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_METRICS_WRITER_H_
