#include "cli/atomic_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace sslsweep {

AtomicFile::AtomicFile(std::string path)
    : path_(std::move(path)),
      temporary_(path_ + ".tmp"),
      file_(temporary_, std::ios::binary | std::ios::trunc) {
  if (!file_) Fail(&temporary_);
}

AtomicFile::~AtomicFile() {
  if (committed_) return;
  file_.close();
  std::remove(temporary_.c_str());
}

bool AtomicFile::Fail(const std::string* path) {
  if (error_ == 0) {
    error_ = errno != 0 ? errno : EIO;
    failed_path_ = path;
  }
  return false;
}

bool AtomicFile::ok() { return error_ == 0 && (file_ ? true : Fail(&temporary_)); }

bool AtomicFile::Commit() {
  if (!ok()) return false;
  file_.flush();
  file_.close();
  if (!file_) return Fail(&temporary_);
  if (std::rename(temporary_.c_str(), path_.c_str()) != 0) return Fail(&path_);
  committed_ = true;
  return true;
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& bytes) {
  AtomicFile file(path);
  if (file.ok()) file.stream().write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!file.Commit()) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(file.error())));
  }
  return absl::OkStatus();
}

}  // namespace sslsweep
