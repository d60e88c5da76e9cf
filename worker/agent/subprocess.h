// Subprocess: starts a program as a child process, reads its stdout line by
// line, signals it and collects its exit status. Plain POSIX (fork/exec), no
// gRPC and no LibTorch, so the agent, the CLI's local mode and the
// integration tests share it.
//
// The child gets its own process group and PR_SET_PDEATHSIG(SIGKILL): if the
// thread that spawned it dies (e.g. the agent is SIGKILLed) the child dies
// too instead of training on as an orphan. So keep the spawning thread alive
// for the child's lifetime.
//
// Thread contract: ReadLine/Wait from one thread; Signal from any thread.

#ifndef SSLSWEEP_WORKER_AGENT_SUBPROCESS_H_
#define SSLSWEEP_WORKER_AGENT_SUBPROCESS_H_

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sslsweep {

struct SubprocessOptions {
  std::vector<std::string> argv;  // argv[0] is the program's path
  bool capture_stdout = false;    // else stdout goes to stdout_file or is inherited
  std::string stdout_file;        // appended to; empty: inherit
  std::string stderr_file;        // appended to; empty: inherit
};

// How a child ended.
struct ExitStatus {
  bool exited = false;  // true: `code` is valid; false: killed by `signal`
  int code = 0;
  int signal = 0;
  bool success() const { return exited && code == 0; }
  // "exit code 3" or "killed by signal 9 (Killed)".
  std::string Describe() const;
};

// The folder of the running executable (from /proc/self/exe), where the
// project's binaries find each other; "." if it cannot be read.
std::string ExecutableDir();

class Subprocess {
 public:
  // Starts the child. Fails with NotFound if argv[0] is not executable and
  // with the errno message if fork or a redirection fails.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Spawn(const SubprocessOptions& options);
  // Kills the child (SIGKILL) and reaps it if it is still running.
  ~Subprocess();

  pid_t pid() const { return pid_; }

  // Reads one line (without '\n') from the captured stdout. Returns false at
  // end of stream. REQUIRES: capture_stdout.
  bool ReadLine(std::string* line);

  // Sends `signal` to the child's process group (no-op once reaped).
  void Signal(int signal);

  // Blocks until the child ends; idempotent.
  ExitStatus Wait();
  // The exit status if the child has ended, without blocking.
  std::optional<ExitStatus> TryWait();

 private:
  Subprocess(pid_t pid, int stdout_fd) : pid_(pid), stdout_fd_(stdout_fd) {}

  const pid_t pid_;
  int stdout_fd_;  // -1 unless capturing
  std::string buffer_;
  std::atomic<bool> reaped_{false};
  ExitStatus status_;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_AGENT_SUBPROCESS_H_
