#include "coordinator/checkpoint_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "proto/checkpoint_crc32.h"

namespace sslsweep {
namespace {

namespace fs = std::filesystem;

std::string TrialDir(const std::string& root, int64_t trial_id) {
  return (fs::path(root) / absl::StrCat("trial-", trial_id)).string();
}

absl::Status ErrnoError(const std::string& what, const std::string& path) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// fsyncs a directory so that a rename in it survives a crash.
void SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

CheckpointWriter::CheckpointWriter(std::string tmp_path, std::string final_path,
                                   int64_t total_bytes, uint32_t crc32, std::FILE* file)
    : tmp_path_(std::move(tmp_path)),
      final_path_(std::move(final_path)),
      total_bytes_(total_bytes),
      expected_crc_(crc32),
      file_(file) {}

CheckpointWriter::~CheckpointWriter() {
  if (file_ != nullptr) std::fclose(file_);
  if (!committed_) {
    std::error_code ignored;
    fs::remove(tmp_path_, ignored);
  }
}

absl::Status CheckpointWriter::Append(absl::string_view data) {
  if (file_ == nullptr) return absl::FailedPreconditionError("the upload is already closed");
  if (written_ + static_cast<int64_t>(data.size()) > total_bytes_) {
    return absl::FailedPreconditionError(
        absl::StrCat("checkpoint upload: ", written_ + data.size(),
                     " bytes sent but ", total_bytes_, " announced"));
  }
  if (std::fwrite(data.data(), 1, data.size(), file_) != data.size()) {
    return ErrnoError("cannot write", tmp_path_);
  }
  crc_ = CheckpointCrc32(crc_, data);
  written_ += static_cast<int64_t>(data.size());
  return absl::OkStatus();
}

absl::Status CheckpointWriter::Commit() {
  if (file_ == nullptr) return absl::FailedPreconditionError("the upload is already closed");
  if (written_ != total_bytes_ || crc_ != expected_crc_) {
    return absl::DataLossError(absl::StrCat(
        "checkpoint upload: received ", written_, " bytes with CRC-32 ", crc_, "; ",
        total_bytes_, " bytes with CRC-32 ", expected_crc_, " were announced"));
  }
  const bool flushed = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  const int close_result = std::fclose(file_);
  file_ = nullptr;
  if (!flushed || close_result != 0) return ErrnoError("cannot sync", tmp_path_);
  if (std::rename(tmp_path_.c_str(), final_path_.c_str()) != 0) {
    return ErrnoError("cannot rename to", final_path_);
  }
  committed_ = true;
  SyncDir(fs::path(final_path_).parent_path().string());
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CheckpointFiles>> CheckpointFiles::Open(
    CheckpointFilesOptions options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("checkpoint directory is empty");
  std::error_code error;
  fs::create_directories(options.dir, error);
  if (error || !fs::is_directory(options.dir)) {
    return absl::UnavailableError(absl::StrCat("checkpoint directory ", options.dir, ": ",
                                               error ? error.message() : "not a directory"));
  }
  return absl::WrapUnique(new CheckpointFiles(std::move(options)));
}

absl::StatusOr<std::unique_ptr<CheckpointWriter>> CheckpointFiles::BeginUpload(
    int64_t trial_id, int32_t attempt, int32_t epoch, int64_t total_bytes, uint32_t crc32) {
  if (total_bytes <= 0 || total_bytes > options_.max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "total_bytes: expected 1 to ", options_.max_bytes, ", got ", total_bytes));
  }
  const std::string dir = TrialDir(options_.dir, trial_id);
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) {
    return absl::UnavailableError(absl::StrCat("cannot create ", dir, ": ", error.message()));
  }
  const std::string tmp = (fs::path(dir) / absl::StrCat("upload-", attempt, ".tmp")).string();
  std::FILE* file = std::fopen(tmp.c_str(), "wb");
  if (file == nullptr) return ErrnoError("cannot create", tmp);
  return absl::WrapUnique(
      new CheckpointWriter(tmp, Path(trial_id, epoch), total_bytes, crc32, file));
}

std::string CheckpointFiles::Path(int64_t trial_id, int32_t epoch) const {
  return (fs::path(TrialDir(options_.dir, trial_id)) / absl::StrCat("epoch-", epoch, ".ckpt"))
      .string();
}

void CheckpointFiles::RemoveAllBut(int64_t trial_id, int32_t keep_epoch) {
  const std::string dir = TrialDir(options_.dir, trial_id);
  const std::string keep =
      keep_epoch >= 0 ? fs::path(Path(trial_id, keep_epoch)).filename().string() : "";
  std::error_code error;
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name == keep) continue;
    if (absl::EndsWith(name, ".ckpt") || absl::EndsWith(name, ".tmp")) {
      std::error_code ignored;
      fs::remove(it->path(), ignored);
    }
  }
  if (keep_epoch < 0) {
    std::error_code ignored;
    fs::remove(dir, ignored);  // only if empty
  }
}

std::vector<int64_t> CheckpointFiles::TrialIds() const {
  std::vector<int64_t> ids;
  std::error_code error;
  for (fs::directory_iterator it(options_.dir, error), end; !error && it != end;
       it.increment(error)) {
    const std::string name = it->path().filename().string();
    int64_t id = 0;
    if (absl::StartsWith(name, "trial-") &&
        absl::SimpleAtoi(absl::string_view(name).substr(6), &id) && id > 0) {
      ids.push_back(id);
    }
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace sslsweep
