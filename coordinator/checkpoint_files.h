// CheckpointFiles: the trial checkpoints the coordinator keeps, so that a
// trial resumes on another worker without a shared filesystem.
//
// Layout under the directory (default `<db>.checkpoints`):
//   trial-<id>/epoch-<E>.ckpt        a complete checkpoint after E epochs
//   trial-<id>/upload-<attempt>.tmp  an upload in progress
// An upload is written to its .tmp file, fsynced, checked against the size
// and CRC-32 it announced, and renamed to its final name, so a crash never
// leaves a partial .ckpt. The Store's checkpoint_epoch says which .ckpt is
// current; older ones are removed once a newer one is recorded.
//
// Thread contract: thread-safe for different trials; the coordinator's
// fencing keeps one upload per trial attempt.

#ifndef SSLSWEEP_COORDINATOR_CHECKPOINT_FILES_H_
#define SSLSWEEP_COORDINATOR_CHECKPOINT_FILES_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sslsweep {

struct CheckpointFilesOptions {
  std::string dir;                      // created if absent
  int64_t max_bytes = int64_t{16} << 30;  // a larger announced file is refused
};

// One upload's file, open for writing.
class CheckpointWriter {
 public:
  ~CheckpointWriter();  // an unfinished upload's file is removed
  // Appends the bytes; FailedPrecondition past the announced size,
  // Unavailable (naming the file) if the disk refuses them.
  absl::Status Append(absl::string_view data);
  // Checks the size and CRC against those announced (DataLoss naming both
  // if they differ), syncs and renames the file to its final name.
  absl::Status Commit();
  int64_t bytes_written() const { return written_; }

 private:
  friend class CheckpointFiles;
  CheckpointWriter(std::string tmp_path, std::string final_path, int64_t total_bytes,
                   uint32_t crc32, std::FILE* file);

  const std::string tmp_path_;
  const std::string final_path_;
  const int64_t total_bytes_;
  const uint32_t expected_crc_;
  std::FILE* file_;
  int64_t written_ = 0;
  uint32_t crc_ = 0;
  bool committed_ = false;
};

class CheckpointFiles {
 public:
  // Creates the directory if absent; Unavailable naming it otherwise.
  static absl::StatusOr<std::unique_ptr<CheckpointFiles>> Open(CheckpointFilesOptions options);

  const std::string& dir() const { return options_.dir; }

  // Starts the upload of trial `trial_id`'s checkpoint after `epoch` epochs
  // from `attempt`. InvalidArgument for a size <= 0 or above max_bytes.
  absl::StatusOr<std::unique_ptr<CheckpointWriter>> BeginUpload(int64_t trial_id,
                                                                int32_t attempt, int32_t epoch,
                                                                int64_t total_bytes,
                                                                uint32_t crc32);

  // The path of the trial's checkpoint after `epoch` epochs (whether or not
  // it exists).
  std::string Path(int64_t trial_id, int32_t epoch) const;

  // Removes the trial's checkpoints other than `keep_epoch`'s (-1: all of
  // them) and its unfinished uploads. Errors are ignored: a file left
  // behind costs disk space, not correctness.
  void RemoveAllBut(int64_t trial_id, int32_t keep_epoch);

  // The trials that have a folder here, ascending.
  std::vector<int64_t> TrialIds() const;

 private:
  explicit CheckpointFiles(CheckpointFilesOptions options) : options_(std::move(options)) {}

  const CheckpointFilesOptions options_;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_CHECKPOINT_FILES_H_
