// AtomicFile: a file written through PATH.tmp and renamed to PATH when
// complete, so that a reader never sees half a file and a write that fails
// (or is abandoned) leaves nothing behind. `export` streams into one;
// `plot` and `report` write whole strings (WriteFileAtomically).
//
// Thread contract: thread-compatible.

#ifndef SSLSWEEP_CLI_ATOMIC_FILE_H_
#define SSLSWEEP_CLI_ATOMIC_FILE_H_

#include <fstream>
#include <string>

#include "absl/status/status.h"

namespace sslsweep {

class AtomicFile {
 public:
  // Opens PATH.tmp (truncated); check ok().
  explicit AtomicFile(std::string path);
  // Removes PATH.tmp unless Commit() succeeded.
  ~AtomicFile();

  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  std::ostream& stream() { return file_; }
  // Whether every write so far succeeded; else failed_path() and error()
  // say where and why.
  bool ok();
  // Flushes, closes and renames PATH.tmp to PATH; false on failure.
  bool Commit();

  const std::string& path() const { return path_; }
  const std::string& temporary_path() const { return temporary_; }
  // After a failure: PATH.tmp (open, write, close) or PATH (rename), and
  // the errno it failed with.
  const std::string& failed_path() const { return *failed_path_; }
  int error() const { return error_; }

 private:
  bool Fail(const std::string* path);

  const std::string path_;
  const std::string temporary_;
  std::ofstream file_;
  bool committed_ = false;
  const std::string* failed_path_ = &temporary_;
  int error_ = 0;
};

// Writes `bytes` to `path` through an AtomicFile. PermissionDenied naming
// the path (and the system's reason) when it cannot be written.
absl::Status WriteFileAtomically(const std::string& path, const std::string& bytes);

}  // namespace sslsweep

#endif  // SSLSWEEP_CLI_ATOMIC_FILE_H_
